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

from feast_lineage.api import MaterializationJobSpec
from feast_lineage.domain.conditions import Transition, kstatus, merge_conditions
from feast_lineage.domain.runner_outcome import JobObservation
from feast_lineage.timestamps import rfc3339

TERMINAL = ("Succeeded", "Failed")
FUTURE_TOLERANCE = timedelta(seconds=60)
"""Clock skew allowed between a client that wrote endTime and the operator."""


@dataclass(frozen=True)
class Peer:
    """Another MaterializationJob of the same project."""

    name: str
    created: str  # creationTimestamp; the older run goes first
    feature_views: frozenset[str]
    phase: str  # "" until the operator first sees it

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL


@dataclass(frozen=True)
class MaterializationObservation:
    name: str
    created: str
    generation: int | None
    status: dict[str, Any]
    now: datetime
    spec: MaterializationJobSpec | None
    invalid: str | None = None
    project: dict[str, Any] | None = None
    job: JobObservation | None = None
    peers: list[Peer] = field(default_factory=list)
    one_at_a_time: bool = False
    """Every run of the project conflicts with every other: a file registry is rewritten whole by each
    materialization, so two at once lose each other's writes or read it half-written."""


@dataclass
class MaterializationDecision:
    create_job: bool
    status: dict[str, Any]
    feature_views: list[str] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    finished: JobObservation | None = None


def _project_ready(project: dict[str, Any]) -> tuple[bool, str]:
    for condition in (project.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True", str(condition.get("message") or condition.get("reason") or "")
    return False, "not reconciled yet"


def resolved_feature_views(spec: MaterializationJobSpec, project: dict[str, Any]) -> list[str]:
    return list(spec.feature_views) or list((project.get("status") or {}).get("featureViews") or [])


def _blocking_peer(name: str, created: str, views: set[str], peers: list[Peer], every: bool) -> Peer | None:
    """An unfinished run that conflicts (shares a feature view, or ``every``) and goes first: running, or older."""
    for peer in sorted(peers, key=lambda p: (p.created, p.name)):
        if peer.name == name or peer.finished or not (every or peer.feature_views & views):
            continue
        if peer.phase == "Running" or (peer.created, peer.name) < (created, name):
            return peer
    return None


def _window_problem(spec: MaterializationJobSpec, now: datetime) -> str | None:
    if spec.end_time is not None and spec.end_time > now + FUTURE_TOLERANCE:
        return f"the window ends in the future ({rfc3339(spec.end_time)}; now {rfc3339(now)})"
    return None


def _finish(status: dict[str, Any], job: JobObservation, now: datetime) -> None:
    result = job.result
    status["phase"] = "Succeeded" if job.state == "succeeded" else "Failed"
    status["completionTime"] = job.finished_at or rfc3339(now)
    if result is not None:
        status["durationSeconds"] = round(result.duration_seconds, 3)
        if result.window_start or result.window_end:
            status["window"] = {k: v for k, v in (("start", result.window_start), ("end", result.window_end)) if v}
        if result.feature_views is not None:
            status["featureViews"] = result.feature_views
        if result.mlflow is not None:
            status["mlflow"] = {
                "experiment": result.mlflow.experiment,
                "runId": result.mlflow.run_id,
                "runUrl": result.mlflow.run_url,
            }
        if result.audit is not None:
            status["pendingAudit"] = [result.audit]
    if job.state == "failed":
        # A deadline is the Job's doing, not Feast's: say so.
        status["reason"] = "DeadlineExceeded" if job.job_reason == "DeadlineExceeded" else "MaterializationFailed"
        status["message"] = job.message.splitlines()[0][:1024] if job.message else "the runner failed"
    else:
        status["reason"], status["message"] = "Succeeded", "materialized"


def decide_materialization(obs: MaterializationObservation) -> MaterializationDecision:
    status = dict(obs.status)
    if status.get("phase") in TERMINAL:
        return MaterializationDecision(False, status)
    create_job = False
    finished: JobObservation | None = None
    views: list[str] = list(status.get("featureViews") or [])
    status.pop("waitingFor", None)

    def fail(reason: str, message: str) -> None:
        status.update(phase="Failed", reason=reason, message=message, completionTime=rfc3339(obs.now))

    def wait(reason: str, message: str) -> None:
        status.update(phase="Pending", reason=reason, message=message, waitingFor=message)

    if obs.spec is None:
        fail("InvalidSpec", obs.invalid or "invalid spec")
    elif obs.job is not None:
        job = obs.job
        if job.state in ("succeeded", "failed"):
            finished = job
            _finish(status, job, obs.now)
        elif job.state == "stuck":
            wait("RunnerNotStarting", f"Job {job.name} cannot start: {job.message}")
            status["phase"] = "Running"
        else:
            status.update(phase="Running", reason="Running", message=f"Job {job.name} is materializing")
    elif obs.project is None:
        wait("ProjectNotFound", f"FeatureStoreProject {obs.spec.project_ref.name} not found")
    else:
        ready, why = _project_ready(obs.project)
        views = resolved_feature_views(obs.spec, obs.project)
        known = set((obs.project.get("status") or {}).get("featureViews") or [])
        unknown = sorted(set(views) - known)
        window_problem = _window_problem(obs.spec, obs.now)
        blocking = _blocking_peer(obs.name, obs.created, set(views), obs.peers, obs.one_at_a_time)
        if not ready:
            wait("ProjectNotReady", f"FeatureStoreProject {obs.spec.project_ref.name} is not Ready: {why}")
        elif unknown:
            fail(
                "UnknownFeatureView",
                f"feature view(s) not in project {obs.spec.project_ref.name}: {', '.join(unknown)}",
            )
        elif window_problem:
            fail("InvalidWindow", window_problem)
        elif not views:
            fail("NoFeatureViews", f"FeatureStoreProject {obs.spec.project_ref.name} has no feature views")
        elif blocking is not None:
            shared = ", ".join(sorted(blocking.feature_views & set(views)))
            why = f"feature views {shared}" if shared else "the project's file registry takes one run at a time"
            wait("WaitingForRun", f"MaterializationJob {blocking.name} ({why})")
        else:
            create_job = True
            status.update(phase="Running", reason="JobCreated", message="starting the materialize Job")
            status["startTime"] = rfc3339(obs.now)
            status["featureViews"] = views

    phase = status.get("phase", "Pending")
    reason = str(status.get("reason") or phase)
    message = str(status.get("message") or "")
    desired = kstatus(
        ready=phase == "Succeeded",
        reconciling=phase in ("Pending", "Running") and reason not in ("RunnerNotStarting",),
        stalled=phase == "Failed" or reason == "RunnerNotStarting",
        reason=reason,
        message=message,
    )
    conditions, transitions = merge_conditions(
        list(status.get("conditions") or []), desired, obs.generation, rfc3339(obs.now)
    )
    status["conditions"] = conditions
    status["observedGeneration"] = obs.generation
    return MaterializationDecision(create_job, status, views, transitions, finished)
