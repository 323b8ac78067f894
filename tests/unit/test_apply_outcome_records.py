"""An apply whose runner never reported still gets one FAILED MLflow record, made by the operator.

The decision (which applies need it) is pure; the record is built from what the Job told its runner
and what status records of the apply.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from feast_lineage.api import FeatureStoreProject, FeatureStoreProjectStatus, LastApply, MlflowRunRef
from feast_lineage.audit import AuditRecord, tags
from feast_lineage.contract import MlflowRun, RunnerResult
from feast_lineage.controller.outcome_audit import apply_outcome_record, operations_logged
from feast_lineage.domain import labels
from feast_lineage.domain.apply_plan import RepoIdentity
from feast_lineage.domain.audit_backlog import AUDIT_DROPPED, MAX_PENDING_AUDIT
from feast_lineage.domain.project_state import ProjectDecision, ProjectObservation, decide_project, keep_records
from feast_lineage.domain.runner_job import RunnerJobRequest, render_runner_job
from feast_lineage.domain.runner_outcome import JobObservation, observe_job
from feast_lineage.domain.unlogged_outcome import apply_needs_record
from tests.unit.test_records import _project as ops_project

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
REPO = RepoIdentity("configMap", "configmap/repo@abc", "abc")
JOB = "drivers-apply-0123456789"
PROVENANCE = {"k8s.namespace": "ml", "k8s.name": "drivers", "k8s.job": JOB, "featurelineage.revision": REPO.revision}
ANNOTATIONS = {
    labels.ANNOTATION_APPLY_HASH: "h1",
    labels.ANNOTATION_REVISION: REPO.revision,
    labels.ANNOTATION_AUDIT_ID: "apply-audit-1",
    labels.ANNOTATION_SNAPSHOT: "drivers-repo-abc",
    labels.ANNOTATION_REPO_DIGEST: "abc",
}


def _project(**mlflow: Any) -> FeatureStoreProject:
    """The project of the run records' tests, with ``mlflow`` settings changed."""
    project = ops_project()
    settings = project.spec.mlflow.model_copy(update=mlflow)
    return project.model_copy(update={"spec": project.spec.model_copy(update={"mlflow": settings})})


def _job(
    condition: dict[str, Any], pods: list[dict[str, Any]] | None = None, annotations: dict[str, str] | None = None
) -> JobObservation:
    """An apply Job as the operator renders it, ended as ``condition`` says."""
    request = RunnerJobRequest(
        operation="apply",
        job_name=JOB,
        runner_image="runner:1",
        runner_config_map="drivers-runner-config",
        repo=REPO,
        provenance=PROVENANCE,
        audit_id="apply-audit-1",
        labels={},
        annotations={**ANNOTATIONS, **(annotations or {})},
        owner=labels.owner_reference("FeatureStoreProject", "drivers", "u-1"),
        backoff_limit=0,
        tracking_uri="http://mlflow:5000",
    )
    job = render_runner_job(_project(), request)
    job["status"] = {
        "startTime": "2026-11-26T11:58:00Z",
        "conditions": [{"status": "True", "lastTransitionTime": "2026-11-26T11:59:30Z", **condition}],
    }
    return observe_job(job, pods or [])


DEADLINE = {"type": "Failed", "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline"}


def _decide(job: JobObservation, status: FeatureStoreProjectStatus | None = None) -> ProjectDecision:
    observation = ProjectObservation(
        generation=1, status=status or FeatureStoreProjectStatus(), repo=REPO, apply_hash="h1", job_name=JOB, job=job
    )
    return decide_project(observation, NOW)


def _reported(result: RunnerResult) -> list[dict[str, Any]]:
    state = {"terminated": {"exitCode": 1, "message": result.to_json(), "finishedAt": "2026-11-26T11:59:00Z"}}
    return [{"metadata": {"creationTimestamp": "t"}, "status": {"containerStatuses": [{"state": state}]}}]


# -- which applies need the operator's record ------------------------------------------------------


def test_an_apply_stopped_at_its_deadline_needs_a_record_once() -> None:
    job = _job(DEADLINE)
    decision = _decide(job)
    [unlogged] = decision.unlogged_applies
    assert unlogged.job is job and unlogged.recorded.audit_id == "apply-audit-1"
    assert unlogged.recorded.outcome == "Failed" and unlogged.recorded.error is not None
    # The next pass (a resync, a restart) sees the apply recorded: nothing more to record.
    assert _decide(job, decision.status).unlogged_applies == []


def test_an_apply_whose_runner_logged_or_handed_back_a_record_needs_none() -> None:
    run = MlflowRun(experiment="driver_stats-feast-ops", run_id="a" * 32, run_url=None)
    logged = RunnerResult(operation="apply", ok=False, error="boom", duration_seconds=1, mlflow=run)
    assert _decide(_job({"type": "Failed", "reason": "BackoffLimitExceeded"}, _reported(logged))).unlogged_applies == []
    record = {"i": "apply-audit-1", "x": "driver_stats-feast-ops"}
    handed = RunnerResult(operation="apply", ok=False, error="boom", duration_seconds=1, audit=record)
    decision = _decide(_job({"type": "Failed", "reason": "BackoffLimitExceeded"}, _reported(handed)))
    # The runner's own record goes on its way, and is the only one.
    assert decision.unlogged_applies == [] and [item["i"] for item in decision.status.pending_audit] == [record["i"]]


