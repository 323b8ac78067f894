"""Pure rendering and decisions for FeatureStoreProjects: config, Job, hashes, conditions, outcomes."""

from __future__ import annotations

import json
from typing import Any

import yaml

from feast_lineage.api import FeatureStoreProject, LastApply
from feast_lineage.domain import labels
from feast_lineage.domain.apply_plan import RepoIdentity, apply_hash, apply_job_name, spec_hash, trigger
from feast_lineage.domain.conditions import DesiredCondition, kstatus, merge_conditions
from feast_lineage.domain.project_state import InputProblem, ProjectObservation, decide_project
from feast_lineage.domain.provenance import gitops_owner, provenance_tags, redact_url, triggered_by
from feast_lineage.domain.runner_job import RunnerJobRequest, render_runner_job
from feast_lineage.domain.runner_outcome import JobObservation, observe_job
from feast_lineage.domain.store_config import feature_store_config, render_feature_store_yaml
from feast_lineage.runner.contract import ObjectChanges, RunnerResult

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
    assert redact_url("https://user:s3cret@git.example:8443/r.git") == "https://git.example:8443/r.git"
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
    assert tags["git.url"] == "https://git.example/r.git" and tags["git.commit"] == "c" * 40


def test_gitops_owners_are_recognised() -> None:
    argo = {"annotations": {"argocd.argoproj.io/tracking-id": "app:group/Kind:ns/name"}}
    flux = {"labels": {"kustomize.toolkit.fluxcd.io/name": "features", "kustomize.toolkit.fluxcd.io/namespace": "flux"}}
    assert gitops_owner(argo) == {"argocd.tracking_id": "app:group/Kind:ns/name"}
    assert gitops_owner(flux) == {"flux.kustomization": "flux/features"}
    assert triggered_by(flux, created_by_schedule=False) == "gitops"
    assert triggered_by({}, created_by_schedule=False) == "manual"
    assert triggered_by(argo, created_by_schedule=True) == "schedule"


# -- conditions -----------------------------------------------------------------------------------


def test_transition_time_moves_only_when_status_changes() -> None:
    first, transitions = merge_conditions([], kstatus(False, True, False, "ApplyRunning", "m"), 1, "t1")
    assert [t.type for t in transitions] == ["Ready", "Reconciling", "Stalled"]
    same, transitions = merge_conditions(first, kstatus(False, True, False, "ApplyRunning", "m2"), 2, "t2")
    assert transitions == [] and all(c["lastTransitionTime"] == "t1" for c in same)
    assert all(c["observedGeneration"] == 2 for c in same)
    done, transitions = merge_conditions(same, kstatus(True, False, False, "Applied", "ok"), 2, "t3")
    ready = next(c for c in done if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "t3" and [t.type for t in transitions] == ["Ready", "Reconciling"]


def test_conditions_not_desired_are_kept() -> None:
    merged, _ = merge_conditions(
        [{"type": "Applied", "status": "True"}], [DesiredCondition("Ready", True, "R", "")], 1, "t"
    )
    assert [c["type"] for c in merged] == ["Ready", "Applied"]


# -- Job observation ------------------------------------------------------------------------------


def _pod(state: dict[str, Any], created: str = "2026-11-26T10:00:00Z") -> dict[str, Any]:
    return {"metadata": {"creationTimestamp": created}, "status": {"containerStatuses": [{"state": state}]}}


def _job_obj(condition: str | None = None, reason: str = "", message: str = "") -> dict[str, Any]:
    conditions = [{"type": condition, "status": "True", "reason": reason, "message": message}] if condition else []
    return {"metadata": {"name": "j", "annotations": {"x": "y"}}, "status": {"conditions": conditions}}


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


def _status(decision_status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: f"{c['status']}/{c['reason']}" for c in decision_status["conditions"]}


def test_new_project_creates_its_apply_job() -> None:
    decision = decide_project(ProjectObservation(1, {}, None, REPO, "h1", "job-h1", None), "t")
    assert decision.create_job
    assert _status(decision.status)["Reconciling"] == "True/ApplyStarted"


def test_applied_project_with_same_hash_does_nothing() -> None:
    status = {"appliedSpecHash": "h1", "lastApply": {"revision": "r", "jobName": "job-h1"}}
    decision = decide_project(ProjectObservation(1, status, None, REPO, "h1", "job-h1", None), "t")
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
    job = JobObservation("job-h1", "succeeded", "", result, "t-done", {labels.ANNOTATION_TRIGGER: "created"})
    decision = decide_project(ProjectObservation(1, {}, None, REPO, "h1", "job-h1", job), "t")
    status = decision.status
    assert decision.finished_job is job and status["appliedSpecHash"] == "h1"
    assert status["lastApply"]["trigger"] == "created" and status["lastApply"]["outcome"] == "Succeeded"
    assert status["featureViews"] == ["fv", "other"] and status["pendingAudit"] == [{"i": "a1", "x": 1}]
    # Seen again (a resync), the same Job adds nothing: a delivered record is not re-queued.
    status["pendingAudit"] = []
    again = decide_project(ProjectObservation(1, status, None, REPO, "h1", "job-h1", job), "t2")
    assert again.finished_job is None and again.status["pendingAudit"] == [] and again.transitions == []


def test_failed_apply_stalls_without_retrying() -> None:
    job = JobObservation("job-h2", "failed", "feature repo failed to import: NameError: x")
    status = {"appliedSpecHash": "h1", "lastApply": {"jobName": "job-h1", "revision": "r"}}
    decision = decide_project(ProjectObservation(3, status, None, REPO, "h2", "job-h2", job), "t")
    assert not decision.create_job
    conditions = _status(decision.status)
    assert conditions["Stalled"] == "True/ApplyFailed" and conditions["Applied"] == "False/ApplyFailed"
    assert decision.status["appliedSpecHash"] == "h1"
    assert decision.status["lastApply"]["error"] == "feature repo failed to import: NameError: x"


def test_missing_input_stalls_with_its_reason() -> None:
    problem = InputProblem("RepoNotFound", 'ConfigMap "driver-repo" (repo.configMap) not found in namespace ml')
    decision = decide_project(ProjectObservation(2, {}, problem), "t")
    assert not decision.create_job
    assert _status(decision.status)["Stalled"] == "True/RepoNotFound"
    assert decision.status["observedGeneration"] == 2
    assert [t.reason for t in decision.transitions if t.type == "Stalled"] == ["RepoNotFound"]
