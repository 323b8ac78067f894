"""The MLflow record of a run's outcome that no runner logged.

A run the operator fails before any Job exists (an unknown feature view, a window in the future,
a revision whose snapshot is gone) and a Job that ended without a word from its runner (stopped at
its deadline, killed for memory) are operations a user asked for: each gets one FAILED run with
its reason and message. The record is kept in the run's ``pendingAudit`` and delivered by the
same exactly-once redelivery as a record the runner could not deliver; it carries the run's audit
id, so a runner that did log before it was stopped never gets a second run.
"""

from __future__ import annotations

import datetime

from feast_lineage.api import FeatureStoreProject, MaterializationJobSpec, MaterializationJobStatus
from feast_lineage.audit import AuditRecord
from feast_lineage.audit import tags as audit_tags
from feast_lineage.audit.caps import join_capped
from feast_lineage.domain.runner_outcome import JobObservation
from feast_lineage.timestamps import rfc3339


def needs_record(status: MaterializationJobStatus, finished: JobObservation | None) -> bool:
    """Whether a run that just failed has no MLflow run and no record on its way to one."""
    if status.phase != "Failed" or status.mlflow is not None or status.pending_audit:
        return False
    result = finished.result if finished is not None else None
    return result is None or (result.mlflow is None and result.audit is None)


def _ms(moment: datetime.datetime | None, default: datetime.datetime) -> int:
    return int((moment or default).timestamp() * 1000)


def outcome_record(
    *,
    audit_id: str,
    project: FeatureStoreProject,
    spec: MaterializationJobSpec | None,
    status: MaterializationJobStatus,
    provenance: dict[str, str],
    created: datetime.datetime,
    now: datetime.datetime,
) -> AuditRecord:
    """One FAILED run with the reason and message status gives, and what was known of the run."""
    incremental = spec is None or spec.mode == "Incremental"
    operation = "materialize_incremental" if incremental else "materialize"
    run_tags = dict(provenance)
    run_tags.update(
        {
            audit_tags.OPERATION: operation,
            audit_tags.PROJECT: project.spec.project,
            audit_tags.OUTCOME: audit_tags.OUTCOME_FAILED,
            audit_tags.REASON: status.reason or "Failed",
            audit_tags.ERROR: status.message or status.reason or "failed",
        }
    )
    if status.feature_views:
        run_tags[audit_tags.MATERIALIZE_FEATURE_VIEWS] = join_capped(status.feature_views)
    params: dict[str, str] = {}
    window = status.window
    start = window.start if window is not None else spec.start_time if spec is not None else None
    end = window.end if window is not None else spec.end_time if spec is not None else None
    for name, moment in ((audit_tags.MATERIALIZE_START_DATE, start), (audit_tags.MATERIALIZE_END_DATE, end)):
        if moment is not None:
            params[name] = run_tags[name] = rfc3339(moment)
    started, ended = _ms(status.start_time, created), _ms(status.completion_time, now)
    return AuditRecord(
        id=audit_id,
        experiment=f"{project.spec.project}{project.spec.mlflow.ops_experiment_suffix}",
        run_name=audit_tags.run_name(
            operation,
            project.spec.project,
            provenance.get(audit_tags.K8S_NAMESPACE),
            provenance.get(audit_tags.K8S_NAME),
        ),
        status="FAILED",
        start_time_ms=min(started, ended),
        end_time_ms=ended,
        tags=run_tags,
        params=params,
        metrics={audit_tags.DURATION_SEC: round(max(0, ended - started) / 1000, 4)},
    )
