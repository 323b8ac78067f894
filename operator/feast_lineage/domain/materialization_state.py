"""Decide what a MaterializationJob needs next and what its status says.

A run is one-shot: once Succeeded or Failed it never changes again, and the
resource never deletes itself (a GitOps tool would create it again and re-run
it). Before its Job exists it may wait, and says for what: its project, or an
earlier run that materializes one of the same feature views.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from feast_lineage.api import (
    FeatureStoreProjectStatus,
    LastApply,
    MaterializationJobSpec,
    MaterializationJobStatus,
    TimeWindow,
    ViewRows,
)
from feast_lineage.domain.apply_gate import AWAITING_APPROVAL
from feast_lineage.domain.conditions import READY, Transition, find, kstatus, merge_conditions
from feast_lineage.domain.labels import ANNOTATION_SCHEDULED_TIME, LABEL_SETTLED
from feast_lineage.domain.project_state import mlflow_ref
from feast_lineage.domain.runner_outcome import JobObservation
from feast_lineage.timestamps import parse_rfc3339, rfc3339

TERMINAL = ("Succeeded", "Failed")
FUTURE_TOLERANCE = timedelta(seconds=60)
"""Clock skew allowed between a client that wrote endTime and the operator."""
MESSAGE_LIMIT = 1024


@dataclass(frozen=True)
class Peer:
    """Another MaterializationJob of the same project."""

    name: str
    created: str  # creationTimestamp; the older run goes first
    feature_views: frozenset[str]
    phase: str  # "" until the operator first sees it
    every: bool = False
    """It materializes views the operator cannot name (more than the project status lists): it
    conflicts with every run."""

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL


@dataclass(frozen=True)
class MaterializationObservation:
    name: str
    created: str
    generation: int | None
    status: MaterializationJobStatus
    now: datetime
    spec: MaterializationJobSpec | None
    invalid: str | None = None
    project: dict[str, Any] | None = None
    project_status: FeatureStoreProjectStatus | None = None
    """``project``'s status as a model, when the caller has it already (else it is made from ``project``)."""
    job: JobObservation | None = None
    peers: list[Peer] = field(default_factory=list)
    one_at_a_time: bool = False
    """Every run of the project conflicts with every other: a file registry is rewritten whole by each
    materialization, so two at once lose each other's writes or read it half-written."""
    apply_running: str | None = None
    """An apply Job of the project that is running (checked with a file registry only)."""
    max_waiting: int | None = None
    """Runs of a project that wait to start and are looked at promptly; later ones queue (QueueFull)."""
    revision_problem: str | None = None
    """Why the revision of the project's last successful apply cannot be mounted (its snapshot is gone)."""


@dataclass
class MaterializationDecision:
    create_job: bool
    status: MaterializationJobStatus
    feature_views: list[str] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    finished: JobObservation | None = None


def project_status(project: dict[str, Any]) -> FeatureStoreProjectStatus:
    return FeatureStoreProjectStatus.from_k8s(project.get("status"))


def _project_ready(project: FeatureStoreProjectStatus) -> tuple[bool, str]:
    ready = find(project.conditions, READY)
    if ready is None:
        return False, "not reconciled yet"
    if ready.reason == AWAITING_APPROVAL and project.applied_spec_hash is not None:
        # The registry holds the last applied change; the held one waits for a person. Its models
        # (the ones the gate protects) keep getting fresh features meanwhile.
        return True, ready.message
    return ready.status == "True", ready.message or ready.reason


def lists_every_view(project: FeatureStoreProjectStatus) -> bool:
    """Whether the project's status names all its feature views (a registry with more names than the
    runner's result can carry reports counts only; the runner then checks names against the registry)."""
    return project.feature_view_count is None or project.feature_view_count <= len(project.feature_views)


def resolved_feature_views(spec: MaterializationJobSpec, project: FeatureStoreProjectStatus) -> list[str]:
    """The views a run materializes: its own, or the ones `feast materialize` picks (when the project's
    last apply could not say which, all of them: the run then only takes too wide a lock)."""
    if spec.feature_views:
        return list(spec.feature_views)
    if project.materialized_feature_views is not None:
        return list(project.materialized_feature_views)
    return list(project.feature_views)


