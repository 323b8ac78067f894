"""The MLflow record of an operation's outcome that no runner logged.

A run the operator fails before any Job exists (an unknown feature view, a window in the future,
a revision whose snapshot is gone), and a run's or an apply's Job that ended without a word from its
runner (stopped at its deadline, killed for memory, its pod evicted) are operations a user asked
for: each gets one FAILED run with its reason and message (which ones need it is decided in
:mod:`feast_lineage.domain.unlogged_outcome`). The record is kept in the object's ``pendingAudit``
and delivered by the same exactly-once redelivery as a record the runner could not deliver; it
carries the operation's audit id, so a runner that did log before it was stopped never gets a
second run.
"""

from __future__ import annotations

import datetime

from feast_lineage.api import FeatureStoreProject, LastApply, MaterializationJobSpec, MaterializationJobStatus
from feast_lineage.audit import AuditRecord
from feast_lineage.audit import tags as audit_tags
from feast_lineage.audit.caps import join_capped
from feast_lineage.domain.provenance import TAG_REVISION
from feast_lineage.domain.runner_outcome import JobObservation
from feast_lineage.redaction import KNOWN
from feast_lineage.timestamps import parse_rfc3339, rfc3339


def operations_logged(project: FeatureStoreProject, tracking_uri: str | None) -> bool:
    """Whether the project's operations go to MLflow: logging is on and there is a server to log to
    (the project's, else the operator's ``tracking_uri``)."""
    mlflow = project.spec.mlflow
    return mlflow.log_operations and bool(mlflow.tracking_uri or tracking_uri)


def _ms(moment: datetime.datetime | None, default: datetime.datetime) -> int:
    return int((moment or default).timestamp() * 1000)


def _failed_run(
    *,
    audit_id: str,
    experiment: str,
    operation: str,
    project: str,
    reason: str,
    message: str,
    run_tags: dict[str, str],
    params: dict[str, str],
    started: int,
    ended: int,
) -> AuditRecord:
    """One FAILED run: ``run_tags`` (provenance and what is known of the operation), then its outcome."""
    run_tags = {
        **run_tags,
        audit_tags.OPERATION: operation,
        audit_tags.PROJECT: project,
        audit_tags.OUTCOME: audit_tags.OUTCOME_FAILED,
        audit_tags.REASON: reason,
        audit_tags.ERROR: message,
    }
    return AuditRecord(
        id=audit_id,
        experiment=experiment,
        run_name=audit_tags.run_name(
            operation, project, run_tags.get(audit_tags.K8S_NAMESPACE), run_tags.get(audit_tags.K8S_NAME)
        ),
        status="FAILED",
        start_time_ms=min(started, ended),
        end_time_ms=ended,
        # A message may quote what a pod or Git said: redacted as the runner's own records are.
        tags=KNOWN.redact_data(run_tags),
        params=params,
        metrics={audit_tags.DURATION_SEC: round(max(0, ended - started) / 1000, 4)},
    )


def _ops_experiment(project: FeatureStoreProject) -> str:
    return f"{project.spec.project}{project.spec.mlflow.ops_experiment_suffix}"


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
    """A run's FAILED record with the reason and message status gives, and what was known of the run."""
    incremental = spec is None or spec.mode == "Incremental"
    run_tags = dict(provenance)
    if status.feature_views:
        run_tags[audit_tags.MATERIALIZE_FEATURE_VIEWS] = join_capped(status.feature_views)
    params: dict[str, str] = {}
    window = status.window
    start = window.start if window is not None else spec.start_time if spec is not None else None
    end = window.end if window is not None else spec.end_time if spec is not None else None
    for name, moment in ((audit_tags.MATERIALIZE_START_DATE, start), (audit_tags.MATERIALIZE_END_DATE, end)):
        if moment is not None:
            params[name] = run_tags[name] = rfc3339(moment)
    return _failed_run(
        audit_id=audit_id,
        experiment=_ops_experiment(project),
        operation="materialize_incremental" if incremental else "materialize",
        project=project.spec.project,
        reason=status.reason or "Failed",
        message=status.message or status.reason or "failed",
        run_tags=run_tags,
        params=params,
        started=_ms(status.start_time, created),
        ended=_ms(status.completion_time, now),
    )


def apply_outcome_record(
    *, project: FeatureStoreProject, job: JobObservation, recorded: LastApply, now: datetime.datetime
) -> AuditRecord | None:
    """An apply's FAILED record: the provenance tags its Job gave the runner, the revision, commit and
    snapshot status records, the Job's reason (DeadlineExceeded, BackoffLimitExceeded, ...) and the
    time from the Job's start to its end. None without an audit id to key it by."""
    if not recorded.audit_id:
        return None
    run_tags = dict(job.told.provenance)
    if recorded.revision:
        run_tags.setdefault(TAG_REVISION, recorded.revision)
    if recorded.commit:
        run_tags[audit_tags.GIT_COMMIT] = recorded.commit
    if recorded.snapshot:
        run_tags[audit_tags.SNAPSHOT] = recorded.snapshot
    ended = _ms(recorded.time, now)
    return _failed_run(
        audit_id=recorded.audit_id,
        # The experiment the runner was told to log to: a runner that did log has its run there.
        experiment=job.told.experiment or _ops_experiment(project),
        operation="apply",
        project=project.spec.project,
        reason=job.job_reason or "ApplyFailed",
        message=recorded.error or job.message or "the apply's Job failed without a word from its runner",
        run_tags=run_tags,
        params={},
        # No start time (the Job never started): a duration of nothing rather than a guess.
        started=_ms(parse_rfc3339(job.started_at) if job.started_at else None, now),
        ended=ended,
    )
