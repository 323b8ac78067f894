"""Start the injection webhook and the pod monitor beside the controller, sharing its project map."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from kubernetes import client

from feast_lineage.api import FEATURE_STORE_PROJECT_PLURAL, GROUP, VERSION
from feast_lineage.controller.kube import Kube, read
from feast_lineage.controller.settings import OperatorSettings, WebhookSettings
from feast_lineage.domain.tenancy import AccessCheck
from feast_lineage.injection.admission import NamespaceLevels, PodInjection
from feast_lineage.injection.pod_monitor import PodMonitor
from feast_lineage.injection.server import WebhookServer
from feast_lineage.injection.targets import InjectionTargets, scopes
from feast_lineage.injection.tls import (
    CertificateSource,
    FileCertificates,
    SecretCertificates,
    ServingMaterial,
    patch_ca_bundles,
)
from feast_lineage.tenancy.admission import ResourceValidation, record_creator, subject_access_review

log = logging.getLogger(__name__)

MUTATE_PODS_PATH = "/mutate-pods"
VALIDATE_RESOURCES_PATH = "/validate-resources"
MUTATE_RESOURCES_PATH = "/mutate-resources"


def _certificates(kube: Kube, webhook: WebhookSettings) -> CertificateSource:
    if webhook.cert_dir:
        return FileCertificates(Path(webhook.cert_dir))
    if not webhook.cert_secret or "/" not in webhook.cert_secret:
        raise ValueError("the webhook needs --webhook-cert-dir, or --webhook-cert-secret NAMESPACE/NAME")
    namespace, name = webhook.cert_secret.split("/", 1)
    return SecretCertificates(kube.core, namespace, name, webhook.dns_names, webhook.ip_addresses)


def prime_targets(kube: Kube, targets: InjectionTargets, namespaces: list[str]) -> None:
    """Fill the project map before serving: a pod admitted before it would miss its project."""
    for namespace in scopes(namespaces):
        if namespace is None:
            response = kube.custom.list_cluster_custom_object(
                GROUP, VERSION, FEATURE_STORE_PROJECT_PLURAL, _preload_content=False
            )
        else:
            response = kube.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, FEATURE_STORE_PROJECT_PLURAL, _preload_content=False
            )
        for body in json.loads(response.data).get("items") or []:
            targets.upsert(body)


class InjectionService:
    """The webhook server and the pod monitor: started once, after the project map is filled."""

    def __init__(self, kube: Kube, settings: OperatorSettings, targets: InjectionTargets) -> None:
        assert settings.webhook is not None
        self.kube = kube
        self.settings = settings
        self.webhook = settings.webhook
        self.targets = targets
        admission = client.AdmissionregistrationV1Api(kube.api)

        def namespace_labels(name: str) -> dict[str, str] | None:
            namespace = read(kube.core.read_namespace, name)
            return None if namespace is None else dict(namespace["metadata"].get("labels") or {})

        def publish_ca(material: ServingMaterial) -> None:
            if material.ca_pem is not None:
                patch_ca_bundles(
                    admission,
                    material.ca_pem,
                    self.webhook.mutating_configurations,
                    self.webhook.validating_configurations,
                )

        authorization = client.AuthorizationV1Api(kube.api)

        def authorize(user: dict[str, Any], check: AccessCheck) -> bool:
            review = authorization.create_subject_access_review(subject_access_review(user, check))
            return bool(review.status.allowed)

        self.pods = PodInjection(targets, NamespaceLevels(namespace_labels), settings.mlflow_tracking_uri)
        self.server = WebhookServer(
            self.webhook.host,
            self.webhook.port,
            _certificates(kube, self.webhook),
            {
                MUTATE_PODS_PATH: self.pods.review,
                VALIDATE_RESOURCES_PATH: ResourceValidation(authorize, settings.tenancy).review,
                MUTATE_RESOURCES_PATH: record_creator,
            },
            on_material=publish_ca,
        )
        self.monitor = PodMonitor(kube, targets, settings.namespaces, settings.mlflow_tracking_uri)

    def start(self) -> None:
        prime_targets(self.kube, self.targets, self.settings.namespaces)
        self.server.start()
        self.monitor.start()

    def stop(self) -> None:
        self.monitor.stop()
        self.server.stop()