def applied_revision(project: FeatureStoreProjectStatus) -> LastApply | None:
    """What the registry holds, which a run materializes against: the last successful apply."""
    if project.last_successful_apply is not None:
        return project.last_successful_apply
    last = project.last_apply
    return last if last is not None and last.outcome == "Succeeded" else None


def _ran_against(status: MaterializationJobStatus, applied: LastApply | None) -> None:
    if applied is None:
        return
    status.revision, status.commit = applied.revision, applied.commit
    status.apply_job, status.apply_audit_id = applied.job_name, applied.audit_id
    status.apply_run_id = applied.mlflow.run_id if applied.mlflow else None


def zero_row_views(status: MaterializationJobStatus) -> list[str]:
    """Feature views a finished run wrote no rows for: a visible outcome, not silence."""
    return sorted(view.feature_view for view in status.rows_written or [] if view.rows == 0)


def _refused(spec: MaterializationJobSpec, project: FeatureStoreProjectStatus) -> list[str]:
    named = set(spec.feature_views)
    return [f"{v.name} ({v.reason})" for v in project.unmaterializable_feature_views if v.name in named]


def _blocking_peer(name: str, created: str, views: set[str], peers: list[Peer], every: bool) -> Peer | None:
    """An unfinished run that conflicts (shares a feature view, or ``every``) and goes first: running, or older."""
    # Only the conflicting ones are ordered: a burst of runs on views of their own has hundreds of peers.
    conflicting = [
        peer
        for peer in peers
        if peer.name != name and not peer.finished and (every or peer.every or peer.feature_views & views)
    ]
    for peer in sorted(conflicting, key=lambda p: (p.created, p.name)):
        if peer.phase == "Running" or (peer.created, peer.name) < (created, name):
            return peer
    return None


def _waiting_ahead(obs: MaterializationObservation) -> int:
    """Unfinished runs of the project created before this one that have not started."""
    return sum(
        1
        for peer in obs.peers
        if peer.name != obs.name
        and peer.phase in ("", "Pending")
        and (peer.created, peer.name) < (obs.created, obs.name)
    )


def _window_problem(spec: MaterializationJobSpec, now: datetime) -> str | None:
    if spec.end_time is not None and spec.end_time > now + FUTURE_TOLERANCE:
        return f"the window ends in the future ({rfc3339(spec.end_time)}; now {rfc3339(now)})"
    return None


def _finish(status: MaterializationJobStatus, job: JobObservation, now: datetime) -> None:
    result = job.result
    status.phase = "Succeeded" if job.state == "succeeded" else "Failed"
    status.completion_time = parse_rfc3339(job.finished_at) if job.finished_at else now
    status.image, status.image_id = job.image, job.image_id
    if result is not None:
        status.duration_seconds = round(result.duration_seconds, 3)
        if result.window_start or result.window_end:
            status.window = TimeWindow(
                start=parse_rfc3339(result.window_start) if result.window_start else None,
                end=parse_rfc3339(result.window_end) if result.window_end else None,
            )
        if result.feature_views is not None:
            status.feature_views = list(result.feature_views)
        status.mlflow = mlflow_ref(result.mlflow) if result.mlflow is not None else None
        if result.rows_written is not None:
            status.rows_written = [ViewRows(feature_view=v, rows=n) for v, n in sorted(result.rows_written.items())]
        if result.audit is not None:
            status.pending_audit = [result.audit]
    if job.state == "failed":
        # A deadline is the Job's doing, not Feast's: say so.
        status.reason = "DeadlineExceeded" if job.job_reason == "DeadlineExceeded" else "MaterializationFailed"
        status.message = job.message.splitlines()[0][:MESSAGE_LIMIT] if job.message else "the runner failed"
    elif result is not None and result.repo_unavailable:
        status.reason = "Succeeded"
        status.message = f"materialized from the registry alone ({result.repo_unavailable})"[:MESSAGE_LIMIT]
    else:
        status.reason, status.message = "Succeeded", "materialized"


