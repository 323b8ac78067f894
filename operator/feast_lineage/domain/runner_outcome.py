"""Read a runner Job and its pods into one observation: running, stuck, succeeded or failed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from feast_lineage.contract import RunnerResult
from feast_lineage.domain.runner_trust import JobExpectations, expectations_of, vet_result

JobState = Literal["running", "stuck", "succeeded", "failed"]

# Waiting reasons after which a pod will not start without someone fixing something.
_STUCK_REASONS = {
    "CreateContainerConfigError",
    "CreateContainerError",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
}


@dataclass(frozen=True)
class JobObservation:
    name: str
    state: JobState
    message: str = ""
    result: RunnerResult | None = None
    finished_at: str | None = None
    annotations: dict[str, str] | None = None
    job_reason: str | None = None
    """The Job's own failure reason: BackoffLimitExceeded, DeadlineExceeded, ..."""
    distrusted: tuple[str, ...] = ()
    """What the runner reported that contradicts its Job and was dropped (see :mod:`.runner_trust`)."""
    image: str | None = None
    """The runner container's image, as its pod reports it."""
    image_id: str | None = None
    """The image as the container runtime identified it (imageID), or IMAGE_ID_UNKNOWN."""
    started_at: str | None = None
    """When the Job started (its status.startTime)."""
    told: JobExpectations = field(default_factory=JobExpectations)
    """What the operator told the runner (its experiment, audit id, provenance tags): a record of a Job
    whose runner never reported carries the same."""

    @property
    def finished(self) -> bool:
        return self.state in ("succeeded", "failed")


IMAGE_ID_UNKNOWN = "unknown"
"""Said when a pod ran but the container runtime did not report which image it was."""


def _image(pods: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """(image, imageID) of the newest pod's runner container that has a status."""
    for pod in pods:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        if statuses:
            return statuses[0].get("image") or None, statuses[0].get("imageID") or IMAGE_ID_UNKNOWN
    return None, None


def _condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return dict(condition)
    return None


def _container_state(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return dict(statuses[0].get("state") or {}) if statuses else {}


def parse_result(message: str | None) -> RunnerResult | None:
    if not message:
        return None
    try:
        return RunnerResult.model_validate(json.loads(message))
    except (ValueError, ValidationError):
        return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:1024] if lines else ""


def job_ended(job: dict[str, Any]) -> bool:
    """Whether the Job has its final condition (Complete or Failed)."""
    return _condition(job, "Complete") is not None or _condition(job, "Failed") is not None


def may_have_ended(job_json: str) -> bool:
    """Whether a Job's JSON text may hold its final condition: False only when :func:`job_ended` of
    the decoded Job is surely False. A condition's type is the JSON string ``"Complete"`` or
    ``"Failed"``, which no encoder escapes, so text without either cannot hold one; text with one
    (in a condition or anywhere else, a name or a label) is decoded and asked properly."""
    return '"Complete"' in job_json or '"Failed"' in job_json


def observe_job(job: dict[str, Any], pods: list[dict[str, Any]]) -> JobObservation:
    name = job["metadata"]["name"]
    annotations = job["metadata"].get("annotations") or {}
    newest_first = sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
    terminated = next(
        (state["terminated"] for pod in newest_first if "terminated" in (state := _container_state(pod))), None
    )
    result = parse_result(terminated.get("message")) if terminated else None
    reported = result is not None
    distrusted: tuple[str, ...] = ()
    told = expectations_of(job)
    started_at = (job.get("status") or {}).get("startTime")
    if result is not None:
        result, problems = vet_result(result, told)
        distrusted = tuple(problems)
    image, image_id = _image(newest_first)
    complete, failed = _condition(job, "Complete"), _condition(job, "Failed")
    # When the runner's container ended; else when the Job did (its pod may be gone).
    finished_at = (terminated.get("finishedAt") if terminated else None) or (complete or failed or {}).get(
        "lastTransitionTime"
    )
    if complete is not None:
        return JobObservation(
            name,
            "succeeded",
            "",
            result,
            finished_at,
            annotations,
            distrusted=distrusted,
            image=image,
            image_id=image_id,
            started_at=started_at,
            told=told,
        )
    if failed is not None:
        if result is not None and result.error:
            message = result.error
        elif terminated is not None and terminated.get("message") and not reported:
            message = _last_line(terminated["message"])
        elif terminated is not None and terminated.get("reason") == "OOMKilled":
            # The kernel killed it at its memory limit: exit code 137 alone reads like any SIGKILL.
            message = "runner ran out of memory (OOMKilled, exit code 137): raise spec.runner.resources.limits.memory"
        elif terminated is not None:
            message = f"runner exited with code {terminated.get('exitCode')}"
        else:
            message = failed.get("message") or failed.get("reason") or "Job failed"
        if failed.get("reason") == "DeadlineExceeded":
            message = f"deadline exceeded: {failed.get('message', '')}".strip()
        return JobObservation(
            name,
            "failed",
            message,
            result,
            finished_at,
            annotations,
            failed.get("reason"),
            distrusted=distrusted,
            image=image,
            image_id=image_id,
            started_at=started_at,
            told=told,
        )
    for pod in newest_first:
        waiting = _container_state(pod).get("waiting") or {}
        if waiting.get("reason") in _STUCK_REASONS:
            message = f"{waiting['reason']}: {waiting.get('message', '')}".strip(": ")
            return JobObservation(name, "stuck", message, None, None, annotations)
    return JobObservation(name, "running", "", None, None, annotations)
