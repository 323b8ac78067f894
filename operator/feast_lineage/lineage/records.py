"""MLflow runs and model versions (REST JSON) and Kubernetes objects, read into plain facts.

Pure functions: every input is what the REST API or the API server returned, every output a
value of :mod:`.answers` or a small dataclass.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from feast_lineage.audit import tags as ops_tags
from feast_lineage.domain import labels
from feast_lineage.lineage.answers import (
    ApplyEntry,
    Changes,
    MaterializationEntry,
    ModelVersionRef,
    RunRef,
)

# Tags the injected MLFLOW_RUN_CONTEXT puts on every run of a training pod.
TAG_NAMESPACE = "k8s.namespace"
TAG_POD = "k8s.pod"
TAG_POD_UID = "k8s.pod_uid"
TAG_CONTAINER = "k8s.container"
TAG_IMAGE = "k8s.image"
TAG_OWNER_KIND = "k8s.owner_kind"
TAG_OWNER_NAME = "k8s.owner_name"
TAG_JOB = "k8s.job"
TAG_PROJECT = "featurelineage.project"
TAG_FEAST_PROJECT_OF_POD = "featurelineage.feast_project"
TAG_ROLE = "featurelineage.role"
TAG_REVISION = "featurelineage.revision"
TAG_APPLY_RUN_ID = "featurelineage.apply_run_id"
TAG_GIT_COMMIT = "git.commit"
# Tags of operation runs (besides feast_lineage.audit.tags).
TAG_KIND = "k8s.kind"
TAG_NAME = "k8s.name"
TAG_OPS_PROJECT = "k8s.project"
TAG_GENERATION = "k8s.generation"
TAG_UID = "k8s.uid"
TAG_TRIGGER = "featurelineage.trigger"
TAG_GIT_REVISION = "git.revision"
# Tags Feast puts on a run inside which features were retrieved, and on registered versions.
TAG_FEATURE_SERVICE = "feast.feature_service"
TAG_FEATURE_VIEWS = "feast.feature_views"
TAG_FEATURE_REFS = "feast.feature_refs"
TAG_ENTITY_DF_TYPE = "feast.entity_df_type"
TAG_ENTITY_DF_ROWS = "feast.entity_df_rows"
TAG_ENTITY_DF_COLUMNS = "feast.entity_df_columns"
TAG_ENTITY_DF_QUERY = "feast.entity_df_query"
TAG_START_DATE = "feast.start_date"
TAG_END_DATE = "feast.end_date"
ENTITY_DF_ARTIFACT = "entity_df.parquet"

_TRUNCATED = re.compile(r"^\.\.\.\(\+\d+\)$")
# The runner's change notation in status.lastApply.changes.
_CHANGE_MARKS = {"+": "created", "~": "updated", "-": "deleted"}


def from_millis(value: Any) -> datetime.datetime | None:
    try:
        millis = int(value)
    except (TypeError, ValueError):
        return None
    if millis <= 0:
        return None
    return datetime.datetime.fromtimestamp(millis / 1000, tz=datetime.UTC)


def from_rfc3339(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def split_names(value: str | None) -> list[str]:
    """A comma-separated tag as names, without the ``...(+N)`` marker of a capped list."""
    if not value:
        return []
    return [name.strip() for name in value.split(",") if name.strip() and not _TRUNCATED.match(name.strip())]


def _key_values(items: Any) -> dict[str, str]:
    if isinstance(items, Mapping):
        return {str(key): str(value) for key, value in items.items()}
    return {str(item["key"]): str(item.get("value", "")) for item in items or [] if isinstance(item, Mapping)}


@dataclass(frozen=True)
class Run:
    """An MLflow run as the REST API returns it (or a pending audit record, before delivery)."""

    run_id: str
    run_name: str | None = None
    experiment_id: str | None = None
    status: str | None = None
    start: datetime.datetime | None = None
    end: datetime.datetime | None = None
    user: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    delivered: bool = True
    """False for an audit record the operator still holds in status.pendingAudit."""

    def tag(self, key: str) -> str | None:
        value = self.tags.get(key)
        return value if value else None


def parse_run(raw: Mapping[str, Any]) -> Run:
    info = raw.get("info") or {}
    data = raw.get("data") or {}
    run_tags = _key_values(data.get("tags"))
    return Run(
        run_id=str(info.get("run_id") or info.get("run_uuid") or ""),
        run_name=info.get("run_name") or run_tags.get("mlflow.runName"),
        experiment_id=str(info["experiment_id"]) if info.get("experiment_id") is not None else None,
        status=info.get("status"),
        start=from_millis(info.get("start_time")),
        end=from_millis(info.get("end_time")),
        user=info.get("user_id") or None,
        tags=run_tags,
        params=_key_values(data.get("params")),
    )


def run_from_pending_audit(compact: Mapping[str, Any]) -> Run | None:
    """A record of status.pendingAudit (the compact audit record) as a not-yet-delivered run."""
    from feast_lineage.audit.record import AuditRecord

    try:
        record = AuditRecord.from_compact(compact)
    except ValueError:
        return None
    return Run(
        run_id="",
        run_name=record.run_name,
        status=record.status,
        start=from_millis(record.start_time_ms),
        end=from_millis(record.end_time_ms),
        tags={**record.tags, ops_tags.AUDIT_ID: record.id},
        params=dict(record.params),
        delivered=False,
    )


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    aliases: tuple[str, ...] = ()
    status: str | None = None
    created: datetime.datetime | None = None
    run_id: str | None = None
    source: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def ref(self) -> ModelVersionRef:
        return ModelVersionRef(
            name=self.name,
            version=self.version,
            aliases=sorted(self.aliases),
            status=self.status,
            created=self.created,
            run_id=self.run_id,
            source=self.source,
            feature_service=self.tags.get(TAG_FEATURE_SERVICE) or None,
            uri=f"models:/{self.name}/{self.version}",
        )


def parse_model_version(raw: Mapping[str, Any]) -> ModelVersion:
    return ModelVersion(
        name=str(raw.get("name", "")),
        version=str(raw.get("version", "")),
        aliases=tuple(str(alias) for alias in raw.get("aliases") or []),
        status=raw.get("status"),
        created=from_millis(raw.get("creation_timestamp")),
        run_id=raw.get("run_id") or None,
        source=raw.get("source") or None,
        tags=_key_values(raw.get("tags")),
    )


def run_url(base_url: str | None, experiment_id: str | None, run_id: str) -> str | None:
    if not base_url or not experiment_id or not run_id:
        return None
    return f"{base_url}/#/experiments/{experiment_id}/runs/{run_id}"


def tracking_base_of(run_url_value: str | None) -> str | None:
    """The tracking server of a run URL the operator recorded (``<server>/#/experiments/...``)."""
    if not run_url_value or "/#/" not in run_url_value:
        return None
    base = run_url_value.split("/#/", 1)[0].rstrip("/")
    return base if re.match(r"^https?://", base) else None


# -- outcomes --------------------------------------------------------------------------------------


def _run_outcome(run: Run) -> str | None:
    outcome = run.tag(ops_tags.OUTCOME)
    if outcome:
        return outcome
    return {"FINISHED": "succeeded", "FAILED": "failed", "KILLED": "failed", "RUNNING": "running"}.get(run.status or "")


def _job_outcome(job: Mapping[str, Any]) -> str:
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "succeeded"
        if condition.get("status") == "True" and condition.get("type") in ("Failed", "FailureTarget"):
            return "failed"
    if status.get("succeeded"):
        return "succeeded"
    if status.get("failed"):
        return "failed"
    return "running" if status.get("active") or status.get("startTime") else "pending"


def job_status(job: Mapping[str, Any] | None) -> str | None:
    """Complete | Failed | Running | Pending, as ``kubectl get job`` would summarize it."""
    if job is None:
        return None
    return {"succeeded": "Complete", "failed": "Failed", "running": "Running", "pending": "Pending"}[_job_outcome(job)]


# -- applies ---------------------------------------------------------------------------------------


def changes_from_tags(run_tags: Mapping[str, str]) -> Changes | None:
    """The runner's per-transition tags (``feast.feature_views_created`` ...) in change notation.

    ``None`` for a run the operator did not make (no audit id): Feast's own apply runs report
    every materialized view as updated, so their tags cannot say what changed.
    """
    if ops_tags.AUDIT_ID not in run_tags:
        return None
    marks = {"created": "+", "updated": "~", "deleted": "-"}
    found: dict[str, list[str]] = {}
    for kind in ("feature_views", "feature_services", "entities"):
        marked = [
            marks[transition] + name
            for transition in _TRANSITIONS
            for name in split_names(run_tags.get(ops_tags.transition_tag(kind, transition)))
        ]
        found[kind] = sorted(marked, key=lambda item: (item[1:], item[0]))
    return Changes(
        feature_views=found["feature_views"], feature_services=found["feature_services"], entities=found["entities"]
    )


_TRANSITIONS = ("created", "updated", "deleted")


def changes_from_status(changes: Mapping[str, Any] | None) -> Changes | None:
    if changes is None:
        return None
    return Changes(
        feature_views=list(changes.get("featureViews") or []),
        feature_services=list(changes.get("featureServices") or []),
        entities=list(changes.get("entities") or []),
    )


def changed_views(changes: Changes | None, transitions: Iterable[str] = ("created", "updated")) -> set[str]:
    """Names of feature views the changes created or updated (by default)."""
    if changes is None:
        return set()
    wanted = {mark for mark, transition in _CHANGE_MARKS.items() if transition in set(transitions)}
    return {item[1:] for item in changes.feature_views if item[:1] in wanted}


def apply_from_run(run: Run, base_url: str | None) -> ApplyEntry:
    source = "mlflow" if run.delivered else "pendingAudit"
    generation = run.tag(TAG_GENERATION)
    return ApplyEntry(
        audit_id=run.tag(ops_tags.AUDIT_ID),
        time=run.end or run.start,
        start_time=run.start,
        outcome=_run_outcome(run),
        trigger=run.tag(TAG_TRIGGER),
        revision=run.tag(TAG_GIT_REVISION),
        commit=run.tag(TAG_GIT_COMMIT) or run.tag(ops_tags.GIT_COMMIT),
        changes=changes_from_tags(run.tags),
        error=run.tag(ops_tags.ERROR),
        job_name=run.tag(TAG_JOB),
        generation=int(generation) if generation and generation.isdigit() else None,
        run=RunRef(run_id=run.run_id, url=run_url(base_url, run.experiment_id, run.run_id)) if run.run_id else None,
        sources=[source],
    )


def apply_from_job(job: Mapping[str, Any]) -> ApplyEntry:
    meta = job.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    status = job.get("status") or {}
    generation = annotations.get(labels.ANNOTATION_GENERATION, "")
    started = from_rfc3339(status.get("startTime")) or from_rfc3339(meta.get("creationTimestamp"))
    return ApplyEntry(
        audit_id=annotations.get(labels.ANNOTATION_AUDIT_ID),
        time=from_rfc3339(status.get("completionTime")) or _failed_time(status) or started,
        start_time=started,
        outcome=_job_outcome(job),
        trigger=annotations.get(labels.ANNOTATION_TRIGGER),
        revision=annotations.get(labels.ANNOTATION_REVISION),
        commit=annotations.get(labels.ANNOTATION_COMMIT),
        job_name=meta.get("name"),
        generation=int(generation) if generation.isdigit() else None,
        sources=["job"],
    )


def _failed_time(status: Mapping[str, Any]) -> datetime.datetime | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            return from_rfc3339(condition.get("lastTransitionTime"))
    return None


def apply_from_status(last_apply: Mapping[str, Any]) -> ApplyEntry:
    mlflow = last_apply.get("mlflow") or {}
    outcome = last_apply.get("outcome")
    return ApplyEntry(
        audit_id=last_apply.get("auditId"),
        time=from_rfc3339(last_apply.get("time")),
        outcome=outcome.lower() if isinstance(outcome, str) else None,
        trigger=last_apply.get("trigger"),
        revision=last_apply.get("revision"),
        commit=last_apply.get("commit"),
        changes=changes_from_status(last_apply.get("changes")),
        error=last_apply.get("error"),
        job_name=last_apply.get("jobName"),
        run=RunRef(run_id=mlflow["runId"], url=mlflow.get("runUrl")) if mlflow.get("runId") else None,
        sources=["status"],
    )


# -- materializations ------------------------------------------------------------------------------


def materialization_from_run(run: Run, base_url: str | None) -> MaterializationEntry:
    operation = run.tag(ops_tags.OPERATION) or ""
    return MaterializationEntry(
        name=run.tag(TAG_NAME),
        audit_id=run.tag(ops_tags.AUDIT_ID),
        time=run.end or run.start,
        start_time=run.start,
        outcome=_run_outcome(run),
        trigger=run.tag(TAG_TRIGGER),
        mode="Incremental" if operation == "materialize_incremental" else "Range" if operation else None,
        window_start=from_rfc3339(
            run.tag(ops_tags.MATERIALIZE_START_DATE) or run.params.get(ops_tags.MATERIALIZE_START_DATE)
        ),
        window_end=from_rfc3339(
            run.tag(ops_tags.MATERIALIZE_END_DATE) or run.params.get(ops_tags.MATERIALIZE_END_DATE)
        ),
        feature_views=split_names(run.tag(ops_tags.MATERIALIZE_FEATURE_VIEWS)),
        error=run.tag(ops_tags.ERROR),
        job_name=run.tag(TAG_JOB),
        run=RunRef(run_id=run.run_id, url=run_url(base_url, run.experiment_id, run.run_id)) if run.run_id else None,
        sources=["mlflow" if run.delivered else "pendingAudit"],
    )


def materialization_from_object(obj: Mapping[str, Any]) -> MaterializationEntry:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    window = status.get("window") or {}
    mlflow = status.get("mlflow") or {}
    phase = status.get("phase")
    started = from_rfc3339(status.get("startTime"))
    return MaterializationEntry(
        name=meta.get("name"),
        audit_id=status.get("auditId"),
        time=from_rfc3339(status.get("completionTime")) or started or from_rfc3339(meta.get("creationTimestamp")),
        start_time=started,
        outcome=phase.lower() if isinstance(phase, str) else "pending",
        trigger=(status.get("provenance") or {}).get("triggeredBy"),
        mode=spec.get("mode"),
        window_start=from_rfc3339(window.get("start") or spec.get("startTime")),
        window_end=from_rfc3339(window.get("end") or spec.get("endTime")),
        feature_views=list(status.get("featureViews") or spec.get("featureViews") or []),
        error=status.get("message") if phase == "Failed" else None,
        job_name=status.get("jobName"),
        run=RunRef(run_id=mlflow["runId"], url=mlflow.get("runUrl")) if mlflow.get("runId") else None,
        sources=["materializationJob"],
    )


def pending_runs(obj: Mapping[str, Any]) -> list[Run]:
    """Audit records an object's status still holds for MLflow."""
    found = []
    for compact in (obj.get("status") or {}).get("pendingAudit") or []:
        run = run_from_pending_audit(compact) if isinstance(compact, Mapping) else None
        if run is not None:
            found.append(run)
    return found
