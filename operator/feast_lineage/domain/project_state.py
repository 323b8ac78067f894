"""Decide what a FeatureStoreProject needs next and what its status says, from what was observed.

The controller gathers the observations (the repo's identity, missing inputs,
the apply Job for the current hash) and writes what this module returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from feast_lineage.domain.apply_plan import RepoIdentity
from feast_lineage.domain.conditions import DesiredCondition, Transition, kstatus, merge_conditions
from feast_lineage.domain.labels import ANNOTATION_AUDIT_ID, ANNOTATION_SPEC_HASH, ANNOTATION_TRIGGER
from feast_lineage.domain.runner_outcome import JobObservation

APPLIED = "Applied"


@dataclass(frozen=True)
class InputProblem:
    """An input the project needs is missing or unusable: the project is Stalled until it is fixed."""

    reason: str  # InvalidSpec, RepoNotFound, SecretNotFound, GitUnreachable, GitRevisionNotFound
    message: str


@dataclass(frozen=True)
class ProjectObservation:
    generation: int | None
    status: dict[str, Any]
    """The current status, as stored (camelCase)."""
    problem: InputProblem | None = None
    repo: RepoIdentity | None = None
    apply_hash: str | None = None
    job_name: str | None = None
    job: JobObservation | None = None


@dataclass
class ProjectDecision:
    create_job: bool
    status: dict[str, Any]
    transitions: list[Transition] = field(default_factory=list)
    finished_job: JobObservation | None = None
    """Set when this decision records a Job's outcome for the first time (for metrics and Events)."""


def _applied_condition(up_to_date: bool, reason: str, message: str) -> DesiredCondition:
    return DesiredCondition(APPLIED, up_to_date, reason, message)


def _summary(last_apply: dict[str, Any]) -> str:
    changes = last_apply.get("changes") or {}
    changed = sum(len(changes.get(kind) or []) for kind in ("featureViews", "featureServices", "entities"))
    commit = f" (commit {last_apply['commit'][:12]})" if last_apply.get("commit") else ""
    what = f"{changed} object(s) changed" if changed else "no changes"
    return f"applied {last_apply.get('revision', '')}{commit}: {what}"


def _record(job: JobObservation, obs: ProjectObservation, now: str) -> dict[str, Any]:
    """The lastApply entry for a finished Job."""
    assert obs.repo is not None
    annotations = job.annotations or {}
    result = job.result
    record: dict[str, Any] = {
        "revision": obs.repo.revision,
        "commit": (result.git_commit if result and result.git_commit else obs.repo.commit),
        "time": job.finished_at or now,
        "jobName": job.name,
        "trigger": annotations.get(ANNOTATION_TRIGGER),
        "outcome": "Succeeded" if job.state == "succeeded" else "Failed",
        "specHash": annotations.get(ANNOTATION_SPEC_HASH),
        "auditId": annotations.get(ANNOTATION_AUDIT_ID),
    }
    if job.state == "failed":
        record["error"] = job.message[:4096]
    if result is not None:
        record["durationSeconds"] = round(result.duration_seconds, 3)
        if result.changes is not None:
            record["changes"] = result.changes.model_dump(by_alias=True)
        if result.mlflow is not None:
            record["mlflow"] = {
                "experiment": result.mlflow.experiment,
                "runId": result.mlflow.run_id,
                "runUrl": result.mlflow.run_url,
            }
    return {key: value for key, value in record.items() if value is not None}


def decide_project(obs: ProjectObservation, now: str) -> ProjectDecision:
    status = dict(obs.status)
    previous_conditions = list(status.get("conditions") or [])
    create_job = False
    finished: JobObservation | None = None
    applied_hash = status.get("appliedSpecHash")
    last_apply = status.get("lastApply") or {}

    if obs.problem is not None:
        desired = kstatus(False, False, True, obs.problem.reason, obs.problem.message)
        up_to_date = applied_hash is not None and applied_hash == obs.apply_hash
        desired.append(_applied_condition(up_to_date, obs.problem.reason, obs.problem.message))
    elif obs.apply_hash is not None and applied_hash == obs.apply_hash:
        message = _summary(last_apply)
        desired = kstatus(True, False, False, "Applied", message)
        desired.append(_applied_condition(True, "Applied", message))
    else:
        job = obs.job
        recorded = last_apply.get("jobName") == (job.name if job else None)
        if job is not None and job.state in ("succeeded", "failed") and not recorded:
            finished = job
            last_apply = _record(job, obs, now)
            status["lastApply"] = last_apply
            result = job.result
            if job.state == "succeeded":
                status["appliedSpecHash"] = obs.apply_hash
                if result is not None and result.current is not None:
                    status["featureViews"] = result.current.feature_views
                    status["featureServices"] = result.current.feature_services
                    status["entities"] = result.current.entities
            if result is not None and result.audit is not None:
                # "i" is the record id in the compact form (feast_lineage.audit.AuditRecord.to_compact).
                pending = [a for a in status.get("pendingAudit") or [] if a.get("i") != result.audit.get("i")]
                status["pendingAudit"] = [*pending, result.audit]
        if job is None:
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
        elif job.state == "succeeded":
            message = _summary(last_apply)
            desired = kstatus(True, False, False, "Applied", message)
            desired.append(_applied_condition(True, "Applied", message))
        else:
            message = f"feast apply failed in Job {job.name}: {job.message}"
            desired = kstatus(False, False, True, "ApplyFailed", message)
            desired.append(_applied_condition(False, "ApplyFailed", message))

    conditions, transitions = merge_conditions(previous_conditions, desired, obs.generation, now)
    status["conditions"] = conditions
    status["observedGeneration"] = obs.generation
    return ProjectDecision(create_job, status, transitions, finished)
