"""The injection webhook, on every replica, and the pod monitor, on the leader.

Admission is answered by every replica (the webhook Service spreads calls over them), so each keeps
its own project map from its own watch of FeatureStoreProjects, not from Kopf's (which runs on the
leader only). The pod monitor writes status and Events and ends MLflow runs: the leader's work.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

from feast_lineage.api import FEATURE_STORE_PROJECT_PLURAL
from feast_lineage.controller.index_loader import PROJECT_PAGE
from feast_lineage.controller.kube import Kube, read
from feast_lineage.controller.list_watch import ListWatch, custom_objects, scopes
from feast_lineage.controller.rest import AdmissionRegistrationV1, AuthorizationV1
from feast_lineage.controller.settings import OperatorSettings, WebhookSettings
from feast_lineage.domain.tenancy import AccessCheck
from feast_lineage.injection.admission import NamespaceLevels, PodInjection
from feast_lineage.injection.pod_monitor import PodMonitor
from feast_lineage.injection.server import WebhookServer
from feast_lineage.injection.targets import InjectionTargets
from feast_lineage.injection.tls import (
    CertificateSource,
    FileCertificates,
    SecretCertificates,
    ServingMaterial,
    patch_ca_bundles,
)
from feast_lineage.tenancy.admission import ResourceValidation, mutate_resource, subject_access_review

log = logging.getLogger(__name__)

MUTATE_PODS_PATH = "/mutate-pods"
VALIDATE_RESOURCES_PATH = "/validate-resources"
MUTATE_RESOURCES_PATH = "/mutate-resources"
REVIEW_SECONDS = 10.0
"""Bound on an admission review's own requests to the API server: it has given up on the review by
then (the validating webhook's timeoutSeconds; the others' are shorter by default)."""


def _certificates(kube: Kube, webhook: WebhookSettings) -> CertificateSource:
    if webhook.cert_dir:
        return FileCertificates(Path(webhook.cert_dir))
    if not webhook.cert_secret or "/" not in webhook.cert_secret:
        raise ValueError("the webhook needs --webhook-cert-dir, or --webhook-cert-secret NAMESPACE/NAME")
    namespace, name = webhook.cert_secret.split("/", 1)
    return SecretCertificates(kube.core, namespace, name, webhook.dns_names, webhook.ip_addresses)


class InjectionService:
    """The webhook server, started once the project map is filled, and the pod monitor."""

    MAP_FILLED_TIMEOUT = 60.0

    def __init__(self, kube: Kube, settings: OperatorSettings, targets: InjectionTargets) -> None:
        assert settings.webhook is not None
        self.kube = kube
        self.settings = settings
        self.webhook = settings.webhook
        self.targets = targets
        admission = AdmissionRegistrationV1(kube.rest)
        review_bound = settings.api_timeouts.capped(REVIEW_SECONDS).request()

        def namespace_labels(name: str) -> dict[str, str] | None:
            namespace = read(kube.core.read_namespace, name, _request_timeout=review_bound)
            return None if namespace is None else dict(namespace["metadata"].get("labels") or {})

        def publish_ca(material: ServingMaterial) -> None:
            if material.ca_pem is not None:
                patch_ca_bundles(
                    admission,
                    material.ca_pem,
                    self.webhook.mutating_configurations,
                    self.webhook.validating_configurations,
                )

        authorization = AuthorizationV1(kube.rest)

        def authorize(user: dict[str, Any], check: AccessCheck) -> bool:
            review = subject_access_review(user, check)
            response = authorization.create_subject_access_review(review, _request_timeout=review_bound)
            return bool(json.loads(response.data).get("status", {}).get("allowed"))

        self.pods = PodInjection(targets, NamespaceLevels(namespace_labels), settings.mlflow_tracking_uri)
        self.server = WebhookServer(
            self.webhook.host,
            self.webhook.port,
            _certificates(kube, self.webhook),
            {
                MUTATE_PODS_PATH: self.pods.review,
                VALIDATE_RESOURCES_PATH: ResourceValidation(authorize, settings.tenancy).review,
                MUTATE_RESOURCES_PATH: functools.partial(mutate_resource, watched=frozenset(settings.namespaces)),
            },
            on_material=publish_ca,
            # Every create of either kind passes it: pure, and quicker than a thread's round trip.
            inline=frozenset({MUTATE_RESOURCES_PATH}),
        )
        self.monitor = PodMonitor(
            kube, targets, settings.namespaces, settings.mlflow_tracking_uri, api_timeouts=settings.api_timeouts
        )
        self._watches = [self._project_watch(namespace) for namespace in scopes(settings.namespaces)]

    def _project_watch(self, namespace: str | None) -> ListWatch:
        def observe(event_type: str | None, body: dict[str, Any]) -> None:
            if event_type == "DELETED":
                meta = body.get("metadata") or {}
                self.targets.remove(str(meta.get("namespace", "")), str(meta.get("name", "")))
            else:
                self.targets.upsert(body)

        return ListWatch(
            f"projects in {namespace or 'all namespaces'}",
            custom_objects(self.kube.custom, FEATURE_STORE_PROJECT_PLURAL, namespace),
            observe,
            timeouts=self.settings.api_timeouts,
            page=PROJECT_PAGE,  # a project is about 23 KiB decoded: 500 a page would be 11.5 MiB
        )

    def start(self) -> None:
        """Serve admission, once the project map is filled: a pod admitted before would miss its project."""
        for project_watch in self._watches:
            project_watch.start()
        for project_watch in self._watches:
            if not project_watch.listed.wait(self.MAP_FILLED_TIMEOUT):
                raise RuntimeError(f"could not list {project_watch.what} in {self.MAP_FILLED_TIMEOUT:.0f}s")
        self.server.start()

    def start_monitor(self) -> None:
        self.monitor.start()

    def begin_stop(self) -> None:
        self.server.begin_stop()

    def stop(self) -> None:
        """The pod monitor at once (the leader's work); admission after the drain period, from a project
        map kept fresh until then."""
        self.monitor.stop()
        self.server.stop(self.webhook.drain_seconds)
        for project_watch in self._watches:
            project_watch.stop()
