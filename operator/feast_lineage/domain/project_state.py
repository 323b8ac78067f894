"""Decide what a FeatureStoreProject needs next and what its status says, from what was observed.

The controller gathers the observations (the repo's identity, missing inputs,
the apply Job for the current hash) and writes what this module returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from feast_lineage.api import (
    AppliedChanges,
    FeatureStoreProjectStatus,
    LastApply,
    MlflowRunRef,
    PendingApply,
    UnmaterializableView,
)
from feast_lineage.contract import MlflowRun, ObjectChanges
from feast_lineage.domain.apply_gate import AWAITING_APPROVAL, awaiting_message, held, impact_event, impact_status
from feast_lineage.domain.apply_plan import RepoIdentity
from feast_lineage.domain.audit_backlog import AUDIT_DROPPED, Record, add_pending, dropped_message
from feast_lineage.domain.conditions import DesiredCondition, Transition, find, kstatus, merge_conditions
from feast_lineage.domain.labels import (
    ANNOTATION_APPLY_HASH,
    ANNOTATION_AUDIT_ID,
    ANNOTATION_COMMIT,
    ANNOTATION_REPO_DIGEST,
    ANNOTATION_REVISION,
    ANNOTATION_SNAPSHOT,
    ANNOTATION_SPEC_HASH,
    ANNOTATION_TRIGGER,
)
from feast_lineage.domain.runner_outcome import JobObservation
from feast_lineage.domain.unlogged_outcome import apply_needs_record
from feast_lineage.timestamps import parse_rfc3339

APPLIED = "Applied"
SOURCE_AVAILABLE = "SourceAvailable"
SOURCE_REASONS = ("RepoNotFound", "GitUnreachable", "GitRevisionNotFound")
"""Input problems that are about the repo source itself."""
ERROR_LIMIT = 4096
REASON_LIMIT = 1024


@dataclass(frozen=True)
class InputProblem:
    """An input the project needs is missing or unusable: the project is Stalled until it is fixed."""

    reason: str  # InvalidSpec, RepoNotFound, SecretNotFound, GitUnreachable, GitRevisionNotFound
    message: str


@dataclass(frozen=True)
class ProjectObservation:
    generation: int | None
    status: FeatureStoreProjectStatus
    """The current status, as read."""
    problem: InputProblem | None = None
    repo: RepoIdentity | None = None
    apply_hash: str | None = None
    job_name: str | None = None
    job: JobObservation | None = None
    source_problem: InputProblem | None = None
    """The source cannot be reached, and ``repo`` is the last applied commit, which the registry holds."""
    other_applies: list[JobObservation] = field(default_factory=list)
    """The project's apply Jobs for other hashes: earlier applies, running or finished."""
    running_materializations: list[str] = field(default_factory=list)
    """Materialize Jobs of the project still running, when its registry is a file (one writer at a time)."""


@dataclass(frozen=True)
class UnloggedApply:
    """An apply that failed without a word from its runner: it needs the operator's MLflow record."""

    job: JobObservation
    recorded: LastApply
    """Its lastApply entry, as this decision records it."""


@dataclass
class ProjectDecision:
    create_job: bool
    status: FeatureStoreProjectStatus
    """The whole new status (fields other writers own are carried over as read)."""
    transitions: list[Transition] = field(default_factory=list)
    finished_job: JobObservation | None = None
    """Set when this decision records a Job's outcome for the first time (for metrics and Events)."""
    events: list[tuple[str, str, str]] = field(default_factory=list)
    """Events that are no condition's transition: (type, reason, message)."""
    delete_jobs: list[str] = field(default_factory=list)
    """Superseded apply Jobs whose pod never started: they must not start later and apply an old revision."""
    dropped_audit: list[str] = field(default_factory=list)
    """Ids of the oldest audit records dropped to keep pendingAudit within its cap."""
    unlogged_applies: list[UnloggedApply] = field(default_factory=list)
    """Applies recorded by this decision that have no MLflow run and no record on its way to one."""


def keep_records(decision: ProjectDecision, records: Sequence[Record]) -> None:
    """Add records the operator made (see ``unlogged_applies``) to pendingAudit, within its cap: the
    oldest beyond it are dropped and reported, as for any record."""
    dropped: list[str] = []
    for record in records:
        capped = add_pending(decision.status.pending_audit, record)
        decision.status.pending_audit = capped.kept
        dropped += capped.dropped
    if dropped:
        decision.dropped_audit += dropped
        decision.events.append(("Warning", AUDIT_DROPPED, dropped_message(dropped)))