def pass_on_event(event_type: str | None, body: dict[str, Any], known: bool, finalizer: str) -> bool:
    """Whether a watch event of a run calls for a pass now. Level-based: a second pass of a run is
    harmless (its Job's name is fixed, a second create is refused), so no progress is recorded.

    An unfinished run gets one when this process sees it for the first time (it is new, or a
    restart lists it), or while it does not carry the operator's ``finalizer`` (the pass puts it on
    first). Every other event of a run is its own status write or its finalizer, or the deletion's."""
    meta = body.get("metadata") or {}
    if event_type == "DELETED" or meta.get("deletionTimestamp"):
        return False
    if (body.get("status") or {}).get("phase") in TERMINAL:
        return False
    return not known or finalizer not in (meta.get("finalizers") or [])


HOLD, SETTLE, LABEL, RELEASE = "hold", "settle", "label", "release"
"""What the operator does with a run's finalizer and settled label (see :func:`finalizer_step`)."""


def unsettled(body: dict[str, Any]) -> bool:
    """Running, or finished with an audit record not yet delivered: what a deletion must wait for."""
    status = body.get("status") or {}
    return status.get("phase") not in TERMINAL or bool(status.get("pendingAudit"))


def finalizer_step(body: dict[str, Any], finalizer: str) -> str | None:
    """What a run as it is now needs of its finalizer, from its start until it is settled or gone:

    - ``HOLD``: put the finalizer on, before the run's Job exists (a record becomes pending as the
      run ends: a finalizer added only then would race a quick deletion);
    - ``RELEASE``: it is being deleted: once its record is delivered (or abandoned), take it off;
    - ``SETTLE``: finished and its record delivered: take it off and label the run settled, in one
      patch (a schedule's run is not labelled, see :func:`settled`);
    - ``LABEL``: settled already, without the label (history from before it, or removed by hand).
    """
    meta = body.get("metadata") or {}
    held = finalizer in (meta.get("finalizers") or [])
    if meta.get("deletionTimestamp"):
        return RELEASE if held else None
    if unsettled(body):
        return None if held else HOLD
    if held:
        return SETTLE
    return LABEL if needs_settled_label("MODIFIED", body, finalizer) else None


def settled(body: dict[str, Any], finalizer: str) -> bool:
    """Whether a run is history the operator is done with: finished, no audit record pending, not
    held by the operator's ``finalizer`` (only once it is gone may the run leave the watch, else its
    deletion would wait for a finalizer nobody handles), not being deleted, and not made by a
    schedule (the schedule counts and prunes its runs, whose history limits bound them)."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    return (
        status.get("phase") in TERMINAL
        and not status.get("pendingAudit")
        and not meta.get("deletionTimestamp")
        and finalizer not in (meta.get("finalizers") or [])
        and ANNOTATION_SCHEDULED_TIME not in (meta.get("annotations") or {})
    )


def needs_settled_label(event_type: str | None, body: dict[str, Any], finalizer: str) -> bool:
    """Whether a watch event (``None``: a listing) shows a settled run without the settled label:
    labelled, it leaves the operator's watch (a run whose label was removed comes back and gets it again)."""
    if event_type == "DELETED" or LABEL_SETTLED in ((body.get("metadata") or {}).get("labels") or {}):
        return False
    return settled(body, finalizer)


