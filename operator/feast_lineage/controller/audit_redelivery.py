"""Deliver audit records that a runner could not log (MLflow was down) once MLflow is back.

Delivery is exactly-once because every run carries its record's id as a tag and
``deliver`` looks for it before creating anything; a record leaves status only
after MLflow has it.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from pydantic import ValidationError

from feast_lineage.api import FeatureStoreProject, MlflowConfig
from feast_lineage.audit import AuditRecord, Credentials, DeliveryError, deliver
from feast_lineage.controller import metrics
from feast_lineage.controller.kube import Kube, Obj, read
from feast_lineage.controller.logs import object_fields

log = logging.getLogger(__name__)


def mlflow_credentials(kube: Kube, namespace: str, mlflow: MlflowConfig) -> Credentials:
    """The credentials spec.mlflow.credentials names, read from the project's namespace."""
    spec = mlflow.credentials
    if spec is None:
        return Credentials()
    secret = read(kube.core.read_namespaced_secret, spec.secret_name, namespace)
    data = (secret or {}).get("data") or {}

    def value(key: str | None) -> str | None:
        return base64.b64decode(data[key]).decode() if key and key in data else None

    return Credentials(
        username=value(spec.username_key), password=value(spec.password_key), token=value(spec.token_key)
    )


def redeliver_pending(
    kube: Kube, body: Obj, project_body: Obj, default_tracking_uri: str | None
) -> dict[str, Any] | None:
    """Try each record pending in ``body`` (a project or a run) with ``project_body``'s MLflow settings;
    return the new status, or None when nothing changed."""
    status = dict(body.get("status") or {})
    pending = list(status.get("pendingAudit") or [])
    if not pending:
        return None
    try:
        project = FeatureStoreProject.model_validate(
            {k: project_body[k] for k in ("apiVersion", "kind", "metadata", "spec")}
        )
    except ValidationError:
        return None
    tracking_uri = project.spec.mlflow.tracking_uri or default_tracking_uri
    if not tracking_uri:
        return None
    credentials = mlflow_credentials(kube, project.metadata.namespace or "", project.spec.mlflow)
    project_labels = metrics.ProjectLabels.of(project_body)
    remaining: list[dict[str, Any]] = []
    delivered: dict[str, dict[str, str]] = {}
    for index, raw in enumerate(pending):
        try:
            record = AuditRecord.from_compact(raw)
            run = deliver(
                record,
                tracking_uri,
                timeout=project.spec.mlflow.request_timeout_seconds,
                max_retries=project.spec.mlflow.max_retries,
                credentials=credentials,
            )
        except (DeliveryError, ValueError) as error:
            meta = body.get("metadata") or {}
            log.info(
                "audit record not delivered yet: %s",
                error,
                extra=object_fields(meta.get("namespace"), meta.get("name")),
            )
            # MLflow is still unreachable: keep this one and the rest for the next attempt.
            remaining.extend(pending[index:])
            break
        delivered[record.id] = {"experiment": run.experiment, "runId": run.run_id, "runUrl": run.run_url}
        if project_labels is not None:
            metrics.audit_delivered(project_labels)
    if not delivered:
        return None
    status["pendingAudit"] = remaining
    last_apply = dict(status.get("lastApply") or {})
    if last_apply.get("auditId") in delivered:
        last_apply["mlflow"] = delivered[last_apply["auditId"]]
        status["lastApply"] = last_apply
    if status.get("auditId") in delivered:
        status["mlflow"] = delivered[status["auditId"]]
    return status