def test_an_apply_killed_at_its_memory_limit_says_so() -> None:
    state = {"terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": "2026-11-26T11:59:00Z"}}
    pods = [{"metadata": {"creationTimestamp": "t"}, "status": {"containerStatuses": [{"state": state}]}}]
    job = _job({"type": "Failed", "reason": "BackoffLimitExceeded"}, pods)
    assert job.job_reason == "BackoffLimitExceeded"
    assert job.message.startswith("runner ran out of memory (OOMKilled, exit code 137)")
    assert "spec.runner.resources.limits.memory" in job.message
    [unlogged] = _decide(job).unlogged_applies
    assert "OOMKilled" in str(unlogged.recorded.error)
    # A SIGKILL from anything else is reported as the exit code it is.
    state["terminated"]["reason"] = "Error"
    assert _job({"type": "Failed", "reason": "BackoffLimitExceeded"}, pods).message == "runner exited with code 137"


def test_succeeded_applies_and_jobs_without_an_audit_id_need_none() -> None:
    assert _decide(_job({"type": "Complete"})).unlogged_applies == []
    job = _job(DEADLINE, annotations={labels.ANNOTATION_AUDIT_ID: ""})
    assert _decide(job).unlogged_applies == []
    recorded = LastApply(outcome="Failed", audit_id="a", mlflow=MlflowRunRef(experiment="x", run_id="r"))
    assert not apply_needs_record(recorded, _job(DEADLINE))


def test_an_earlier_apply_that_ended_without_a_word_is_recorded_too() -> None:
    earlier = _job(DEADLINE)
    observation = ProjectObservation(
        generation=1,
        status=FeatureStoreProjectStatus(),
        repo=REPO,
        apply_hash="h2",
        job_name="drivers-apply-other",
        other_applies=[earlier],
    )
    [unlogged] = decide_project(observation, NOW).unlogged_applies
    assert unlogged.job is earlier


# -- the record ----------------------------------------------------------------------------------


def _record(job: JobObservation) -> AuditRecord:
    [unlogged] = _decide(job).unlogged_applies
    record = apply_outcome_record(project=_project(), job=job, recorded=unlogged.recorded, now=NOW)
    assert record is not None
    return record


def test_the_record_is_a_failed_apply_run_with_the_jobs_reason_provenance_and_duration() -> None:
    record = _record(_job(DEADLINE))
    assert record.id == "apply-audit-1" and record.status == "FAILED"
    assert record.experiment == "driver_stats-feast-ops" and record.run_name == "apply_driver_stats@ml/drivers"
    assert record.tags[tags.OPERATION] == "apply" and record.tags[tags.PROJECT] == "driver_stats"
    assert record.tags[tags.OUTCOME] == tags.OUTCOME_FAILED and record.tags[tags.REASON] == "DeadlineExceeded"
    assert record.tags[tags.ERROR].startswith("deadline exceeded")
    assert {key: record.tags[key] for key in PROVENANCE} == PROVENANCE
    assert record.tags[tags.SNAPSHOT] == "drivers-repo-abc"
    # From the Job's start to its end.
    assert record.metrics[tags.DURATION_SEC] == 90.0 and record.duration_seconds == 90.0


def test_a_git_apply_record_names_its_commit() -> None:
    job = _job(DEADLINE, annotations={labels.ANNOTATION_COMMIT: "c0ffee"})
    git_repo = RepoIdentity("git", "main", "f" * 8, commit="c0ffee")
    observation = ProjectObservation(
        generation=1, status=FeatureStoreProjectStatus(), repo=git_repo, apply_hash="h1", job_name=JOB, job=job
    )
    [unlogged] = decide_project(observation, NOW).unlogged_applies
    record = apply_outcome_record(project=_project(), job=job, recorded=unlogged.recorded, now=NOW)
    assert record is not None and record.tags[tags.GIT_COMMIT] == "c0ffee"


def test_operations_are_recorded_only_where_logging_is_on_and_a_server_is_known() -> None:
    assert operations_logged(_project(), None)
    assert not operations_logged(_project(log_operations=False), "http://mlflow:5000")
    assert operations_logged(_project(tracking_uri=None), "http://operator-default:5000")
    assert not operations_logged(_project(tracking_uri=None), None)


def test_kept_records_follow_the_pending_audit_cap() -> None:
    full = FeatureStoreProjectStatus(pending_audit=[{"i": f"old{n}"} for n in range(MAX_PENDING_AUDIT)])
    job = _job(DEADLINE)
    decision = _decide(job, full)
    record = _record(job).to_compact()
    keep_records(decision, [record])
    assert len(decision.status.pending_audit) == MAX_PENDING_AUDIT
    assert decision.status.pending_audit[-1] == record and decision.dropped_audit == ["old0"]
    [(kind, _reason, message)] = [event for event in decision.events if event[1] == AUDIT_DROPPED]
    assert kind == "Warning" and "old0" in message
    # Kept again (a pass that is repeated after a conflict) it replaces its copy rather than adding one.
    keep_records(decision, [record])
    assert [item["i"] for item in decision.status.pending_audit].count("apply-audit-1") == 1