def decide_materialization(obs: MaterializationObservation) -> MaterializationDecision:
    status = obs.status.model_copy(deep=True)
    if status.phase in TERMINAL:
        return MaterializationDecision(False, status)
    create_job = False
    finished: JobObservation | None = None
    views: list[str] = list(status.feature_views)
    status.waiting_for = None

    def fail(reason: str, message: str) -> None:
        status.phase, status.reason, status.message = "Failed", reason, message
        status.completion_time = obs.now

    def wait(reason: str, message: str) -> None:
        status.phase, status.reason, status.message, status.waiting_for = "Pending", reason, message, message

    if obs.spec is None:
        fail("InvalidSpec", obs.invalid or "invalid spec")
    elif obs.job is not None:
        job = obs.job
        if job.state in ("succeeded", "failed"):
            finished = job
            _finish(status, job, obs.now)
        elif job.state == "stuck":
            wait("RunnerNotStarting", f"Job {job.name} cannot start: {job.message}")
            status.phase = "Running"
        else:
            status.phase, status.reason, status.message = "Running", "Running", f"Job {job.name} is materializing"
    elif obs.project is None:
        wait("ProjectNotFound", f"FeatureStoreProject {obs.spec.project_ref.name} not found")
    else:
        project = obs.project_status or project_status(obs.project)
        ready, why = _project_ready(project)
        _ran_against(status, applied_revision(project))
        views = resolved_feature_views(obs.spec, project)
        listed = lists_every_view(project)
        unknown = sorted(set(views) - set(project.feature_views)) if listed else []
        refused = _refused(obs.spec, project)
        window_problem = _window_problem(obs.spec, obs.now)
        # Views it cannot name (Feast picks them in the runner): it waits for, and holds up, every run.
        every = obs.one_at_a_time or not views
        blocking = _blocking_peer(obs.name, obs.created, set(views), obs.peers, every)
        if not ready:
            wait("ProjectNotReady", f"FeatureStoreProject {obs.spec.project_ref.name} is not Ready: {why}")
        elif obs.apply_running is not None:
            wait(
                "WaitingForApply",
                f"apply Job {obs.apply_running} (the project's file registry takes one writer at a time)",
            )
        elif unknown:
            fail(
                "UnknownFeatureView",
                f"feature view(s) not in project {obs.spec.project_ref.name}: {', '.join(unknown)}",
            )
        elif refused:
            fail("FeatureViewNotMaterializable", f"Feast cannot materialize {'; '.join(refused)}")
        elif window_problem:
            fail("InvalidWindow", window_problem)
        elif not views and listed:
            fail("NoFeatureViews", f"FeatureStoreProject {obs.spec.project_ref.name} has no feature views")
        elif obs.revision_problem is not None:
            fail("RevisionUnavailable", obs.revision_problem)
        # Only a run that has to wait anyway queues: one nothing holds up starts, however many wait.
        elif blocking is not None and obs.max_waiting is not None and (ahead := _waiting_ahead(obs)) >= obs.max_waiting:
            wait(
                "QueueFull",
                f"{ahead} earlier runs of FeatureStoreProject {obs.spec.project_ref.name} wait to start "
                f"(at most {obs.max_waiting} are considered at a time)",
            )
        elif blocking is not None:
            shared = ", ".join(sorted(blocking.feature_views & set(views)))
            why = f"feature views {shared}" if shared else "the project's file registry takes one run at a time"
            wait("WaitingForRun", f"MaterializationJob {blocking.name} ({why})")
        else:
            create_job = True
            status.phase, status.reason, status.message = "Running", "JobCreated", "starting the materialize Job"
            status.start_time = obs.now
            status.feature_views = views

    phase = status.phase or "Pending"
    reason = status.reason or phase
    message = status.message or ""
    desired = kstatus(
        ready=phase == "Succeeded",
        reconciling=phase in ("Pending", "Running") and reason not in ("RunnerNotStarting",),
        stalled=phase == "Failed" or reason == "RunnerNotStarting",
        reason=reason,
        message=message,
    )
    status.conditions, transitions = merge_conditions(status.conditions, desired, obs.generation, obs.now)
    status.observed_generation = obs.generation
    return MaterializationDecision(create_job, status, views, transitions, finished)


WAITS_ON_PEERS = ("WaitingForRun", "QueueFull")


def holds_on_copy(obs: MaterializationObservation, decision: MaterializationDecision) -> bool:
    """Whether a decision made on a copy of the project a few milliseconds old can be written as is.

    Starting the run (on the copy's applied revision) is what a fresh read would have decided had
    the run been created those milliseconds earlier, and a run told to wait for its peers is looked
    at again. Every other verdict of a run without a Job - the project not ready, a view it does not
    hold, its snapshot gone, an apply running - is about the project's state now: it is made again on
    a fresh read before it is written. A run with a Job (or an invalid spec) is decided without the
    project's status."""
    if obs.spec is None or obs.job is not None:
        return True
    return decision.create_job or decision.status.reason in WAITS_ON_PEERS


def stall_run(
    status: MaterializationJobStatus, generation: int | None, reason: str, message: str, now: datetime
) -> MaterializationDecision:
    """A pass that fails the same way each time: Stalled with the reason, the phase as it was."""
    status = status.model_copy(deep=True)
    status.phase = status.phase or "Pending"
    status.reason, status.message = reason, message
    desired = kstatus(ready=False, reconciling=False, stalled=True, reason=reason, message=message)
    status.conditions, transitions = merge_conditions(status.conditions, desired, generation, now)
    status.observed_generation = generation
    return MaterializationDecision(False, status, list(status.feature_views), transitions)
