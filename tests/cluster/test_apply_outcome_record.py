"""An apply stopped without a word from its runner is still one FAILED run in the ops experiment.

Real operator (the chart's, under its RBAC), node, Feast and MLflow: the apply's repo takes minutes to
import and the project gives its Jobs seconds, so Kubernetes stops the Job at its deadline before the
runner can log or report anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from mlflow.tracking import MlflowClient

from feast_lineage.devcluster.mlflow_server import MlflowServer
from feast_lineage.domain import labels
from tests.cluster.projects import Projects, ops_runs, project_manifest, repo_configmap, slow_example_files
from tests.cluster_helpers import wait_until
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.cluster

EXPERIMENT = "driver_stats-feast-ops"


def _stopped_apply(api: client.ApiClient, namespace: str, data: Path, deadline: int) -> Projects:
    """A project whose apply imports for ten minutes and whose Jobs may run ``deadline`` seconds."""
    projects = Projects(api, namespace)
    client.CoreV1Api(api).create_namespaced_config_map(namespace, repo_configmap("repo", slow_example_files(600)))
    manifest = project_manifest("drivers", data, {"configMap": {"name": "repo"}})
    manifest["spec"]["runner"]["activeDeadlineSeconds"] = deadline
    projects.create(manifest)
    return projects


def _apply_audit_id(projects: Projects) -> str:
    [job] = wait_until(lambda: projects.apply_jobs("drivers"), 120, "the apply Job")
    found = projects.batch.read_namespaced_job(job, projects.namespace)
    return str(found.metadata.annotations[labels.ANNOTATION_AUDIT_ID])


def _failed(projects: Projects) -> dict[str, Any]:
    project = projects.wait_condition("drivers", "Stalled", reason="ApplyFailed", timeout=240)
    last: dict[str, Any] = project["status"]["lastApply"]
    assert last["outcome"] == "Failed" and last["error"].startswith("deadline exceeded"), last
    return last


def _delivered(projects: Projects) -> dict[str, Any]:
    last: dict[str, Any] = projects.wait_audit_delivered("drivers", timeout=120)["lastApply"]
    return last


def _passed_again(projects: Projects) -> None:
    """A full pass of the project: a spec change that no apply depends on, observed by its status."""
    projects.patch_spec("drivers", {"mlflow": {"requestTimeoutSeconds": 4}})
    generation = projects.get("drivers")["metadata"]["generation"]
    wait_until(
        lambda: projects.get("drivers")["status"].get("observedGeneration") == generation,
        120,
        "the project's pass of its new generation",
    )


@pytest.mark.timeout(900)
def test_an_apply_stopped_at_its_deadline_is_one_failed_run_however_often_it_is_passed(
    api: client.ApiClient, namespace: str, operator: ChartOperator, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    projects = _stopped_apply(api, namespace, tmp_path / "data", deadline=8)
    audit_id = _apply_audit_id(projects)
    last = _failed(projects)
    assert last["auditId"] == audit_id
    delivered = _delivered(projects)

    [run] = ops_runs(mlflow_server.url, audit_id)
    assert run.info.run_id == delivered["mlflow"]["runId"] and run.info.status == "FAILED"
    tags = run.data.tags
    assert tags["feast.operation"] == "apply" and tags["featurelineage.outcome"] == "failed"
    assert tags["featurelineage.reason"] == "DeadlineExceeded"
    assert tags["featurelineage.error"].startswith("deadline exceeded")
    assert (tags["k8s.namespace"], tags["k8s.name"], tags["k8s.job"]) == (namespace, "drivers", last["jobName"])
    assert tags["featurelineage.revision"] == last["revision"] and tags["featurelineage.snapshot"] == last["snapshot"]
    assert run.info.run_name == f"apply_driver_stats@{namespace}/drivers"
    # From the Job's start to its end: at least its deadline.
    assert run.data.metrics["featurelineage.duration_sec"] >= 8
    print(f"apply stopped at its deadline: recorded as {run.info.run_id}, {tags['featurelineage.error']!r}")

    # The operator restarts and passes the project again: the apply stays recorded, once.
    operator.kill()
    operator.start()
    _passed_again(projects)
    assert [found.info.run_id for found in ops_runs(mlflow_server.url, audit_id)] == [run.info.run_id]
    status = projects.get("drivers")["status"]
    assert not status.get("pendingAudit") and status["lastApply"]["mlflow"]["runId"] == run.info.run_id


@pytest.mark.timeout(900)
def test_an_apply_whose_runner_logged_before_it_was_stopped_keeps_its_one_run(
    api: client.ApiClient, namespace: str, operator: ChartOperator, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    projects = _stopped_apply(api, namespace, tmp_path / "data", deadline=30)
    audit_id = _apply_audit_id(projects)
    # What a runner that logged before it was stopped leaves: a run carrying the apply's audit id
    # (logged here by hand, as no runner can be stopped on cue between its log and its report).
    mlflow = MlflowClient(mlflow_server.url)
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else mlflow.create_experiment(EXPERIMENT)
    logged = mlflow.create_run(experiment_id, tags={"featurelineage.audit_id": audit_id, "k8s.namespace": namespace})
    mlflow.set_terminated(logged.info.run_id, "FINISHED")

    _failed(projects)
    delivered = _delivered(projects)
    # The operator's record found the run by its audit id and went into it: no second run.
    [run] = ops_runs(mlflow_server.url, audit_id)
    assert run.info.run_id == logged.info.run_id == delivered["mlflow"]["runId"]
    assert run.data.tags["featurelineage.reason"] == "DeadlineExceeded"
