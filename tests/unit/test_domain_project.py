"""Pure rendering and decisions for FeatureStoreProjects: config, Job, hashes, conditions, outcomes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from feast_lineage.api import Condition, FeatureStoreProject, FeatureStoreProjectStatus, LastApply
from feast_lineage.contract import MlflowRun, ObjectChanges, ObjectCounts, RunnerResult
from feast_lineage.domain import labels
from feast_lineage.domain.apply_plan import (
    RepoIdentity,
    apply_hash,
    apply_job_name,
    git_identity,
    last_applied_git_repo,
    spec_hash,
    trigger,
)
from feast_lineage.domain.audit_backlog import AUDIT_DROPPED, MAX_PENDING_AUDIT
from feast_lineage.domain.conditions import DesiredCondition, kstatus, merge_conditions
from feast_lineage.domain.project_state import InputProblem, ProjectObservation, decide_project
from feast_lineage.domain.provenance import gitops_owner, provenance_tags, triggered_by
from feast_lineage.domain.runner_job import RunnerJobRequest, render_runner_job
from feast_lineage.domain.runner_outcome import JobObservation, job_ended, may_have_ended, observe_job
from feast_lineage.domain.store_config import feature_store_config, render_feature_store_yaml

SECRET_VALUE = "hunter2-do-not-leak"


def _project(**spec: Any) -> FeatureStoreProject:
    body: dict[str, Any] = {
        "apiVersion": "featurelineage.io/v1alpha1",
        "kind": "FeatureStoreProject",
        "metadata": {"name": "drivers", "namespace": "ml", "uid": "u-1", "generation": 4},
        "spec": {
            "project": "driver_stats",
            "repo": {"configMap": {"name": "driver-repo"}},
            "featureStore": {
                "registry": {"path": "/data/registry.db"},
                "onlineStore": {"type": "redis", "settings": {"connection_string": "${REDIS_URL}"}},
                "secretEnv": [{"name": "REDIS_URL", "secretKeyRef": {"name": "redis", "key": "url"}}],
            },
            "mlflow": {
                "trackingUri": "http://mlflow:5000",
                "credentials": {"secretName": "mlflow-auth", "tokenKey": "token"},
            },
            **spec,
        },
    }
    return FeatureStoreProject.model_validate(body)


REPO = RepoIdentity("configMap", "configmap/driver-repo@abc", "abc")


def _job(project: FeatureStoreProject, **overrides: Any) -> dict[str, Any]:
    request = RunnerJobRequest(
        operation="apply",
        job_name="drivers-apply-0123456789",
        runner_image="runner:1",
        runner_config_map="drivers-runner-config",
        repo=overrides.pop("repo", REPO),
        provenance={"k8s.name": "drivers"},
        audit_id="audit-1",
        labels={"a": "b"},
        annotations={},
        owner=labels.owner_reference("FeatureStoreProject", "drivers", "u-1"),
        backoff_limit=0,
        tracking_uri="http://mlflow:5000",
        **overrides,
    )
    return render_runner_job(project, request)


# -- feature_store.yaml ---------------------------------------------------------------------------


def test_runner_config_turns_feast_own_mlflow_logging_off() -> None:
    config = feature_store_config(_project().spec, "runner")
    assert config["mlflow"] == {"enabled": False}
    assert config["online_store"] == {"type": "redis", "connection_string": "${REDIS_URL}"}
    assert config["registry"] == {"registry_type": "file", "path": "/data/registry.db"}


def test_client_config_auto_logs_but_never_logs_operations() -> None:
    mlflow = feature_store_config(_project().spec, "client")["mlflow"]
    assert mlflow["enabled"] is True and mlflow["auto_log"] is True
    assert mlflow["log_operations"] is False
    assert mlflow["tracking_uri"] == "http://mlflow:5000"


def test_client_config_leaves_tracking_uri_to_the_environment_when_unset() -> None:
    spec = _project(mlflow={}).spec
    assert "tracking_uri" not in feature_store_config(spec, "client")["mlflow"]


def test_rendered_yaml_parses_back() -> None:
    text = render_feature_store_yaml(_project().spec, "client")
    assert text.startswith("# Rendered by feast-lineage-operator")
    assert yaml.safe_load(text)["project"] == "driver_stats"


# -- Job ----------------------------------------------------------------------------------------


def test_job_passes_secrets_only_by_reference() -> None:
    job = _job(_project())
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["REDIS_URL"] == {"name": "REDIS_URL", "valueFrom": {"secretKeyRef": {"name": "redis", "key": "url"}}}
    assert env["MLFLOW_TRACKING_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "mlflow-auth", "key": "token"}
    assert env["MLFLOW_HTTP_REQUEST_TIMEOUT"]["value"] == "10"
    assert env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]["value"] == "1"
    assert env["FEAST_LINEAGE_OPS_EXPERIMENT"]["value"] == "driver_stats-feast-ops"
    assert json.loads(env["FEAST_LINEAGE_PROVENANCE"]["value"]) == {"k8s.name": "drivers"}
    assert SECRET_VALUE not in json.dumps(job)
    # The runner redacts the values of exactly these from everything it writes.
    assert env["FEAST_LINEAGE_SECRET_ENV"]["value"] == "MLFLOW_TRACKING_TOKEN,REDIS_URL"


def test_job_runs_restricted_without_api_token_and_is_owned() -> None:
    job = _job(_project())
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["feast-lineage", "runner", "apply"]
    assert container["image"] == "runner:1"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False and pod["restartPolicy"] == "Never"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/etc/feast-lineage/config", "/etc/feast-lineage/repo", "/workspace"} <= mounts
    assert job["metadata"]["ownerReferences"][0]["controller"] is True


def test_git_job_checks_out_the_resolved_commit_with_optional_credentials() -> None:
    project = _project(
        repo={"git": {"url": "https://git.example/r.git", "revision": "main", "secretRef": {"name": "g"}}}
    )
    git = RepoIdentity("git", "main", "./@" + "c" * 40, "c" * 40)
    env = {e["name"]: e for e in _job(project, repo=git)["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["FEAST_LINEAGE_GIT_COMMIT"]["value"] == "c" * 40
    assert env["FEAST_LINEAGE_GIT_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "g",
        "key": "token",
        "optional": True,
    }


# -- hashes and names -----------------------------------------------------------------------------


def test_apply_hash_ignores_sections_that_do_not_change_an_apply() -> None:
    base = spec_hash(_project(), "runner:1")
    assert spec_hash(_project(injection={"namespaceDefault": True}), "runner:1") == base
    assert spec_hash(_project(materialization={"schedule": "@hourly"}), "runner:1") == base
    assert spec_hash(_project(), "runner:2") != base
    assert apply_hash(base, REPO) != apply_hash(base, RepoIdentity("configMap", "x", "other"))


def test_job_names_are_deterministic_and_fit_label_values() -> None:
    assert apply_job_name("drivers", "0123456789abcdef") == "drivers-apply-0123456789"
    long_name = apply_job_name("a" * 60, "0123456789abcdef")
    assert len(long_name) <= 63 and long_name.endswith("-apply-0123456789")
    assert long_name == apply_job_name("a" * 60, "0123456789abcdef")


def test_trigger_says_why() -> None:
    previous = LastApply(spec_hash="s1", revision="configmap/driver-repo@abc")
    assert trigger(None, "s1", REPO) == "created"
    assert trigger(previous, "s2", REPO) == "spec changed"
    assert (
        trigger(previous, "s1", RepoIdentity("configMap", "configmap/driver-repo@def", "def")) == "repo content changed"
    )
    git_previous = LastApply(spec_hash="s1", revision="main", commit="a" * 40)
    assert trigger(git_previous, "s1", RepoIdentity("git", "main", "x", "b" * 40)) == "new git commit"


# -- provenance -----------------------------------------------------------------------------------


def test_credentials_in_git_urls_never_reach_tags() -> None:
    tags = provenance_tags(
        namespace="ml",
        kind="FeatureStoreProject",
        name="drivers",
        uid="u",
        generation=2,
        job_name="j",
        trigger="created",
        metadata={},
        git_url="https://tok:x-oauth@git.example/r.git",
        git_commit="c" * 40,
    )
    assert tags["git.url"] == "https://***@git.example/r.git" and tags["git.commit"] == "c" * 40


def test_gitops_owners_are_recognised() -> None:
    argo = {"annotations": {"argocd.argoproj.io/tracking-id": "app:group/Kind:ns/name"}}
    flux = {"labels": {"kustomize.toolkit.fluxcd.io/name": "features", "kustomize.toolkit.fluxcd.io/namespace": "flux"}}
    assert gitops_owner(argo) == {"argocd.tracking_id": "app:group/Kind:ns/name"}
    assert gitops_owner(flux) == {"flux.kustomization": "flux/features"}
    assert triggered_by(flux, created_by_schedule=False) == "gitops"
    assert triggered_by({}, created_by_schedule=False) == "manual"
    assert triggered_by(argo, created_by_schedule=True) == "schedule"


# -- conditions -----------------------------------------------------------------------------------


T1, T2, T3 = (datetime(2026, 11, 26, 12, minute, tzinfo=UTC) for minute in (1, 2, 3))


def test_transition_time_moves_only_when_status_changes() -> None:
    first, transitions = merge_conditions([], kstatus(False, True, False, "ApplyRunning", "m"), 1, T1)
    assert [t.type for t in transitions] == ["Ready", "Reconciling", "Stalled"]
    same, transitions = merge_conditions(first, kstatus(False, True, False, "ApplyRunning", "m2"), 2, T2)
    assert transitions == [] and all(c.last_transition_time == T1 for c in same)
    assert all(c.observed_generation == 2 for c in same)
    done, transitions = merge_conditions(same, kstatus(True, False, False, "Applied", "ok"), 2, T3)
    ready = next(c for c in done if c.type == "Ready")
    assert ready.last_transition_time == T3 and [t.type for t in transitions] == ["Ready", "Reconciling"]


def test_conditions_not_desired_are_kept() -> None:
    applied = Condition(type="Applied", status="True", last_transition_time=T1, reason="Applied", message="")
    merged, _ = merge_conditions([applied], [DesiredCondition("Ready", True, "R", "")], 1, T2)
    assert [c.type for c in merged] == ["Ready", "Applied"]


# -- Job observation ------------------------------------------------------------------------------


def _pod(state: dict[str, Any], created: str = "2026-11-26T10:00:00Z") -> dict[str, Any]:
    return {"metadata": {"creationTimestamp": created}, "status": {"containerStatuses": [{"state": state}]}}


def _job_obj(condition: str | None = None, reason: str = "", message: str = "") -> dict[str, Any]:
    conditions = [{"type": condition, "status": "True", "reason": reason, "message": message}] if condition else []
    return {"metadata": {"name": "j", "annotations": {"x": "y"}}, "status": {"conditions": conditions}}


def test_a_job_has_ended_only_with_its_final_condition() -> None:
    assert job_ended(_job_obj("Complete")) and job_ended(_job_obj("Failed"))
    assert not job_ended(_job_obj()) and not job_ended(_job_obj("Suspended"))


@pytest.mark.parametrize("condition", ["Complete", "Failed"])
@pytest.mark.parametrize("indent", [None, 2])
def test_the_text_of_an_ended_job_may_have_ended(condition: str, indent: int | None) -> None:
    ended = _job_obj(condition)
    assert may_have_ended(json.dumps(ended, indent=indent)) and may_have_ended(json.dumps(ended, separators=(",", ":")))
    # Without a final condition: not, unless the words are there (then it is decoded and asked).
    assert not may_have_ended(json.dumps(_job_obj("Suspended"))) and not may_have_ended(json.dumps(_job_obj()))
    assert may_have_ended(json.dumps(_job_obj("Suspended", reason="Failed")))


def test_observe_succeeded_job_reads_the_runner_result() -> None:
    result = RunnerResult(operation="apply", ok=True, duration_seconds=7.5)
    pod = _pod({"terminated": {"exitCode": 0, "message": result.to_json(), "finishedAt": "t"}})
    seen = observe_job(_job_obj("Complete"), [pod])
    assert seen.state == "succeeded" and seen.result == result and seen.finished_at == "t"


def test_observe_failed_job_prefers_the_runner_error_then_log_tail() -> None:
    result = RunnerResult(
        operation="apply", ok=False, error="NameError: name 'Fielld' is not defined", duration_seconds=1
    )
    failed = _pod({"terminated": {"exitCode": 1, "message": result.to_json()}})
    assert observe_job(_job_obj("Failed"), [failed]).message == "NameError: name 'Fielld' is not defined"
    crashed = _pod({"terminated": {"exitCode": 1, "message": "Traceback...\nImportError: no module x\n"}})
    assert observe_job(_job_obj("Failed"), [crashed]).message == "ImportError: no module x"
    deadline = observe_job(_job_obj("Failed", "DeadlineExceeded", "Job was active longer than specified"), [])
    assert deadline.message.startswith("deadline exceeded")


def test_observe_pod_that_cannot_start_is_stuck() -> None:
    pod = _pod({"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "redis" not found'}})
    seen = observe_job(_job_obj(), [pod])
    assert seen.state == "stuck" and seen.message == 'CreateContainerConfigError: secret "redis" not found'
    assert observe_job(_job_obj(), [_pod({"running": {}})]).state == "running"


# -- decisions ------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 26, 12, 5, tzinfo=UTC)


def _status(status: FeatureStoreProjectStatus) -> dict[str, str]:
    return {c.type: f"{c.status}/{c.reason}" for c in status.conditions}


def _observe(status: FeatureStoreProjectStatus | None = None, **fields: Any) -> ProjectObservation:
    base: dict[str, Any] = {
        "generation": 1,
        "status": status or FeatureStoreProjectStatus(),
        "repo": REPO,
        "apply_hash": "h1",
        "job_name": "job-h1",
    }
    return ProjectObservation(**{**base, **fields})


def test_new_project_creates_its_apply_job() -> None:
    decision = decide_project(_observe(), NOW)
    assert decision.create_job
    assert _status(decision.status)["Reconciling"] == "True/ApplyStarted"


def test_applied_project_with_same_hash_does_nothing() -> None:
    status = FeatureStoreProjectStatus(applied_spec_hash="h1", last_apply=LastApply(revision="r", job_name="job-h1"))
    decision = decide_project(_observe(status), NOW)
    assert not decision.create_job
    assert _status(decision.status)["Ready"] == "True/Applied"


def test_finished_job_is_recorded_once_with_pending_audit() -> None:
    result = RunnerResult(
        operation="apply",
        ok=True,
        duration_seconds=2,
        changes=ObjectChanges(feature_views=["fv"]),
        current=ObjectChanges(feature_views=["fv", "other"], entities=["driver"]),
        mlflow_error="connection refused",
        audit={"i": "a1", "x": 1},
    )
    finished = "2026-11-26T12:01:00Z"
    job = JobObservation("job-h1", "succeeded", "", result, finished, {labels.ANNOTATION_TRIGGER: "created"})
    decision = decide_project(_observe(job=job), NOW)
    status = decision.status
    assert decision.finished_job is job and status.applied_spec_hash == "h1"
    assert status.last_apply is not None
    assert status.last_apply.trigger == "created" and status.last_apply.outcome == "Succeeded"
    assert status.last_apply.to_k8s()["time"] == finished
    assert status.feature_views == ["fv", "other"] and status.pending_audit == [{"i": "a1", "x": 1}]
    # Seen again (a resync), the same Job adds nothing: a delivered record is not re-queued.
    status.pending_audit = []
    again = decide_project(_observe(status, job=job), LATER)
    assert again.finished_job is None and again.status.pending_audit == [] and again.transitions == []


def test_a_full_pending_audit_drops_its_oldest_record_with_a_warning() -> None:
    result = RunnerResult(operation="apply", ok=True, duration_seconds=2, audit={"i": "new"})
    job = JobObservation("job-h1", "succeeded", "", result, "2026-11-26T12:01:00Z", {})
    full = FeatureStoreProjectStatus(pending_audit=[{"i": f"old{n}"} for n in range(MAX_PENDING_AUDIT)])
    decision = decide_project(_observe(full, job=job), NOW)
    assert len(decision.status.pending_audit) == MAX_PENDING_AUDIT
    assert decision.status.pending_audit[-1] == {"i": "new"} and decision.dropped_audit == ["old0"]
    [(kind, _reason, message)] = [event for event in decision.events if event[1] == AUDIT_DROPPED]
    assert kind == "Warning" and "old0" in message


def test_failed_apply_stalls_without_retrying() -> None:
    job = JobObservation("job-h2", "failed", "feature repo failed to import: NameError: x")
    status = FeatureStoreProjectStatus(applied_spec_hash="h1", last_apply=LastApply(job_name="job-h1", revision="r"))
    decision = decide_project(_observe(status, generation=3, apply_hash="h2", job_name="job-h2", job=job), NOW)
    assert not decision.create_job
    conditions = _status(decision.status)
    assert conditions["Stalled"] == "True/ApplyFailed" and conditions["Applied"] == "False/ApplyFailed"
    assert decision.status.applied_spec_hash == "h1"
    assert decision.status.last_apply is not None
    assert decision.status.last_apply.error == "feature repo failed to import: NameError: x"


def test_missing_input_stalls_with_its_reason() -> None:
    problem = InputProblem("RepoNotFound", 'ConfigMap "driver-repo" (repo.configMap) not found in namespace ml')
    decision = decide_project(ProjectObservation(2, FeatureStoreProjectStatus(), problem), NOW)
    assert not decision.create_job
    assert _status(decision.status)["Stalled"] == "True/RepoNotFound"
    assert decision.status.observed_generation == 2
    assert [t.reason for t in decision.transitions if t.type == "Stalled"] == ["RepoNotFound"]


@pytest.mark.parametrize(
    "observation",
    [
        _observe(generation=7),
        _observe(generation=7, job=JobObservation("job-h1", "running")),
        _observe(generation=7, job=JobObservation("job-h1", "failed", "boom")),
        _observe(generation=7, job=JobObservation("job-h1", "succeeded", "", None, "2026-11-26T12:01:00Z", {})),
        ProjectObservation(7, FeatureStoreProjectStatus(observed_generation=6), InputProblem("RepoNotFound", "gone")),
    ],
    ids=["new", "applying", "failed", "applied", "stalled"],
)
def test_every_decision_records_the_generation_it_observed(observation: ProjectObservation) -> None:
    """The project watch passes a modified project only while its generation is ahead of
    observedGeneration: a decision that left it behind would have every later event pass again."""
    assert decide_project(observation, NOW).status.observed_generation == 7


# -- every optional nested field: set, then cleared ------------------------------------------------


def _apply_result(ok: bool, **fields: Any) -> RunnerResult:
    return RunnerResult(operation="apply", ok=ok, duration_seconds=1, **fields)


def test_a_fixed_apply_leaves_nothing_of_the_failed_one() -> None:
    """lastApply is replaced whole: error, mlflow, changes, commit and duration of the failed apply go."""
    failed_result = _apply_result(
        False,
        error="NameError: x",
        git_commit="a" * 40,
        changes=ObjectChanges(feature_views=["+fv"]),
        mlflow=MlflowRun(experiment="e", run_id="r1"),
    )
    failed = JobObservation("job-h1", "failed", "NameError: x", failed_result, "2026-11-26T12:01:00Z")
    first = decide_project(_observe(job=failed), NOW).status
    assert first.last_apply is not None
    assert first.last_apply.error and first.last_apply.mlflow and first.last_apply.changes and first.last_apply.commit
    # Fixed: a new hash, a Job whose runner reported nothing (its pod was lost) and MLflow was down.
    fixed = JobObservation("job-h2", "succeeded", "", None, None)
    second = decide_project(_observe(first, apply_hash="h2", job_name="job-h2", job=fixed), LATER).status
    assert second.last_apply is not None
    assert second.last_apply.to_k8s() == {
        "revision": REPO.revision,
        "time": "2026-11-26T12:05:00Z",
        "jobName": "job-h2",
        "outcome": "Succeeded",
    }


def test_a_problem_clears_the_stalled_message_once_fixed() -> None:
    problem = InputProblem("RepoNotFound", "ConfigMap missing")
    stalled = decide_project(ProjectObservation(1, FeatureStoreProjectStatus(), problem), NOW).status
    assert any(c.message for c in stalled.conditions if c.type == "Stalled")
    applied = stalled.model_copy(update={"applied_spec_hash": "h1"})
    ready = decide_project(_observe(applied), LATER).status
    stalled_condition = next(c for c in ready.conditions if c.type == "Stalled")
    assert (stalled_condition.status, stalled_condition.message) == ("False", "")


def test_conditions_of_an_unknown_generation_carry_none() -> None:
    with_generation = decide_project(_observe(), NOW).status
    assert all(c.observed_generation == 1 for c in with_generation.conditions)
    without = decide_project(_observe(with_generation, generation=None), LATER).status
    assert all("observedGeneration" not in c.to_k8s() for c in without.conditions)
    assert "observedGeneration" not in without.to_k8s()


def test_an_apply_records_what_feast_materializes_and_a_later_one_without_it_clears_it() -> None:
    result = _apply_result(
        True,
        current=ObjectChanges(feature_views=["fv", "odfv"]),
        default_materialized=["fv"],
        not_materializable={"odfv": "OnDemandFeatureView odfv is not configured for write_to_online_store."},
    )
    first = decide_project(_observe(job=JobObservation("job-h1", "succeeded", "", result)), NOW).status
    assert first.materialized_feature_views == ["fv"]
    assert [(v.name, v.reason) for v in first.unmaterializable_feature_views] == [
        ("odfv", "OnDemandFeatureView odfv is not configured for write_to_online_store.")
    ]
    # A runner whose result had to drop them: unknown, not the last apply's answer.
    trimmed = _apply_result(True)
    second = decide_project(
        _observe(first, apply_hash="h2", job_name="job-h2", job=JobObservation("job-h2", "succeeded", "", trimmed)),
        LATER,
    ).status
    assert second.materialized_feature_views is None and second.unmaterializable_feature_views == []


def test_an_apply_too_big_to_name_records_counts_and_no_stale_names() -> None:
    small = _apply_result(True, current=ObjectChanges(feature_views=["fv"], entities=["driver"]))
    first = decide_project(_observe(job=JobObservation("job-h1", "succeeded", "", small)), NOW).status
    assert (first.feature_views, first.feature_view_count, first.entity_count) == (["fv"], 1, 1)
    big = _apply_result(True, counts=ObjectCounts(feature_views=1000, feature_services=100, entities=1))
    job = JobObservation("job-h2", "succeeded", "", big)
    second = decide_project(_observe(first, apply_hash="h2", job_name="job-h2", job=job), LATER).status
    assert second.feature_views == [] and second.feature_services == []
    wire = second.to_k8s()
    assert (wire["featureViewCount"], wire["featureServiceCount"], wire["entityCount"]) == (1000, 100, 1)


# -- a Git outage ----------------------------------------------------------------------------------

GIT_COMMIT = "c" * 40


def _applied_git_status() -> tuple[FeatureStoreProjectStatus, RepoIdentity]:
    repo = git_identity("main", "features", GIT_COMMIT)
    last = LastApply(revision="main", commit=GIT_COMMIT, outcome="Succeeded", spec_hash="s1", job_name="job")
    return FeatureStoreProjectStatus(last_apply=last, applied_spec_hash=apply_hash("s1", repo)), repo


def test_the_last_applied_commit_stands_in_for_an_unreachable_git_server() -> None:
    status, repo = _applied_git_status()
    assert last_applied_git_repo(status.last_apply, status.applied_spec_hash, "s1", "main", "features") == repo
    # Not after a spec change, nor for another revision or path, nor after a failed apply.
    assert last_applied_git_repo(status.last_apply, status.applied_spec_hash, "s2", "main", "features") is None
    assert last_applied_git_repo(status.last_apply, status.applied_spec_hash, "s1", "v2", "features") is None
    assert last_applied_git_repo(status.last_apply, status.applied_spec_hash, "s1", "main", "other") is None
    failed = status.last_apply.model_copy(update={"outcome": "Failed"}) if status.last_apply else None
    assert last_applied_git_repo(failed, status.applied_spec_hash, "s1", "main", "features") is None


def test_a_git_outage_keeps_the_project_ready_and_says_the_source_is_unavailable() -> None:
    status, repo = _applied_git_status()
    outage = InputProblem("GitUnreachable", "cannot reach https://git.example/r.git: connection refused")
    observation = _observe(status, repo=repo, apply_hash=apply_hash("s1", repo), job_name="job", source_problem=outage)
    during = decide_project(observation, NOW)
    assert not during.create_job
    conditions = _status(during.status)
    assert conditions["Ready"] == "True/Applied" and conditions["Stalled"] == "False/Healthy"
    assert conditions["SourceAvailable"] == "False/GitUnreachable"
    ready = next(c for c in during.status.conditions if c.type == "Ready")
    assert ready.message.endswith("; source unavailable: cannot reach https://git.example/r.git: connection refused")
    assert [(t.type, t.reason) for t in during.transitions if t.type == "SourceAvailable"] == [
        ("SourceAvailable", "GitUnreachable")
    ]
    after = decide_project(_observe(during.status, repo=repo, apply_hash=apply_hash("s1", repo)), LATER)
    source = next(c for c in after.status.conditions if c.type == "SourceAvailable")
    assert (source.status, source.reason, source.message) == ("True", "SourceAvailable", f"main is commit {GIT_COMMIT}")
    assert "source unavailable" not in next(c for c in after.status.conditions if c.type == "Ready").message


def test_an_unreachable_source_without_an_applied_commit_stalls() -> None:
    problem = InputProblem("GitUnreachable", "cannot reach it")
    decision = decide_project(ProjectObservation(1, FeatureStoreProjectStatus(), problem), NOW)
    conditions = _status(decision.status)
    assert conditions["Stalled"] == "True/GitUnreachable" and conditions["SourceAvailable"] == "False/GitUnreachable"
    # A problem that is not about the source leaves SourceAvailable as it was.
    secret = decide_project(ProjectObservation(1, decision.status, InputProblem("SecretNotFound", "no secret")), LATER)
    assert _status(secret.status)["SourceAvailable"] == "False/GitUnreachable"


# -- one apply per project at a time ----------------------------------------------------------------


def _apply_job(name: str, state: str, digest: str, revision: str, finished: str | None = None) -> JobObservation:
    annotations = {labels.ANNOTATION_APPLY_HASH: digest, labels.ANNOTATION_REVISION: revision}
    result = _apply_result(state == "succeeded") if finished else None
    return JobObservation(name, state, "", result, finished, annotations)  # type: ignore[arg-type]


APPLIED_A = FeatureStoreProjectStatus(
    applied_spec_hash="hA",
    last_apply=LastApply(revision="rev-a0", job_name="job-a0", outcome="Succeeded", time=NOW),
)


def _racing(status: FeatureStoreProjectStatus, digest: str, *others: JobObservation, **fields: Any) -> Any:
    repo = RepoIdentity("configMap", f"rev-{digest}", digest)
    observation = _observe(
        status, repo=repo, apply_hash=digest, job_name=f"job-{digest}", other_applies=list(others), **fields
    )
    return decide_project(observation, LATER)


def test_a_newer_revision_waits_for_the_running_apply() -> None:
    running = _apply_job("job-hB", "running", "hB", "rev-hB")
    decision = _racing(APPLIED_A, "hC", running)
    assert not decision.create_job
    assert _status(decision.status)["Reconciling"] == "True/ApplyWaiting"
    assert _status(decision.status)["Ready"] == "False/ApplyWaiting"
    pending = decision.status.pending_apply
    assert pending is not None and (pending.revision, pending.apply_hash) == ("rev-hC", "hC")
    assert pending.waiting_for == "Job job-hB (an earlier apply) to finish"
    # Even a revert to what status says is applied waits: the running Job is about to change the registry.
    assert not _racing(APPLIED_A, "hA", running).create_job


def test_a_waiting_revision_superseded_before_it_started_is_recorded_and_skipped() -> None:
    running = _apply_job("job-hB", "running", "hB", "rev-hB")
    waiting = _racing(APPLIED_A, "hC", running).status
    again = _racing(waiting, "hD", running)
    assert not again.create_job
    superseded = again.status.last_superseded_apply
    assert superseded is not None and superseded.revision == "rev-hC"
    assert again.status.pending_apply is not None and again.status.pending_apply.revision == "rev-hD"
    assert again.events == [("Normal", "ApplySuperseded", "rev-hC was superseded before its apply started")]


def test_an_earlier_apply_that_finished_is_recorded_then_the_current_one_starts() -> None:
    running = _apply_job("job-hB", "running", "hB", "rev-hB")
    waiting = _racing(APPLIED_A, "hC", running).status
    done = _apply_job("job-hB", "succeeded", "hB", "rev-hB", finished="2026-11-26T12:04:00Z")
    decision = _racing(waiting, "hC", done)
    # Status says what the registry holds: the earlier apply, then the current one is started.
    assert decision.finished_job is done and decision.create_job
    assert decision.status.last_apply is not None
    assert (decision.status.last_apply.job_name, decision.status.last_apply.revision) == ("job-hB", "rev-hB")
    assert decision.status.applied_spec_hash == "hB" and decision.status.pending_apply is None
    # Seen again, it is not recorded twice; older finished Jobs (kept history) never are.
    old = _apply_job("job-a0", "succeeded", "hA", "rev-a0", finished="2026-11-26T11:00:00Z")
    again = _racing(decision.status, "hC", done, old)
    assert again.finished_job is None and again.status.last_apply == decision.status.last_apply


def test_with_a_file_registry_an_apply_waits_for_running_materializations() -> None:
    decision = _racing(APPLIED_A, "hC", running_materializations=["run-materialize"])
    assert not decision.create_job
    assert _status(decision.status)["Reconciling"] == "True/ApplyWaiting"
    assert decision.status.pending_apply is not None
    assert decision.status.pending_apply.waiting_for == (
        "materialize Job run-materialize to finish (the project's file registry takes one writer at a time)"
    )
    assert _racing(decision.status, "hC").create_job


def test_a_superseded_apply_whose_pod_never_started_is_deleted() -> None:
    stuck = _apply_job("job-hB", "stuck", "hB", "rev-hB")
    decision = _racing(APPLIED_A, "hC", stuck)
    assert decision.delete_jobs == ["job-hB"] and decision.create_job


# -- runner Job bounds ------------------------------------------------------------------------------


def test_runner_jobs_are_bounded_by_default_and_overridable() -> None:
    job = _job(_project())
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }
    assert job["spec"]["activeDeadlineSeconds"] == 3600
    workspace = next(v for v in pod["volumes"] if v["name"] == "workspace")
    assert workspace == {"name": "workspace", "emptyDir": {"sizeLimit": "2Gi"}}

    runner = {"resources": {"requests": {"cpu": "1"}}, "activeDeadlineSeconds": 600, "workspaceSizeLimit": "10Gi"}
    custom = _job(_project(runner=runner))
    pod = custom["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"] == {"requests": {"cpu": "1"}}
    assert custom["spec"]["activeDeadlineSeconds"] == 600
    assert next(v for v in pod["volumes"] if v["name"] == "workspace")["emptyDir"] == {"sizeLimit": "10Gi"}
    # A run's own deadline comes first.
    assert _job(_project(runner=runner), active_deadline_seconds=5)["spec"]["activeDeadlineSeconds"] == 5
