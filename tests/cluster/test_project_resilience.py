"""A dead MLflow and a killed operator: applies still complete, nothing is lost, nothing is done twice."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from mlflow.tracking import MlflowClient

from feast_lineage.devcluster.mlflow_server import start_mlflow
from feast_lineage.devcluster.processes import free_port
from tests.cluster.projects import Projects, example_files, ops_runs_with_audit_id, project_manifest, repo_configmap
from tests.cluster_helpers import finished_after, job_running, wait_for_project_resyncs, wait_until
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.cluster


def test_apply_completes_while_mlflow_is_down_and_its_record_is_delivered_once_later(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    core, projects = client.CoreV1Api(api), Projects(api, namespace)
    core.create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
    manifest = project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}})
    manifest["spec"]["mlflow"]["trackingUri"] = url
    server = start_mlflow(tmp_path / "mlflow", port=port)
    try:
        projects.create(manifest)
        first = projects.wait_condition("drivers", "Ready", timeout=180)["status"]["lastApply"]
        assert first["mlflow"]["runId"]
    finally:
        # MLflow goes down, then the repo changes: the second apply happens without it.
        server.stop()
    files = example_files()
    files["features.py"] = files["features.py"].replace(b"ttl=timedelta(days=1)", b"ttl=timedelta(days=2)", 1)
    started = time.monotonic()
    core.replace_namespaced_config_map("repo", namespace, repo_configmap("repo", files))

    def reapplied() -> dict[str, Any] | None:
        current = projects.get("drivers")["status"]
        return current if current["lastApply"]["jobName"] != first["jobName"] else None

    wait_until(reapplied, 180, "the second apply")
    status = projects.wait_condition("drivers", "Ready", timeout=180)["status"]
    print(f"apply with MLflow down: Ready after {time.monotonic() - started:.1f}s")
    last = status["lastApply"]
    # No run of the first apply is left standing in for this one's.
    assert last["outcome"] == "Succeeded" and "mlflow" not in last, last
    # Bounded: timeout 3 s with no retry, not MLflow's default of minutes.
    assert last["durationSeconds"] < 60
    assert [record["i"] for record in status["pendingAudit"]] == [last["auditId"]]

    server = start_mlflow(tmp_path / "mlflow", port=port)
    try:

        def delivered() -> dict[str, object] | None:
            current = projects.get("drivers")["status"]
            return current if not current.get("pendingAudit") and current["lastApply"].get("mlflow") else None

        after = wait_until(delivered, 60, "the pending audit record to reach MLflow")
        run_id = after["lastApply"]["mlflow"]["runId"]  # type: ignore[index]
        assert ops_runs_with_audit_id(url, last["auditId"]) == 1
        run = MlflowClient(url).get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.data.tags["k8s.name"] == "drivers" and run.data.tags["feast.operation"] == "apply"
        # Later passes deliver nothing again: two resyncs, one of them a full pass (the kind that keeps
        # records of applies).
        wait_for_project_resyncs(operator, namespace, "drivers", 2, time.time())
        assert ops_runs_with_audit_id(url, last["auditId"]) == 1
    finally:
        server.stop()


def test_operator_killed_mid_apply_creates_no_second_job_and_converges(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    core, projects = client.CoreV1Api(api), Projects(api, namespace)
    # The repo takes a while to import, so the apply is surely under way when the operator dies.
    files = example_files()
    files["features.py"] = b"import time\n\ntime.sleep(10)\n" + files["features.py"]
    core.create_namespaced_config_map(namespace, repo_configmap("repo", files))
    projects.create(project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}}))
    jobs = wait_until(lambda: projects.apply_jobs("drivers"), 60, "the apply Job")
    wait_until(lambda: job_running(api, namespace, jobs[0]), 60, "the apply Job to run")
    killed = operator.kill()
    assert job_running(api, namespace, jobs[0]), "the apply ended before the operator was killed"
    operator.start()
    status = projects.wait_condition("drivers", "Ready", timeout=180)["status"]
    assert finished_after(api, namespace, jobs[0], killed)
    assert projects.apply_jobs("drivers") == jobs
    assert status["lastApply"]["jobName"] == jobs[0] and status["lastApply"]["outcome"] == "Succeeded"
    # The restarted operator's resyncs after the apply ended, a full pass among them, create no Job either.
    wait_for_project_resyncs(operator, namespace, "drivers", 2, time.time())
    assert projects.apply_jobs("drivers") == jobs


def _failing_job_webhook(api: client.ApiClient, namespace: str) -> str:
    """An admission webhook nobody serves, on Job creation in ``namespace`` only: the API server answers
    500 (failed calling webhook), the error a pass retries rather than stalls on."""
    name = f"refuse-jobs-{namespace}"
    client.AdmissionregistrationV1Api(api).create_validating_webhook_configuration(
        {
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": "refuse-jobs.featurelineage.io",
                    "clientConfig": {"url": "https://127.0.0.1:9/refuse"},
                    "rules": [
                        {"operations": ["CREATE"], "apiGroups": ["batch"], "apiVersions": ["v1"], "resources": ["jobs"]}
                    ],
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                    "failurePolicy": "Fail",
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "timeoutSeconds": 2,
                }
            ],
        }
    )
    return name


def test_a_spec_change_whose_pass_fails_is_applied_once_the_api_server_accepts_it(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    core, projects = client.CoreV1Api(api), Projects(api, namespace)
    core.create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
    changed = example_files()
    changed["features.py"] = changed["features.py"].replace(b"ttl=timedelta(days=1)", b"ttl=timedelta(days=3)", 1)
    core.create_namespaced_config_map(namespace, repo_configmap("repo-2", changed))
    projects.create(project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}}))
    first = projects.wait_ready_at_generation("drivers")["status"]["lastApply"]
    webhook = _failing_job_webhook(api, namespace)
    try:
        projects.patch_spec("drivers", {"repo": {"configMap": {"name": "repo-2"}}})
        # The pass that would create the new apply Job fails; it is retried, not dropped.
        failure = f"a pass of {namespace}/drivers failed; it is retried"
        wait_until(lambda: operator.log().count(failure) >= 2, 120, "the pass to fail and be retried")
        assert projects.apply_jobs("drivers") == [first["jobName"]]
    finally:
        client.AdmissionregistrationV1Api(api).delete_validating_webhook_configuration(webhook)
    status = projects.wait_ready_at_generation("drivers")["status"]
    assert status["lastApply"]["outcome"] == "Succeeded"
    assert status["lastApply"]["jobName"] != first["jobName"]
    assert len(projects.apply_jobs("drivers")) == 2
