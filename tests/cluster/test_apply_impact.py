"""Impact analysis before apply, end to end: the real operator, runner Jobs, Feast and MLflow server.

A registered model version trained in the project's namespace on ``driver_activity_v1`` depends on
the feature view driver_daily_trips (the service includes it whole). Renaming one of its features is
reported with that model under Warn, and held under Block until its plan is approved, by someone
RBAC lets approve.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from mlflow.tracking import MlflowClient

from feast_lineage.api import APPROVE_PLAN_ANNOTATION, FEATURE_STORE_PROJECT_PLURAL, GROUP, VERSION
from feast_lineage.devcluster.cluster import DevCluster
from feast_lineage.devcluster.mlflow_server import MlflowServer
from tests.cluster.projects import Projects, example_files, project_manifest, repo_configmap
from tests.cluster.users import grant, user_api
from tests.cluster_helpers import wait_until
from tests.integration.mlflow_checks import register_trained_model
from tests.integration.runner_setup import rename_trips_feature
from tests.operator_pod import ChartOperator

# Each test runs up to six apply Jobs one after another: more than the default ten minutes on a busy node.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(2400)]

# The analysis reads MLflow from the runner pod: on a loaded machine a call can take seconds.
PATIENT_MLFLOW = {"logOperations": True, "requestTimeoutSeconds": 30, "maxRetries": 1}
AUTHOR = {"apiGroups": [GROUP], "resources": ["featurestoreprojects"], "verbs": ["get", "list", "update", "patch"]}
APPROVER = {"apiGroups": [GROUP], "resources": ["featurestoreprojects"], "verbs": ["approve"]}


def _start(api: client.ApiClient, namespace: str, tmp_path: Path, **spec: Any) -> Projects:
    projects = Projects(api, namespace)
    client.CoreV1Api(api).create_namespaced_config_map(namespace, repo_configmap("driver-repo", example_files()))
    manifest = project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "driver-repo"}}, **spec)
    manifest["spec"]["mlflow"] = PATIENT_MLFLOW
    projects.create(manifest)
    projects.wait_condition("drivers", "Ready", timeout=300)
    return projects


def _change_repo(api: client.ApiClient, namespace: str, edit: Any) -> None:
    core = client.CoreV1Api(api)
    current = core.read_namespaced_config_map("driver-repo", namespace)
    files = {key: value.encode() for key, value in (current.data or {}).items()}
    files.update({k: v for k, v in example_files().items() if k not in files})
    files["features.py"] = edit(files["features.py"].decode()).encode()
    core.replace_namespaced_config_map("driver-repo", namespace, repo_configmap("driver-repo", files))


def _next_apply(projects: Projects, after_job: str, timeout: float = 600) -> dict[str, Any]:
    """lastApply once a Job other than ``after_job`` is recorded there."""

    def recorded() -> dict[str, Any] | None:
        last = (projects.get("drivers").get("status") or {}).get("lastApply") or {}
        return last if last.get("jobName") not in (None, after_job) else None

    try:
        return wait_until(recorded, timeout, f"an apply after {after_job}")
    except AssertionError as error:
        status = projects.get("drivers").get("status") or {}
        summary = "; ".join(f"{c['type']}={c['status']} {c['reason']}: {c['message']}" for c in status["conditions"])
        raise AssertionError(f"{error}; jobs {projects.apply_jobs('drivers')}; conditions: {summary}") from None


def _last_job(projects: Projects) -> str:
    return str(projects.get("drivers")["status"]["lastApply"]["jobName"])


def _annotate(api: client.ApiClient, namespace: str, plan: str) -> None:
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        FEATURE_STORE_PROJECT_PLURAL,
        "drivers",
        {"metadata": {"annotations": {APPROVE_PLAN_ANNOTATION: plan}}},
    )


def test_warn_applies_and_names_the_dependent_model_in_status_event_and_mlflow(
    api: client.ApiClient, namespace: str, operator: ChartOperator, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    projects = _start(api, namespace, tmp_path)
    first = _last_job(projects)
    model = register_trained_model(mlflow_server.url, namespace, "driver_activity_v1", "driver_stats")
    decoy = register_trained_model(mlflow_server.url, f"{namespace}-other", "driver_activity_v1", "driver_stats")

    _change_repo(api, namespace, lambda text: rename_trips_feature(text, "avg_daily_trips", "avg_trips"))
    last = _next_apply(projects, first)

    assert last["outcome"] == "Succeeded", last
    impact = last["impact"]
    assert impact["policy"] == "Warn" and impact["held"] is False
    assert impact["objects"] == ["~driver_activity_v1", "~driver_daily_trips"]
    assert impact["models"] == [{"name": model, "version": "1", "featureService": "driver_activity_v1"}]
    assert decoy not in str(impact), "a namesake in another namespace is not this project's model"
    projects.wait_condition("drivers", "Ready")
    warnings = [message for reason, message in projects.events("drivers") if reason == "ApplyImpact"]
    assert len(warnings) == 1 and f"{model} v1" in warnings[0] and impact["planHash"] in warnings[0]
    run_id = wait_until(
        lambda: ((projects.get("drivers")["status"]["lastApply"].get("mlflow")) or {}).get("runId"),
        120,
        "the apply's MLflow run",
    )
    tags = MlflowClient(mlflow_server.url).get_run(run_id).data.tags
    assert tags["featurelineage.impact.models"] == f"{model}/1"
    assert tags["featurelineage.impact.plan_hash"] == impact["planHash"]


def test_block_holds_a_change_until_an_approver_approves_exactly_its_plan(
    api: client.ApiClient,
    dev_cluster: DevCluster,
    namespace: str,
    operator: ChartOperator,
    mlflow_server: MlflowServer,
    tmp_path: Path,
) -> None:
    projects = _start(api, namespace, tmp_path, applyPolicy={"onImpact": "Block"})
    model = register_trained_model(mlflow_server.url, namespace, "driver_activity_v1", "driver_stats")
    grant(api, namespace, "carol", [AUTHOR])
    grant(api, namespace, "dave", [AUTHOR, APPROVER])
    carol = user_api(dev_cluster, "carol", ("data-team",), tmp_path / "users")
    dave = user_api(dev_cluster, "dave", ("data-team",), tmp_path / "users")

    # A change no registered model depends on applies at once, Block or not.
    _change_repo(
        api,
        namespace,
        lambda text: text.replace("driver ranking model, version 1.", "driver ranking model, version 1 (ranked)."),
    )
    quiet = _next_apply(projects, _last_job(projects))
    assert quiet["outcome"] == "Succeeded" and quiet["changes"]["featureServices"] == ["~driver_ranking_v1"]
    assert quiet["impact"]["models"] == [] and quiet["impact"]["held"] is False

    # Renaming a feature the model's service reads: held, in progress rather than degraded.
    _change_repo(api, namespace, lambda text: rename_trips_feature(text, "avg_daily_trips", "avg_trips"))
    held = _next_apply(projects, quiet["jobName"])
    assert held["outcome"] == "AwaitingApproval" and "changes" not in held
    first_plan = held["impact"]["planHash"]
    assert held["impact"]["models"] == [{"name": model, "version": "1", "featureService": "driver_activity_v1"}]
    waiting = projects.wait_condition("drivers", "AwaitingApproval", reason="PlanNotApproved")
    conditions = {c["type"]: c for c in waiting["status"]["conditions"]}
    assert f"{model} v1" in conditions["AwaitingApproval"]["message"]
    assert first_plan in conditions["AwaitingApproval"]["message"]
    assert conditions["Reconciling"]["status"] == "True" and conditions["Reconciling"]["reason"] == "AwaitingApproval"
    assert conditions["Stalled"]["status"] == "False" and conditions["Ready"]["status"] == "False"
    assert "driver_ranking_v1" in waiting["status"]["featureServices"], "status still describes the registry"

    # The author of a change may not approve it: the approve verb is RBAC's to grant.
    with pytest.raises(ApiException) as refused:
        _annotate(carol, namespace, first_plan)
    assert refused.value.status == 403
    assert 'may not approve featurestoreprojects "drivers"' in json.loads(refused.value.body)["message"]

    # A newer change: approving the older plan does not release it.
    _change_repo(api, namespace, lambda text: rename_trips_feature(text, "avg_trips", "trips_per_day"))
    newer = _next_apply(projects, held["jobName"])
    second_plan = newer["impact"]["planHash"]
    assert newer["outcome"] == "AwaitingApproval" and second_plan != first_plan
    _annotate(dave, namespace, first_plan)
    stale = _next_apply(projects, newer["jobName"])
    assert stale["outcome"] == "AwaitingApproval" and stale["impact"]["planHash"] == second_plan
    assert "changes" not in stale

    # Approving exactly the plan that waits applies it.
    _annotate(dave, namespace, second_plan)
    applied = _next_apply(projects, stale["jobName"])
    assert applied["outcome"] == "Succeeded", applied
    assert applied["trigger"] == f"plan {second_plan} approved"
    assert applied["impact"]["planHash"] == second_plan and applied["impact"]["held"] is False
    assert applied["changes"]["featureViews"] == ["~driver_daily_trips"]
    ready = projects.wait_condition("drivers", "Ready")
    assert {c["type"]: c["status"] for c in ready["status"]["conditions"]}["AwaitingApproval"] == "False"
    reasons = [reason for reason, _ in projects.events("drivers")]
    assert reasons.count("ApplyImpact") >= 3, "a Warning for each held plan"
