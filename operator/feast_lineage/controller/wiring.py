"""Kopf wiring: which events call which handler. Decorators only; the work is elsewhere."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from feast_lineage.api import FEATURE_STORE_PROJECT_KIND, FEATURE_STORE_PROJECT_PLURAL, GROUP, VERSION
from feast_lineage.controller import metrics
from feast_lineage.controller.kube import Kube, new_api_client
from feast_lineage.controller.project_reconciler import ProjectReconciler
from feast_lineage.controller.settings import OperatorSettings
from feast_lineage.domain import labels
from feast_lineage.domain.conditions import RECONCILING, is_true

PROJECTS = (GROUP, VERSION, FEATURE_STORE_PROJECT_PLURAL)
APPLY_JOBS = {labels.LABEL_MANAGED_BY: labels.MANAGED_BY, labels.LABEL_OPERATION: "apply"}


def _applying(status: kopf.Status, **_: Any) -> bool:
    return is_true(list(status.get("conditions") or []), RECONCILING)


def _has_pending_audit(status: kopf.Status, **_: Any) -> bool:
    return bool(status.get("pendingAudit"))


def build_registry(operator: OperatorSettings) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    kube = Kube(new_api_client())
    projects = ProjectReconciler(kube, operator)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # A registry of our own does not inherit Kopf's default login; use the kubernetes client's.
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Progress lives in annotations; status belongs to the operator's own fields only.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
        settings.persistence.finalizer = f"{GROUP}/finalizer"
        settings.posting.enabled = False  # Events are written on transitions by the handlers themselves.
        settings.watching.server_timeout = 300
        settings.execution.max_workers = 8
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        metrics.serve(operator.metrics_port)

    @kopf.on.resume(*PROJECTS, registry=registry)
    @kopf.on.create(*PROJECTS, registry=registry)
    @kopf.on.update(*PROJECTS, field="spec", registry=registry)
    def project_changed(namespace: str | None, name: str, **_: Any) -> None:
        projects.reconcile(namespace or "", name)

    @kopf.timer(*PROJECTS, interval=operator.resync_seconds, registry=registry)
    def project_resync(namespace: str | None, name: str, **_: Any) -> None:
        projects.reconcile(namespace or "", name)

    @kopf.timer(*PROJECTS, interval=operator.active_poll_seconds, when=_applying, registry=registry)
    def project_apply_in_flight(namespace: str | None, name: str, **_: Any) -> None:
        projects.reconcile(namespace or "", name)

    @kopf.timer(*PROJECTS, interval=operator.audit_retry_seconds, when=_has_pending_audit, registry=registry)
    def project_audit_redelivery(namespace: str | None, name: str, **_: Any) -> None:
        projects.redeliver_audit(namespace or "", name)

    @kopf.on.event("batch", "v1", "jobs", labels=APPLY_JOBS, registry=registry)
    def apply_job_event(body: kopf.Body, namespace: str | None, **_: Any) -> None:
        owner = labels.controller_owner({"metadata": dict(body.get("metadata") or {})}, FEATURE_STORE_PROJECT_KIND)
        if owner is not None:
            projects.reconcile(namespace or "", owner)

    return registry