def mlflow_ref(run: MlflowRun) -> MlflowRunRef:
    return MlflowRunRef(experiment=run.experiment, run_id=run.run_id, run_url=run.run_url)


def _applied_condition(up_to_date: bool, reason: str, message: str) -> DesiredCondition:
    return DesiredCondition(APPLIED, up_to_date, reason, message)


def _summary(last_apply: LastApply | None) -> str:
    last_apply = last_apply or LastApply()
    changes = last_apply.changes or AppliedChanges()
    changed = len(changes.feature_views) + len(changes.feature_services) + len(changes.entities)
    commit = f" (commit {last_apply.commit[:12]})" if last_apply.commit else ""
    what = f"{changed} object(s) changed" if changed else "no changes"
    return f"applied {last_apply.revision or ''}{commit}: {what}"


def _record(job: JobObservation, obs: ProjectObservation, now: datetime) -> LastApply:
    """The lastApply entry for a finished Job: built whole, so nothing of an earlier apply survives."""
    assert obs.repo is not None
    annotations = job.annotations or {}
    result = job.result
    current = annotations.get(ANNOTATION_APPLY_HASH, obs.apply_hash) == obs.apply_hash
    impact = impact_status(result.impact) if result is not None and result.impact is not None else None
    outcome = "Succeeded" if job.state == "succeeded" else "Failed"
    return LastApply(
        # An earlier apply's Job says what it applied; the current one is what was just resolved.
        revision=obs.repo.revision if current else annotations.get(ANNOTATION_REVISION),
        commit=result.git_commit
        if result and result.git_commit
        else (obs.repo.commit if current else annotations.get(ANNOTATION_COMMIT)),
        repo_digest=annotations.get(ANNOTATION_REPO_DIGEST),
        snapshot=annotations.get(ANNOTATION_SNAPSHOT),
        image=job.image,
        image_id=job.image_id,
        time=parse_rfc3339(job.finished_at) if job.finished_at else now,
        job_name=job.name,
        trigger=annotations.get(ANNOTATION_TRIGGER),
        outcome=AWAITING_APPROVAL if outcome == "Succeeded" and impact is not None and impact.held else outcome,
        error=job.message[:ERROR_LIMIT] if job.state == "failed" else None,
        impact=impact,
        spec_hash=annotations.get(ANNOTATION_SPEC_HASH),
        audit_id=annotations.get(ANNOTATION_AUDIT_ID),
        duration_seconds=round(result.duration_seconds, 3) if result is not None else None,
        changes=(
            AppliedChanges.model_validate(result.changes.model_dump())
            if result is not None and result.changes is not None
            else None
        ),
        mlflow=mlflow_ref(result.mlflow) if result is not None and result.mlflow is not None else None,
    )


def _finished_since_last_apply(obs: ProjectObservation, last_apply: LastApply | None) -> JobObservation | None:
    """The newest earlier apply Job that finished after the one status records: the registry holds what it did."""
    recorded_at = last_apply.time if last_apply is not None else None
    recorded_job = last_apply.job_name if last_apply is not None else None
    unrecorded = [
        job
        for job in obs.other_applies
        if job.state in ("succeeded", "failed")
        and job.finished_at is not None
        and job.name != recorded_job
        and (recorded_at is None or parse_rfc3339(job.finished_at) > recorded_at)
    ]
    return max(unrecorded, key=lambda job: parse_rfc3339(job.finished_at or ""), default=None)


