"""Deliver audit records that a runner could not log (MLflow was down) once MLflow is back.

Delivery is exactly-once because every run carries its record's id as a tag and
``deliver`` looks for it before creating anything; a record leaves status only
after MLflow has it.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from feast_lineage.api import FeatureStoreProject, MlflowConfig, MlflowRunRef
from feast_lineage.audit import AuditRecord, Credentials, DeliveryError, deliver
from feast_lineage.controller import metrics
from feast_lineage.controller.kube import Kube, Obj, read
from feast_lineage.controller.logs import object_fields
from feast_lineage.redaction import KNOWN

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

    KNOWN.learn(value(key) for key in data)
    return Credentials(
        username=value(spec.username_key), password=value(spec.password_key), token=value(spec.token_key)
    )


@dataclass(frozen=True)
class Redelivery:
    remaining: list[dict[str, Any]]
    """Records still pending, in their order."""
    delivered: dict[str, MlflowRunRef]
    """The MLflow run of each delivered record, by record id."""


def redeliver_pending(
    kube: Kube, body: Obj, pending: list[dict[str, Any]], project_body: Obj, default_tracking_uri: str | None
) -> Redelivery | None:
    """Offer ``pending`` (records of ``body``, a project or a run) to MLflow with ``project_body``'s settings;
    None when nothing was delivered."""
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
    delivered: dict[str, MlflowRunRef] = {}
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
        delivered[record.id] = MlflowRunRef(experiment=run.experiment, run_id=run.run_id, run_url=run.run_url)
        if project_labels is not None:
            metrics.audit_delivered(project_labels)
    if not delivered:
        return None
    return Redelivery(remaining, delivered)
