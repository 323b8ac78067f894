"""Which failed operations have no MLflow record unless the operator makes one: pure decisions, no I/O.

A runner logs its own MLflow run when its operation ends, or hands the record back in its result
when MLflow is down. A runner that never got to say anything - its Job stopped at its deadline,
killed for memory, its pod evicted or deleted, its image never pulled - leaves neither, and nor does
a run the operator fails before any Job exists. Each is still an operation a user asked for: the
operator makes its FAILED record, keyed by the operation's audit id, so a runner that did log
before it was stopped never gets a second run.
"""

from __future__ import annotations

from feast_lineage.api import LastApply, MaterializationJobStatus
from feast_lineage.contract import RunnerResult
from feast_lineage.domain.runner_outcome import JobObservation


def unreported(result: RunnerResult | None) -> bool:
    """Whether the runner logged no MLflow run and handed back no record to deliver."""
    return result is None or (result.mlflow is None and result.audit is None)


def run_needs_record(status: MaterializationJobStatus, finished: JobObservation | None) -> bool:
    """Whether a run that just failed has no MLflow run and no record on its way to one."""
    if status.phase != "Failed" or status.mlflow is not None or status.pending_audit:
        return False
    return unreported(finished.result if finished is not None else None)


def apply_needs_record(recorded: LastApply, job: JobObservation) -> bool:
    """Whether the apply ``recorded`` (just recorded from ``job``) failed with no MLflow run and no
    record on its way to one. Without an audit id (a Job this operator did not make) there is no
    key to record it by exactly once."""
    return (
        job.state == "failed"
        and recorded.outcome == "Failed"
        and recorded.mlflow is None
        and bool(recorded.audit_id)
        and unreported(job.result)
    )