def _record_finished(
    status: FeatureStoreProjectStatus, job: JobObservation, obs: ProjectObservation, now: datetime
) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Record ``job`` as the last apply; returns the ids of audit records the pendingAudit cap dropped
    for its record, and the Events its outcome calls for."""
    status.last_apply = _record(job, obs, now)
    result = job.result
    if status.last_apply.outcome == "Succeeded":
        status.last_successful_apply = status.last_apply.model_copy(deep=True)
        status.applied_spec_hash = (job.annotations or {}).get(ANNOTATION_APPLY_HASH, obs.apply_hash)
        if result is not None and (result.current is not None or result.counts is not None):
            # Too many names for the runner's result: the counts alone, never the previous apply's names.
            current = result.current or ObjectChanges()
            status.feature_views = list(current.feature_views)
            status.feature_services = list(current.feature_services)
            status.entities = list(current.entities)
            counts = result.counts
            status.feature_view_count = counts.feature_views if counts else len(current.feature_views)
            status.feature_service_count = counts.feature_services if counts else len(current.feature_services)
            status.entity_count = counts.entities if counts else len(current.entities)
        # Unknown (None) when the runner could not report it: runs then let Feast choose.
        status.materialized_feature_views = result.default_materialized if result is not None else None
        status.unmaterializable_feature_views = [
            UnmaterializableView(name=name, reason=reason[:REASON_LIMIT])
            for name, reason in sorted(((result.not_materializable if result else None) or {}).items())
        ]
    if result is not None and result.audit is not None:
        capped = add_pending(status.pending_audit, result.audit)
        status.pending_audit = capped.kept
        dropped = capped.dropped
    else:
        dropped = []
    event = impact_event(status.last_apply.impact)
    return dropped, [event] if event is not None else []


def _unlogged(status: FeatureStoreProjectStatus, job: JobObservation) -> list[UnloggedApply]:
    recorded = status.last_apply
    if recorded is None or not apply_needs_record(recorded, job):
        return []
    return [UnloggedApply(job, recorded.model_copy(deep=True))]


def _describe(pending: PendingApply) -> str:
    commit = f" (commit {pending.commit[:12]})" if pending.commit else ""
    return f"{pending.revision or 'an earlier revision'}{commit}"


def _settle_pending(
    status: FeatureStoreProjectStatus, obs: ProjectObservation, now: datetime, waiting_for: str | None
) -> list[tuple[str, str, str]]:
    """Keep ``pendingApply`` for the apply that waits (``waiting_for``), or clear it; one that waited and is no
    longer wanted was superseded before it started, and is recorded as such."""
    events = []
    pending = status.pending_apply
    if pending is not None and pending.apply_hash != obs.apply_hash:
        status.last_superseded_apply = pending
        events.append(("Normal", "ApplySuperseded", f"{_describe(pending)} was superseded before its apply started"))
        pending = None
    if waiting_for is None:
        status.pending_apply = None
    elif pending is None:
        assert obs.repo is not None
        status.pending_apply = PendingApply(
            revision=obs.repo.revision,
            commit=obs.repo.commit,
            apply_hash=obs.apply_hash,
            since=now,
            waiting_for=waiting_for,
        )
    else:
        pending.waiting_for = waiting_for
        status.pending_apply = pending
    return events


def decide_project(obs: ProjectObservation, now: datetime) -> ProjectDecision:
    status = obs.status.model_copy(deep=True)
    create_job = False
    finished: JobObservation | None = None
    events: list[tuple[str, str, str]] = []
    delete_jobs: list[str] = []
    dropped: list[str] = []
    unlogged: list[UnloggedApply] = []

    source = _source_condition(obs)
    if obs.problem is None:
        # An earlier apply that finished since status was written: status says what the registry holds.
        earlier = _finished_since_last_apply(obs, status.last_apply)
        if earlier is not None:
            finished = earlier
            ids, found = _record_finished(status, earlier, obs, now)
            dropped += ids
            events += found
            unlogged += _unlogged(status, earlier)
    applied_hash = status.applied_spec_hash
    running = [job for job in obs.other_applies if job.state == "running"]

    if obs.problem is not None:
        desired = kstatus(False, False, True, obs.problem.reason, obs.problem.message)
        up_to_date = applied_hash is not None and applied_hash == obs.apply_hash
        desired.append(_applied_condition(up_to_date, obs.problem.reason, obs.problem.message))
    elif running:
        # One apply per project at a time: a registry write is never raced, nor cut off half-way; what
        # the running one applies is recorded when it ends, and the current revision applied after it.
        waiting_for = f"Job {running[0].name} (an earlier apply) to finish"
        events += _settle_pending(status, obs, now, waiting_for)
        message = f"waiting for {waiting_for} before applying {obs.repo.revision if obs.repo else ''}"
        desired = kstatus(False, True, False, "ApplyWaiting", message)
        desired.append(_applied_condition(False, "ApplyPending", message))
    elif obs.apply_hash is not None and applied_hash == obs.apply_hash:
        events += _settle_pending(status, obs, now, None)
        message = _summary(status.last_apply)
        if obs.source_problem is not None:
            # Still Ready: the registry holds the last applied commit, and runs materialize it.
            message = f"{message}; source unavailable: {obs.source_problem.message}"
        desired = kstatus(True, False, False, "Applied", message)
        desired.append(_applied_condition(True, "Applied", message))
    else:
        job = obs.job
        recorded = status.last_apply is not None and status.last_apply.job_name == (job.name if job else None)
        if job is not None and job.state in ("succeeded", "failed") and not recorded:
            finished = job
            ids, found = _record_finished(status, job, obs, now)
            dropped += ids
            events += found
            unlogged += _unlogged(status, job)
        waiting_for = None
        if job is None and obs.running_materializations:
            waiting_for = (
                f"materialize Job {', '.join(sorted(obs.running_materializations))} to finish "
                "(the project's file registry takes one writer at a time)"
            )
        events += _settle_pending(status, obs, now, waiting_for)
        if waiting_for is not None:
            message = f"waiting for {waiting_for} before applying {obs.repo.revision if obs.repo else ''}"
            desired = kstatus(False, True, False, "ApplyWaiting", message)
            desired.append(_applied_condition(False, "ApplyPending", message))
        elif job is None:
            create_job = True
            message = f"starting Job {obs.job_name} to run feast apply"
            desired = kstatus(False, True, False, "ApplyStarted", message)
            desired.append(_applied_condition(False, "ApplyPending", message))
        elif job.state == "running":
            message = f"Job {job.name} is running feast apply"
            desired = kstatus(False, True, False, "ApplyRunning", message)
            desired.append(_applied_condition(False, "ApplyPending", message))
        elif job.state == "stuck":
            message = f"Job {job.name} cannot start: {job.message}"
            desired = kstatus(False, False, True, "RunnerNotStarting", message)
            desired.append(_applied_condition(False, "RunnerNotStarting", message))
        elif job.state == "succeeded" and (waiting := held(status.last_apply, job.name)) is not None:
            # In progress, not degraded: the change waits for a person, as a rollout waits for pods.
            message = awaiting_message(waiting)
            desired = kstatus(False, True, False, AWAITING_APPROVAL, message)
            desired.append(_applied_condition(False, AWAITING_APPROVAL, message))
            desired.append(DesiredCondition(AWAITING_APPROVAL, True, "PlanNotApproved", message))
        elif job.state == "succeeded":
            message = _summary(status.last_apply)
            desired = kstatus(True, False, False, "Applied", message)
            desired.append(_applied_condition(True, "Applied", message))
        else:
            message = f"feast apply failed in Job {job.name}: {job.message}"
            desired = kstatus(False, False, True, "ApplyFailed", message)
            desired.append(_applied_condition(False, "ApplyFailed", message))
    if obs.problem is None:
        delete_jobs = [job.name for job in obs.other_applies if job.state == "stuck"]

    if source is not None:
        desired.append(source)
    if find(status.conditions, AWAITING_APPROVAL) is not None and AWAITING_APPROVAL not in {d.type for d in desired}:
        desired.append(DesiredCondition(AWAITING_APPROVAL, False, "NotWaiting", "no apply waits for approval"))
    status.conditions, transitions = merge_conditions(status.conditions, desired, obs.generation, now)
    status.observed_generation = obs.generation
    if dropped:
        events.append(("Warning", AUDIT_DROPPED, dropped_message(dropped)))
    return ProjectDecision(create_job, status, transitions, finished, events, delete_jobs, dropped, unlogged)


def _source_condition(obs: ProjectObservation) -> DesiredCondition | None:
    """SourceAvailable: whether the repo source answered this pass; unknown (left as it was) when the
    pass stopped before asking it."""
    problem = obs.source_problem or (obs.problem if obs.problem and obs.problem.reason in SOURCE_REASONS else None)
    if problem is not None:
        return DesiredCondition(SOURCE_AVAILABLE, False, problem.reason, problem.message)
    if obs.repo is None:
        return None
    resolved = f"{obs.repo.revision} is commit {obs.repo.commit}" if obs.repo.commit else obs.repo.revision
    return DesiredCondition(SOURCE_AVAILABLE, True, "SourceAvailable", resolved)
