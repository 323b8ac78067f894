"""Kopf wiring: which events call which handler, and Kopf's start. The only module that imports Kopf;
decorators only, the work is elsewhere."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

import kopf
from kopf._core.engines.peering import Identity  # not re-exported by kopf; the type of run(identity=)

from feast_lineage.api import (
    APPROVE_PLAN_ANNOTATION,
    FEATURE_STORE_PROJECT_KIND,
    FEATURE_STORE_PROJECT_PLURAL,
    GROUP,
    MATERIALIZATION_JOB_KIND,
    MATERIALIZATION_JOB_PLURAL,
    VERSION,
)
from feast_lineage.controller.audit_redelivery import AuditDeliveries
from feast_lineage.controller.health import Health
from feast_lineage.controller.kube import Kube
from feast_lineage.controller.locks import ObjectLocks
from feast_lineage.controller.materialization_reconciler import MaterializationReconciler, peer_summary
from feast_lineage.controller.project_reconciler import ProjectReconciler
from feast_lineage.controller.schedule_reconciler import ScheduleReconciler
from feast_lineage.controller.settings import OperatorSettings
from feast_lineage.domain import labels
from feast_lineage.domain.apply_gate import AWAITING_APPROVAL
from feast_lineage.domain.conditions import RECONCILING, STALLED
from feast_lineage.domain.materialization_state import TERMINAL
from feast_lineage.domain.project_state import SOURCE_AVAILABLE
from feast_lineage.domain.references import referenced_config_maps
from feast_lineage.injection.service import InjectionService

PROJECTS = (GROUP, VERSION, FEATURE_STORE_PROJECT_PLURAL)
RUNS = (GROUP, VERSION, MATERIALIZATION_JOB_PLURAL)
MANAGED = {labels.LABEL_MANAGED_BY: labels.MANAGED_BY}


def _applying(status: kopf.Status, **_: Any) -> bool:
    """An apply in flight: polled closely. A change that waits for a person is not (the approval
    annotation has its own handler, and the resync still looks)."""
    return any(
        c.get("type") == RECONCILING and c.get("status") == "True" and c.get("reason") != AWAITING_APPROVAL
        for c in status.get("conditions") or []
    )


def _source_unavailable(status: kopf.Status, **_: Any) -> bool:
    return any(c.get("type") == SOURCE_AVAILABLE and c.get("status") == "False" for c in status.get("conditions") or [])


WAITING_FOR_SECRET = frozenset({"SecretNotFound", "SecretKeyNotFound"})


def _waiting_for_secret(status: kopf.Status, **_: Any) -> bool:
    return any(
        c.get("type") == STALLED and c.get("status") == "True" and c.get("reason") in WAITING_FOR_SECRET
        for c in status.get("conditions") or []
    )


def _has_pending_audit(status: kopf.Status, **_: Any) -> bool:
    return bool(status.get("pendingAudit"))


def _scheduled(spec: kopf.Spec, **_: Any) -> bool:
    return bool(spec.get("materialization"))


def _run_waiting(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") in (None, "", "Pending")


def _run_active(status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") not in TERMINAL


def _owner(body: kopf.Body, kind: str) -> str | None:
    return labels.controller_owner({"metadata": dict(body.get("metadata") or {})}, kind)


def build_registry(
    operator: OperatorSettings, kube: Kube, injection: InjectionService | None, health: Health
) -> kopf.OperatorRegistry:
    """The leader's handlers. The webhook (``injection``, already serving) and its project map are
    every replica's and live outside Kopf; the leader adds the pod monitor."""
    registry = kopf.OperatorRegistry()
    locks = ObjectLocks()
    projects = ProjectReconciler(kube, operator, locks)
    runs = MaterializationReconciler(kube, operator, locks)
    schedules = ScheduleReconciler(kube, locks, operator.max_waiting_runs)
    audits = AuditDeliveries(kube, operator, locks)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # A registry of our own does not inherit Kopf's default login; use the kubernetes client's.
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Async: it runs on Kopf's event loop, which the health check then watches.
        # Progress lives in annotations; status belongs to the operator's own fields only.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
        settings.persistence.finalizer = f"{GROUP}/finalizer"
        settings.posting.enabled = False  # Events are written on transitions by the handlers themselves.
        settings.watching.server_timeout = 300
        settings.execution.max_workers = 8
        # Watching only listed namespaces, Kopf needs neither to list namespaces nor to watch CRDs: its
        # namespaced RBAC has neither (Kopf would retry and log refusals for a minute before falling back).
        settings.scanning.disabled = bool(operator.namespaces)
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        health.watch_loop(asyncio.get_running_loop())
        if injection is not None:
            injection.start_monitor()

    @kopf.on.cleanup(registry=registry)
    def shutdown(**_: Any) -> None:
        audits.shutdown()

    # -- FeatureStoreProject --------------------------------------------------------------------

    @kopf.on.resume(*PROJECTS, registry=registry)
    @kopf.on.create(*PROJECTS, registry=registry)
    @kopf.on.update(*PROJECTS, field="spec", registry=registry)
    def project_changed(namespace: str | None, name: str, **_: Any) -> None:
        projects.reconcile(namespace or "", name)

    @kopf.on.update(*PROJECTS, field=("metadata", "annotations", APPROVE_PLAN_ANNOTATION), registry=registry)
    def project_approval_changed(namespace: str | None, name: str, **_: Any) -> None:
        projects.reconcile(namespace or "", name)

    # The timers below make Kopf hold every project with its finalizer, so this runs on deletion;
    # optional: it is no reason of its own to block one.
    @kopf.on.delete(*PROJECTS, optional=True, registry=registry)
    def project_deleted(namespace: str | None, name: str, **_: Any) -> None:
        # Its pending audit records are delivered first, or abandoned after a bounded wait.
        wait = audits.before_deletion(FEATURE_STORE_PROJECT_KIND, namespace or "", name)
        if wait is not None:
            raise kopf.TemporaryError("delivering pending audit records to MLflow first", delay=wait)
        projects.deleted(namespace or "", name)

    @kopf.timer(*PROJECTS, interval=operator.resync_seconds, registry=registry)
    def project_resync(namespace: str | None, name: str, **_: Any) -> None:
        projects.reconcile(namespace or "", name)

    @kopf.timer(*PROJECTS, interval=operator.active_poll_seconds, when=_applying, registry=registry)
    def project_apply_in_flight(namespace: str | None, name: str, **_: Any) -> None:
        projects.reconcile(namespace or "", name)

    # Checks often; the reconciler's backoff decides when the source is actually asked again.
    @kopf.timer(*PROJECTS, interval=operator.active_poll_seconds, when=_source_unavailable, registry=registry)
    def project_source_retry(namespace: str | None, name: str, **_: Any) -> None:
        projects.retry_source(namespace or "", name)

    # Secrets are not watched (that would take list/watch on every Secret): a short retry instead.
    @kopf.timer(*PROJECTS, interval=operator.input_retry_seconds, when=_waiting_for_secret, registry=registry)
    def project_secret_retry(namespace: str | None, name: str, **_: Any) -> None:
        projects.reconcile(namespace or "", name)

    @kopf.index(*PROJECTS, id="projects_by_configmap", registry=registry)
    def projects_by_configmap(
        namespace: str | None, name: str, spec: kopf.Spec, **_: Any
    ) -> dict[tuple[str | None, str], str]:
        return {(namespace, config_map): name for config_map in referenced_config_maps(dict(spec))}

    # A ConfigMap a project references appears or changes: act now, not at the next resync.
    @kopf.on.event("", "v1", "configmaps", registry=registry)
    def config_map_changed(namespace: str | None, name: str, **indices: Any) -> None:
        index: kopf.Index[Any, Any] = indices["projects_by_configmap"]
        for project in set(index.get((namespace, name), [])):
            projects.reconcile(namespace or "", project)

    @kopf.timer(*PROJECTS, interval=operator.audit_retry_seconds, when=_has_pending_audit, registry=registry)
    def project_audit_redelivery(namespace: str | None, name: str, **_: Any) -> None:
        audits.submit(FEATURE_STORE_PROJECT_KIND, namespace or "", name)

    @kopf.on.event("batch", "v1", "jobs", labels={**MANAGED, labels.LABEL_OPERATION: "apply"}, registry=registry)
    def apply_job_event(body: kopf.Body, namespace: str | None, **_: Any) -> None:
        owner = _owner(body, FEATURE_STORE_PROJECT_KIND)
        if owner is not None:
            projects.reconcile(namespace or "", owner)

    @kopf.timer(*PROJECTS, interval=operator.schedule_tick_seconds, when=_scheduled, registry=registry)
    def project_schedule(namespace: str | None, name: str, **indices: Any) -> None:
        index: kopf.Index[Any, Any] = indices["runs_by_project"]
        schedules.tick(namespace or "", name, list(index.get((namespace, name), [])))

    # -- MaterializationJob ---------------------------------------------------------------------

    @kopf.index(*RUNS, id="runs_by_project", registry=registry)
    def runs_by_project(
        namespace: str | None, name: str, meta: kopf.Meta, spec: kopf.Spec, status: kopf.Status, **_: Any
    ) -> dict[tuple[str | None, str], dict[str, Any]]:
        project = str(spec.get("projectRef", {}).get("name", ""))
        return {(namespace, project): peer_summary(name, dict(meta), dict(spec), dict(status))}

    def peers_of(indices: dict[str, Any], namespace: str | None, spec: Any) -> list[dict[str, Any]]:
        # Kopf passes indices as keyword arguments named after the index.
        index: kopf.Index[Any, Any] = indices["runs_by_project"]
        return list(index.get((namespace, spec.get("projectRef", {}).get("name", "")), []))

    @kopf.on.resume(*RUNS, registry=registry)
    @kopf.on.create(*RUNS, registry=registry)
    def run_created(namespace: str | None, name: str, spec: kopf.Spec, **indices: Any) -> None:
        runs.reconcile(namespace or "", name, peers_of(indices, namespace, spec))

    # Checks often; the reconciler's backoff decides when a waiting run is actually looked at again.
    @kopf.timer(*RUNS, interval=operator.active_poll_seconds, when=_run_waiting, registry=registry)
    def run_waiting(namespace: str | None, name: str, spec: kopf.Spec, **indices: Any) -> None:
        runs.poll_waiting(namespace or "", name, peers_of(indices, namespace, spec))

    # Job events report completion at once; this slower timer only catches pods that cannot start.
    @kopf.timer(*RUNS, interval=operator.resync_seconds, when=_run_active, registry=registry)
    def run_resync(namespace: str | None, name: str, spec: kopf.Spec, **indices: Any) -> None:
        runs.reconcile(namespace or "", name, peers_of(indices, namespace, spec))

    @kopf.timer(*RUNS, interval=operator.audit_retry_seconds, when=_has_pending_audit, registry=registry)
    def run_audit_redelivery(namespace: str | None, name: str, **_: Any) -> None:
        audits.submit(MATERIALIZATION_JOB_KIND, namespace or "", name)

    # Runs carry Kopf's finalizer (their timers): deleting one, or pruning schedule history, first
    # delivers its pending audit record, or abandons it after a bounded wait.
    @kopf.on.delete(*RUNS, optional=True, registry=registry)
    def run_deleted(namespace: str | None, name: str, **_: Any) -> None:
        wait = audits.before_deletion(MATERIALIZATION_JOB_KIND, namespace or "", name)
        if wait is not None:
            raise kopf.TemporaryError("delivering the pending audit record to MLflow first", delay=wait)

    @kopf.on.event("batch", "v1", "jobs", labels={**MANAGED, labels.LABEL_OPERATION: "materialize"}, registry=registry)
    def materialize_job_event(body: kopf.Body, namespace: str | None, **indices: Any) -> None:
        owner = _owner(body, MATERIALIZATION_JOB_KIND)
        if owner is None:
            return
        run = kube.get_custom(MATERIALIZATION_JOB_PLURAL, namespace or "", owner)
        if run is not None:
            runs.reconcile(namespace or "", owner, peers_of(indices, namespace, run["spec"]))

    return registry


def configure_kopf_logging(log_json: bool) -> None:
    """Kopf's log handler on the root logger (the caller adjusts its format)."""
    kopf.configure(verbose=False, log_format=kopf.LogFormat.JSON if log_json else kopf.LogFormat.FULL)


def run_kopf(registry: kopf.OperatorRegistry, operator: OperatorSettings) -> None:
    """Run the handlers until the process is stopped. Standalone (no Kopf peering): which replica
    runs them is decided before, by the Lease. Kopf's default identity asks the password database for
    the user's name, which a container running as an arbitrary UID (the chart's 10001) has no entry
    for, so it is given one: the host (the pod's name) and the process."""
    kopf.run(
        registry=registry,
        standalone=True,
        identity=Identity(f"{socket.gethostname()}/{os.getpid()}"),
        clusterwide=not operator.namespaces,
        namespaces=operator.namespaces,
    )
