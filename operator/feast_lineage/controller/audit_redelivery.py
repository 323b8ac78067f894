"""Deliver audit records that a runner could not log (MLflow was down) once MLflow is back.

Passes run on a small executor of their own, never on a reconcile worker and never holding an
object's lock: a slow or hostile tracking server delays only audit delivery. Each record is
bounded in time and answer size, whatever the spec allows; the object's lock is taken only to
write back what the pass achieved, on a fresh read. Delivery itself is exactly-once (see
:mod:`feast_lineage.audit.delivery`): a record leaves status only after MLflow has it.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from feast_lineage.api import (
    FEATURE_STORE_PROJECT_KIND,
    FEATURE_STORE_PROJECT_PLURAL,
    MATERIALIZATION_JOB_PLURAL,
    FeatureStoreProject,
    FeatureStoreProjectStatus,
    MaterializationJobStatus,
    MlflowConfig,
    MlflowRunRef,
)
from feast_lineage.audit import AuditRecord, Credentials, DeliveryError, deliver
from feast_lineage.audit.errors import PermanentDeliveryError
from feast_lineage.controller import metrics
from feast_lineage.controller.errors import brief
from feast_lineage.controller.events import emit
from feast_lineage.controller.kube import Kube, Obj, read
from feast_lineage.controller.locks import ObjectLocks
from feast_lineage.controller.logs import object_fields
from feast_lineage.controller.settings import OperatorSettings
from feast_lineage.domain.audit_backlog import (
    AUDIT_ABANDONED,
    AUDIT_DROPPED,
    AUDIT_UNDELIVERABLE,
    Attempt,
    Record,
    dropped_message,
    on_deletion,
    record_id,
    settle,
)
from feast_lineage.domain.status_owners import PROJECT_AUDIT, RUN_AUDIT
from feast_lineage.redaction import KNOWN
from feast_lineage.timestamps import parse_rfc3339, utc_now

log = logging.getLogger(__name__)
CONSECUTIVE_FAILURES = 2
"""Records in a row that MLflow did not take before a pass stops: the server is down, the rest waits."""
DELETION_POLL_SECONDS = 5.0


def mlflow_credentials(kube: Kube, namespace: str, mlflow: MlflowConfig) -> Credentials:
    """The credentials spec.mlflow.credentials names, read from the project's namespace."""
    spec = mlflow.credentials
    if spec is None:
        return Credentials()
    secret = read(kube.core.read_namespaced_secret, spec.secret_name, namespace)
    data = (secret or {}).get("data") or {}

    def value(key: str | None) -> str | None:
        return base64.b64decode(data[key]).decode() if key and key in data else None

    KNOWN.learn(value(key) for key in data)
    return Credentials(
        username=value(spec.username_key), password=value(spec.password_key), token=value(spec.token_key)
    )


def delivery_pass(
    kube: Kube, pending: list[Record], project_body: Obj, settings: OperatorSettings
) -> dict[str, Attempt]:
    """Offer ``pending`` to MLflow with the project's settings, capped by the operator's; what
    happened to each record tried, by id (records not tried are absent)."""
    try:
        project = FeatureStoreProject.model_validate(
            {k: project_body[k] for k in ("apiVersion", "kind", "metadata", "spec")}
        )
    except ValidationError:
        return {}
    tracking_uri = project.spec.mlflow.tracking_uri or settings.mlflow_tracking_uri
    if not tracking_uri:
        return {}
    credentials = mlflow_credentials(kube, project.metadata.namespace or "", project.spec.mlflow)
    timeout = min(float(project.spec.mlflow.request_timeout_seconds), settings.audit_request_timeout_seconds)
    retries = min(project.spec.mlflow.max_retries, settings.audit_max_retries)
    ends = time.monotonic() + settings.audit_pass_seconds
    attempts: dict[str, Attempt] = {}
    failures = 0
    for raw in pending:
        remaining = ends - time.monotonic()
        if remaining <= 1 or failures >= CONSECUTIVE_FAILURES:
            break
        try:
            record = AuditRecord.from_compact(raw)
        except (ValueError, ValidationError) as error:
            attempts[record_id(raw)] = Attempt("undeliverable", f"not an audit record: {str(error)[:200]}")
            continue
        try:
            run = deliver(
                record,
                tracking_uri,
                timeout=timeout,
                max_retries=retries,
                credentials=credentials,
                deadline=min(settings.audit_record_deadline_seconds, remaining),
            )
        except PermanentDeliveryError as error:
            attempts[record.id] = Attempt("undeliverable", str(error))
            continue
        except (DeliveryError, OSError, ValueError) as error:
            attempts[record.id] = Attempt("retry", str(error))
            failures += 1
            continue
        failures = 0
        attempts[record.id] = Attempt(
            "delivered", mlflow=MlflowRunRef(experiment=run.experiment, run_id=run.run_id, run_url=run.run_url)
        )
    return attempts


