"""The audit trail against a real cluster: a Job's retries are one MLflow run that agrees with
status; deleting a project first delivers its pending record; a hostile tracking server delays
no other namespace and does not grow the operator's memory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from feast_lineage.devcluster.mlflow_server import MlflowServer
from tests.cluster.projects import (
    Projects,
    example_files,
    ops_runs,
    project_manifest,
    range_run_manifest,
    repo_configmap,
)
from tests.cluster_helpers import gone, wait_until
from tests.hostile_servers import Gate, serving, stream_gibibyte, trickle_body
from tests.operator_pod import ChartOperator

# Each waits for applies, runs and MLflow on a busy machine: minutes.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1500)]

FAIL_ONCE = b"""import pathlib as _pathlib

_marker = _pathlib.Path("/feast-data/first-attempt-done")
if not _marker.exists():
    _marker.touch()
    raise RuntimeError("the first attempt fails on purpose")
"""


def create_example(projects: Projects, name: str, tmp_path: Path, tracking_uri: str) -> None:
    """The example project (its repo in a ConfigMap) logging to ``tracking_uri``, patiently."""
    projects.core.create_namespaced_config_map(projects.namespace, repo_configmap("repo", example_files()))
    manifest = project_manifest(name, tmp_path / "data", {"configMap": {"name": "repo"}})
    manifest["spec"]["mlflow"].update(trackingUri=tracking_uri, requestTimeoutSeconds=30, maxRetries=1)
    projects.create(manifest)


def test_a_retried_apply_is_one_run_and_status_and_mlflow_agree_on_its_outcome(
    api: client.ApiClient, namespace: str, operator: ChartOperator, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    core, projects = client.CoreV1Api(api), Projects(api, namespace)
    files = example_files()
    files["features.py"] = FAIL_ONCE + files["features.py"]
    core.create_namespaced_config_map(namespace, repo_configmap("repo", files))
    manifest = project_manifest("retried", tmp_path / "data", {"configMap": {"name": "repo"}})
    manifest["spec"]["runner"]["backoffLimit"] = 2
    manifest["spec"]["mlflow"].update(trackingUri=mlflow_server.url, requestTimeoutSeconds=30, maxRetries=1)
    projects.create(manifest)
    projects.wait_condition("retried", "Ready", timeout=300)

    def recorded() -> dict[str, Any] | None:
        # A busy MLflow may take the record only on redelivery.
        status = projects.get("retried")["status"]
        return status if status["lastApply"].get("mlflow") and not status.get("pendingAudit") else None

    last = wait_until(recorded, 120, "the apply's run in MLflow")["lastApply"]
    assert (tmp_path / "data" / "first-attempt-done").exists()  # the first attempt did fail
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={last['jobName']}").items
    assert len(pods) == 2, [pod.status.phase for pod in pods]
    [run] = ops_runs(mlflow_server.url, last["auditId"])
    assert last["outcome"] == "Succeeded" and last["mlflow"]["runId"] == run.info.run_id
    assert run.info.status == "FINISHED" and run.data.tags["featurelineage.outcome"] == "succeeded"
    assert run.data.tags["featurelineage.attempts"] == "2"
    assert "featurelineage.error" not in run.data.tags


def test_deleting_a_project_first_delivers_its_pending_audit_record(
    api: client.ApiClient, namespace: str, operator: ChartOperator, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    projects = Projects(api, namespace)
    gate = Gate(mlflow_server.port)
    with serving(gate) as proxy:
        create_example(projects, "leaving", tmp_path, proxy.url)
        status = projects.wait_condition("leaving", "Ready", timeout=300)["status"]
        audit_id = status["lastApply"]["auditId"]
        assert [record["i"] for record in status["pendingAudit"]] == [audit_id]
        projects.custom.delete_namespaced_custom_object(
            "featurelineage.io", "v1alpha1", namespace, "featurestoreprojects", "leaving"
        )
        # Held by its finalizer while MLflow refuses: the operator tries to deliver before it lets go.
        wait_until(lambda: gate.refused >= 2, 60, "delivery attempts during the deletion")
        assert projects.get("leaving")["metadata"].get("deletionTimestamp")
        gate.opened.set()
        wait_until(lambda: gone(projects.get, "leaving"), 120, "the project to be deleted once its record is delivered")
    [run] = ops_runs(mlflow_server.url, audit_id)
    assert run.info.status == "FINISHED" and run.data.tags["k8s.name"] == "leaving"


def test_deleting_a_materialization_job_first_delivers_its_pending_audit_record(
    api: client.ApiClient, namespace: str, operator: ChartOperator, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    projects, custom = Projects(api, namespace), client.CustomObjectsApi(api)
    gate = Gate(mlflow_server.port)
    with serving(gate) as proxy:
        create_example(projects, "drivers", tmp_path, proxy.url)
        projects.wait_condition("drivers", "Ready", timeout=300)
        args = ("featurelineage.io", "v1alpha1", namespace, "materializationjobs")
        custom.create_namespaced_custom_object(*args, range_run_manifest("backfill", "drivers"))

        def finished() -> dict[str, Any] | None:
            status = custom.get_namespaced_custom_object(*args, "backfill").get("status") or {}
            return status if status.get("phase") in ("Succeeded", "Failed") and status.get("pendingAudit") else None

        status = wait_until(finished, 300, "the run to finish with its record pending")
        assert status["phase"] == "Succeeded", status
        audit_id = status["auditId"]
        custom.delete_namespaced_custom_object(*args, "backfill")
        refused = gate.refused
        wait_until(lambda: gate.refused >= refused + 2, 60, "delivery attempts during the deletion")
        assert custom.get_namespaced_custom_object(*args, "backfill")["metadata"].get("deletionTimestamp")
        gate.opened.set()
        wait_until(
            lambda: gone(custom.get_namespaced_custom_object, *args, "backfill"),
            120,
            "the run to be deleted once its record is delivered",
        )
    [delivered] = ops_runs(mlflow_server.url, audit_id)
    assert delivered.info.status == "FINISHED" and delivered.data.tags["k8s.name"] == "backfill"


def resident_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_hostile_tracking_servers_delay_no_other_namespace(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    core, projects = client.CoreV1Api(api), Projects(api, namespace)
    core.create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
    other = f"{namespace[:50]}-other"
    core.create_namespace({"metadata": {"name": other}})
    try:
        neighbours = Projects(api, other)
        core.create_namespaced_config_map(other, repo_configmap("repo", example_files()))
        with serving(trickle_body) as trickling, serving(stream_gibibyte) as streaming:
            for name, url in (("trickled", trickling.url), ("flooded", streaming.url)):
                manifest = project_manifest(name, tmp_path / name, {"configMap": {"name": "repo"}})
                manifest["spec"]["mlflow"]["trackingUri"] = url
                projects.create(manifest)
            trickled = projects.wait_condition("trickled", "Ready", timeout=300)["status"]
            assert trickled.get("pendingAudit"), "the runner's delivery should have run out of time"
            projects.wait_condition("flooded", "Ready", timeout=300)

            def set_aside() -> dict[str, Any] | None:
                status = projects.get("flooded")["status"]
                return status if status.get("undeliverableAudit") else None

            flooded = wait_until(set_aside, 60, "the flooded project's record to be set aside")
            before = resident_mib(operator.pid())
            neighbour = project_manifest("neighbour", tmp_path / "neighbour", {"configMap": {"name": "repo"}})
            neighbours.create(neighbour)
            neighbours.wait_condition("neighbour", "Ready", timeout=300)
            delays = []
            # Redelivery keeps meeting both servers meanwhile (every few seconds).
            for revision in range(3):
                began = time.monotonic()
                neighbours.patch_spec("neighbour", {"runner": {"activeDeadlineSeconds": 600 + revision}})
                generation = neighbours.get("neighbour")["metadata"]["generation"]

                def reconciled(wanted: int = generation) -> bool:
                    return bool(neighbours.get("neighbour")["status"].get("observedGeneration") == wanted)

                wait_until(reconciled, 60, "the neighbour's reconcile", interval=0.1)
                delays.append(time.monotonic() - began)
            after = resident_mib(operator.pid())
            assert projects.get("trickled")["status"].get("pendingAudit")
            print(
                "other namespace reconciled after "
                + ", ".join(f"{delay:.2f}s" for delay in delays)
                + f"; operator memory {before:.0f} -> {after:.0f} MiB; 1 GiB server sent "
                + f"{[round(sent / 2**20) for sent in streaming.sent_bytes]} MiB per connection"
            )
            assert max(delays) < 15
            assert after - before < 100
            [aside] = flooded["undeliverableAudit"]
            assert "byte cap" in aside["reason"] and not flooded.get("pendingAudit"), flooded
    finally:
        core.delete_namespace(other)