class AuditDeliveries:
    """Delivery passes over objects' pending records, at most one per object at a time."""

    def __init__(self, kube: Kube, settings: OperatorSettings, locks: ObjectLocks) -> None:
        self.kube = kube
        self.settings = settings
        self.locks = locks
        self._executor = ThreadPoolExecutor(max_workers=settings.audit_workers, thread_name_prefix="audit")
        self._guard = threading.Lock()
        self._queued: set[tuple[str, str, str]] = set()

    def submit(self, kind: str, namespace: str, name: str) -> bool:
        """Queue a pass for the object unless one is queued or running; returns at once."""
        key = (kind, namespace, name)
        with self._guard:
            if key in self._queued:
                return False
            self._queued.add(key)
        self._executor.submit(self._run, key)
        return True

    def idle(self) -> bool:
        with self._guard:
            return not self._queued

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _run(self, key: tuple[str, str, str]) -> None:
        kind, namespace, name = key
        try:
            self._pass(kind, namespace, name)
        except Exception as error:  # a pass that fails is tried again by the next timer
            log.warning("audit delivery pass failed: %s", brief(error), extra=object_fields(namespace, name))
        finally:
            with self._guard:
                self._queued.discard(key)

    def _objects(self, kind: str, namespace: str, name: str) -> tuple[Obj | None, Obj | None]:
        """The object and the project whose MLflow settings its records go with."""
        if kind == FEATURE_STORE_PROJECT_KIND:
            body = self.kube.get_custom(FEATURE_STORE_PROJECT_PLURAL, namespace, name)
            return body, body
        body = self.kube.get_custom(MATERIALIZATION_JOB_PLURAL, namespace, name)
        if body is None:
            return None, None
        project_name = ((body.get("spec") or {}).get("projectRef") or {}).get("name", "")
        return body, self.kube.get_custom(FEATURE_STORE_PROJECT_PLURAL, namespace, project_name)

    def _pass(self, kind: str, namespace: str, name: str) -> None:
        body, project = self._objects(kind, namespace, name)
        if body is None or project is None:
            return
        pending = list((body.get("status") or {}).get("pendingAudit") or [])
        if not pending:
            return
        attempts = delivery_pass(self.kube, pending, project, self.settings)
        if attempts:
            self._write_back(kind, namespace, name, attempts)

    def _write_back(self, kind: str, namespace: str, name: str, attempts: dict[str, Attempt]) -> None:
        is_project = kind == FEATURE_STORE_PROJECT_KIND
        plural = FEATURE_STORE_PROJECT_PLURAL if is_project else MATERIALIZATION_JOB_PLURAL
        with self.locks.hold(kind, namespace, name):
            body = self.kube.get_custom(plural, namespace, name)
            if body is None:
                return
            status: FeatureStoreProjectStatus | MaterializationJobStatus
            status = (FeatureStoreProjectStatus if is_project else MaterializationJobStatus).from_k8s(
                body.get("status")
            )
            settled = settle(status.pending_audit, status.undeliverable_audit, attempts, utc_now())
            status.pending_audit, status.undeliverable_audit = settled.pending, settled.undeliverable
            if isinstance(status, FeatureStoreProjectStatus):
                for last in (status.last_apply, status.last_successful_apply):
                    if last is not None and last.audit_id in settled.delivered:
                        last.mlflow = settled.delivered[last.audit_id]
            elif status.audit_id in settled.delivered:
                status.mlflow = settled.delivered[status.audit_id]
            self.kube.write_status(plural, body, status, PROJECT_AUDIT if is_project else RUN_AUDIT)
        fields = object_fields(namespace, name)
        for audit_id, reason in settled.set_aside:
            log.warning("audit record %s set aside: %s", audit_id, reason, extra=fields)
            emit(self.kube, body, "Warning", AUDIT_UNDELIVERABLE, f"audit record {audit_id} set aside: {reason}")
        metrics.audit_undeliverable(namespace, len(settled.set_aside))
        if settled.dropped:
            emit(self.kube, body, "Warning", AUDIT_DROPPED, dropped_message(settled.dropped))
            metrics.audit_lost(namespace, "cap", len(settled.dropped))
        labels = metrics.ProjectLabels.of(body) if is_project else None
        if labels is not None:
            metrics.audit_pending(labels, len(status.pending_audit))
        project_labels = labels or self._project_labels(body)
        if project_labels is not None:
            for _ in settled.delivered:
                metrics.audit_delivered(project_labels)

    def _project_labels(self, run: Obj) -> metrics.ProjectLabels | None:
        project_name = ((run.get("spec") or {}).get("projectRef") or {}).get("name", "")
        project = self.kube.get_custom(FEATURE_STORE_PROJECT_PLURAL, run["metadata"]["namespace"], project_name)
        return metrics.ProjectLabels.of(project) if project is not None else None

    def releasable(self, kind: str, body: Obj) -> Obj | None:
        """The object being deleted (``body``), as it may let go of its finalizer now: nothing was
        pending, or its records were delivered or abandoned (then read afresh, for the release's
        conditional patch); None while they wait (its deletion is looked at again), or if it went."""
        if not (body.get("status") or {}).get("pendingAudit"):
            return body
        meta = body.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        if self.before_deletion(kind, namespace, name) is not None:
            return None
        plural = FEATURE_STORE_PROJECT_PLURAL if kind == FEATURE_STORE_PROJECT_KIND else MATERIALIZATION_JOB_PLURAL
        return self.kube.get_custom(plural, namespace, name)

    def before_deletion(self, kind: str, namespace: str, name: str) -> float | None:
        """Seconds to wait before the object may go (its records are being delivered), or None:
        nothing pending, or the bounded wait is over and what is left is abandoned."""
        body, project = self._objects(kind, namespace, name)
        if body is None:
            return None
        pending: list[Any] = list((body.get("status") or {}).get("pendingAudit") or [])
        since = body["metadata"].get("deletionTimestamp")
        # Without its project a run's records have no MLflow to go to: nothing to wait for.
        wait = timedelta(seconds=self.settings.audit_deletion_wait_seconds if project is not None else 0)
        verdict = on_deletion(pending, parse_rfc3339(since) if since else None, utc_now(), wait, DELETION_POLL_SECONDS)
        if verdict.wait_seconds is not None:
            self.submit(kind, namespace, name)
            return verdict.wait_seconds
        if verdict.abandoned:
            message = (
                f"{len(verdict.abandoned)} audit record(s) abandoned on deletion, MLflow did not take them in "
                f"{wait.total_seconds():g}s: {', '.join(verdict.abandoned[:5])}"
            )
            log.warning(message, extra=object_fields(namespace, name))
            emit(self.kube, body, "Warning", AUDIT_ABANDONED, message)
            metrics.audit_lost(namespace, "abandoned", len(verdict.abandoned))
        return None
