"""MaterializationJob end to end: real operator, node, Feast and MLflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from mlflow.tracking import MlflowClient

from feast_lineage.devcluster.mlflow_server import MlflowServer
from feast_lineage.domain.labels import LABEL_SETTLED
from tests.cluster.projects import EXAMPLE_REPO, Projects, example_files, project_manifest, repo_configmap
from tests.cluster_helpers import finished_after, job_running, wait_for_project_resyncs, wait_until
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.cluster

GROUP, VERSION, PLURAL = "featurelineage.io", "v1alpha1", "materializationjobs"


class Runs:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)
        self.namespace = namespace

    def create(self, name: str, **spec: Any) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "MaterializationJob",
            "metadata": {"name": name},
            "spec": {"projectRef": {"name": "drivers"}, **spec},
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body)

    def get(self, name: str) -> dict[str, Any]:
        return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name))

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def wait_phase(self, name: str, *phases: str, timeout: float = 180) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            status = self.status(name)
            return status if status.get("phase") in phases else None

        try:
            return wait_until(finished, timeout, f"{name} {phases}")
        except AssertionError as error:
            raise AssertionError(f"{error}; status now: {self.status(name)}") from None

    def jobs(self) -> list[str]:
        items = self.batch.list_namespaced_job(self.namespace, label_selector="featurelineage.io/operation=materialize")
        return sorted(job.metadata.name for job in items.items)


@pytest.fixture
def applied(api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path) -> Path:
    """The example project, applied; returns its data directory (registry and online store)."""
    client.CoreV1Api(api).create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
    data = tmp_path / "data"
    Projects(api, namespace).create(project_manifest("drivers", data, {"configMap": {"name": "repo"}}))
    Projects(api, namespace).wait_condition("drivers", "Ready", timeout=180)
    return data


def _online_conv_rate(data: Path, tmp_path: Path, driver_id: int) -> object:
    """Read the online store the way a serving client would."""
    from feast import FeatureStore

    repo = tmp_path / "client-repo"
    shutil.copytree(EXAMPLE_REPO, repo, dirs_exist_ok=True)
    (repo / "feature_store.yaml").write_text(
        "project: driver_stats\nprovider: local\nentity_key_serialization_version: 3\n"
        f"registry: {data}/registry.db\nonline_store:\n  type: sqlite\n  path: {data}/online_store.db\n"
        "offline_store:\n  type: file\n"
    )
    store = FeatureStore(repo_path=str(repo))
    rows = store.get_online_features(
        features=["driver_hourly_stats:conv_rate"], entity_rows=[{"driver_id": driver_id}]
    ).to_dict()
    return rows["conv_rate"][0]


def test_range_then_incremental_materialize_with_provenance_and_a_rerun(
    api: client.ApiClient,
    namespace: str,
    applied: Path,
    mlflow_server: MlflowServer,
    tmp_path: Path,
    operator: ChartOperator,
) -> None:
    runs = Runs(api, namespace)
    runs.create("backfill", mode="Range", startTime="2026-11-02T00:00:00Z", endTime="2026-11-05T00:00:00Z")
    done = runs.wait_phase("backfill", "Succeeded", "Failed")
    assert done["phase"] == "Succeeded", done
    assert done["window"] == {"start": "2026-11-02T00:00:00Z", "end": "2026-11-05T00:00:00Z"}
    # All of them, as `feast materialize` takes them: the on-demand view is not one.
    assert sorted(done["featureViews"]) == ["driver_daily_trips", "driver_hourly_stats"]
    assert done["provenance"]["triggeredBy"] == "manual"
    assert done["provenance"]["manager"]
    assert done["durationSeconds"] > 0 and done["completionTime"]
    assert {c["type"]: c["status"] for c in done["conditions"]} == {
        "Ready": "True",
        "Reconciling": "False",
        "Stalled": "False",
    }
    assert _online_conv_rate(applied, tmp_path, 1001) is not None

    run = MlflowClient(mlflow_server.url).get_run(done["mlflow"]["runId"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["feast.operation"] == "materialize"
    assert run.data.tags["k8s.kind"] == "MaterializationJob" and run.data.tags["k8s.name"] == "backfill"
    assert run.data.tags["k8s.namespace"] == namespace
    assert run.data.tags["feast.materialize.start_date"].startswith("2026-11-02")
    assert "driver_hourly_stats" in run.data.tags["feast.materialize.feature_views"]

    events = Projects(api, namespace).events("backfill")
    assert ("JobCreated", "starting the materialize Job") in events and ("Succeeded", "materialized") in events
    project = Projects(api, namespace).get("drivers")["status"]
    assert project["lastMaterialization"]["name"] == "backfill"
    assert project["lastMaterialization"]["phase"] == "Succeeded"

    runs.create("catch-up", mode="Incremental", endTime="2026-11-09T00:00:00Z")
    incremental = runs.wait_phase("catch-up", "Succeeded", "Failed")
    assert incremental["phase"] == "Succeeded", incremental
    # It picks up where the backfill ended.
    assert incremental["window"] == {"start": "2026-11-05T00:00:00Z", "end": "2026-11-09T00:00:00Z"}
    assert runs.jobs() == ["backfill-materialize", "catch-up-materialize"]
    assert MlflowClient(mlflow_server.url).get_run(incremental["mlflow"]["runId"]).data.tags["feast.operation"] == (
        "materialize_incremental"
    )

    # The documented re-run: a new object over exactly the window the first run had, linked to it.
    rerun = subprocess.run(
        [str(Path(sys.executable).parent / "feast-lineage"), "rerun", "mj/catch-up", "-n", namespace],
        env={**os.environ, "KUBECONFIG": str(operator.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "catch-up-rerun-1 created (re-run of catch-up)" in rerun.stdout
    again = runs.wait_phase("catch-up-rerun-1", "Succeeded", "Failed")
    assert again["phase"] == "Succeeded", again
    assert again["window"] == incremental["window"] and again["provenance"]["rerunOf"] == "catch-up"
    assert runs.get("catch-up-rerun-1")["spec"]["mode"] == "Range"
    tags = MlflowClient(mlflow_server.url).get_run(again["mlflow"]["runId"]).data.tags
    assert tags["featurelineage.rerun_of"] == "catch-up"


def test_failed_materialization_reports_the_reason_and_logs_a_failed_run(
    api: client.ApiClient, namespace: str, operator: ChartOperator, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    # A repo without its offline data: `feast apply` does not read it, materialize cannot.
    files = {k: v for k, v in example_files().items() if not k.endswith(".parquet")}
    client.CoreV1Api(api).create_namespaced_config_map(namespace, repo_configmap("repo", files))
    Projects(api, namespace).create(project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}}))
    Projects(api, namespace).wait_condition("drivers", "Ready", timeout=180)
    runs = Runs(api, namespace)
    runs.create("doomed", mode="Range", startTime="2026-11-02T00:00:00Z", endTime="2026-11-03T00:00:00Z")
    failed = runs.wait_phase("doomed", "Succeeded", "Failed")
    assert failed["phase"] == "Failed" and failed["reason"] == "MaterializationFailed"
    assert "driver_stats.parquet" in failed["message"] and "\n" not in failed["message"]
    assert next(c for c in failed["conditions"] if c["type"] == "Stalled")["status"] == "True"
    run = MlflowClient(mlflow_server.url).get_run(failed["mlflow"]["runId"])
    assert run.info.status == "FAILED" and run.data.tags["featurelineage.outcome"] == "failed"


def test_runs_wait_for_their_project_and_for_each_other(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    runs = Runs(api, namespace)
    runs.create("early", mode="Range", startTime="2026-11-02T00:00:00Z", endTime="2026-11-03T00:00:00Z")
    waiting = wait_until(lambda: runs.status("early").get("waitingFor"), 30, "early to wait")
    assert waiting == "FeatureStoreProject drivers not found"
    # The project arrives later (GitOps may sync in any order); two runs on one view then queue.
    client.CoreV1Api(api).create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
    Projects(api, namespace).create(project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}}))
    runs.create(
        "second",
        mode="Range",
        startTime="2026-11-03T00:00:00Z",
        endTime="2026-11-04T00:00:00Z",
        featureViews=["driver_hourly_stats"],
    )
    second_wait = wait_until(
        lambda: (w := runs.status("second").get("waitingFor")) and "MaterializationJob early" in w and w,
        240,
        "second to wait for early",
    )
    assert second_wait == "MaterializationJob early (feature views driver_hourly_stats)"
    first = runs.wait_phase("early", "Succeeded", "Failed", timeout=240)
    second = runs.wait_phase("second", "Succeeded", "Failed", timeout=240)
    assert first["phase"] == second["phase"] == "Succeeded"
    # Never at the same time: the second started after the first completed.
    assert second["startTime"] >= first["completionTime"]


def test_bad_runs_fail_with_a_clear_message(
    api: client.ApiClient, namespace: str, applied: Path, operator: ChartOperator
) -> None:
    runs = Runs(api, namespace)
    runs.create(
        "unknown-view",
        mode="Range",
        startTime="2026-11-02T00:00:00Z",
        endTime="2026-11-03T00:00:00Z",
        featureViews=["nope"],
    )
    runs.create("future", mode="Range", startTime="2026-11-02T00:00:00Z", endTime="2099-01-01T00:00:00Z")
    runs.create(
        "on-demand",
        mode="Range",
        startTime="2026-11-02T00:00:00Z",
        endTime="2026-11-03T00:00:00Z",
        featureViews=["driver_conversion"],
    )
    unknown = runs.wait_phase("unknown-view", "Failed", "Succeeded", timeout=60)
    assert (unknown["reason"], unknown["message"]) == (
        "UnknownFeatureView",
        "feature view(s) not in project drivers: nope",
    )
    on_demand = runs.wait_phase("on-demand", "Failed", "Succeeded", timeout=60)
    assert (on_demand["reason"], on_demand["message"]) == (
        "FeatureViewNotMaterializable",
        "Feast cannot materialize driver_conversion "
        "(OnDemandFeatureView driver_conversion is not configured for write_to_online_store.)",
    )
    future = runs.wait_phase("future", "Failed", "Succeeded", timeout=60)
    assert future["reason"] == "InvalidWindow" and "ends in the future" in future["message"]
    assert runs.jobs() == []
    # Finished runs stay as they are: never re-run, never deleted by the operator. It is done with them
    # once they carry the settled label (they leave its watch); its project's resyncs go on.
    names = ("unknown-view", "future", "on-demand")

    def settled() -> bool:
        return all(LABEL_SETTLED in (runs.get(name)["metadata"].get("labels") or {}) for name in names)

    wait_until(settled, 120, "the operator to label the finished runs settled")
    wait_for_project_resyncs(operator, namespace, "drivers", 2, time.time())
    for name in names:
        assert runs.status(name)["phase"] == "Failed" and runs.get(name)["metadata"].get("deletionTimestamp") is None
    assert runs.jobs() == []


def test_operator_restarted_mid_run_makes_no_duplicate_and_the_run_finishes(
    api: client.ApiClient, namespace: str, applied: Path, operator: ChartOperator
) -> None:
    runs = Runs(api, namespace)
    runs.create("survivor", mode="Range", startTime="2026-11-02T00:00:00Z", endTime="2026-11-04T00:00:00Z")
    wait_until(lambda: runs.jobs(), 60, "the materialize Job")
    wait_until(lambda: job_running(api, namespace, "survivor-materialize"), 60, "the materialize Job to run")
    killed = operator.kill()
    assert job_running(api, namespace, "survivor-materialize"), "the run ended before the operator was killed"
    operator.start()
    done = runs.wait_phase("survivor", "Succeeded", "Failed")
    assert done["phase"] == "Succeeded" and runs.jobs() == ["survivor-materialize"]
    assert finished_after(api, namespace, "survivor-materialize", killed)


def test_deleting_a_run_deletes_its_job(api: client.ApiClient, namespace: str, applied: Path) -> None:
    runs = Runs(api, namespace)
    runs.create("short-lived", mode="Range", startTime="2026-11-02T00:00:00Z", endTime="2026-11-03T00:00:00Z")
    runs.wait_phase("short-lived", "Succeeded", "Failed")
    runs.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "short-lived")
    wait_until(lambda: runs.jobs() == [], 60, "the Job to be garbage-collected")


def test_deleting_a_project_removes_what_it_owns_and_keeps_runs_and_data(
    api: client.ApiClient, namespace: str, applied: Path
) -> None:
    runs = Runs(api, namespace)
    runs.create("kept", mode="Range", startTime="2026-11-02T00:00:00Z", endTime="2026-11-03T00:00:00Z")
    runs.wait_phase("kept", "Succeeded", "Failed")
    projects = Projects(api, namespace)
    assert projects.apply_jobs("drivers"), "an apply Job exists before the deletion"
    projects.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "featurestoreprojects", "drivers")
    core = client.CoreV1Api(api)

    def owned_gone() -> bool:
        names = {cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items}
        return not ({"drivers-runner-config", "drivers-client-config"} & names) and projects.apply_jobs("drivers") == []

    # The finalizer first delivers any pending audit record, then the garbage collector works: minutes
    # on a loaded machine.
    wait_until(owned_gone, 240, "the project's ConfigMaps and apply Jobs to be garbage-collected")
    # A run created by hand names the project; it is not owned by it, nor is Feast's data.
    assert runs.get("kept")["status"]["phase"] == "Succeeded"
    assert runs.jobs() == ["kept-materialize"]
    assert (applied / "registry.db").exists() and (applied / "online_store.db").exists()


def test_active_deadline_stops_the_run_and_says_so(api: client.ApiClient, namespace: str, applied: Path) -> None:
    runs = Runs(api, namespace)
    runs.create(
        "too-slow",
        mode="Range",
        startTime="2026-11-02T00:00:00Z",
        endTime="2026-11-09T00:00:00Z",
        activeDeadlineSeconds=1,
    )
    failed = runs.wait_phase("too-slow", "Failed", "Succeeded")
    assert (failed["phase"], failed["reason"]) == ("Failed", "DeadlineExceeded")
    assert failed["message"].startswith("deadline exceeded") and "\n" not in failed["message"]
    job = runs.batch.read_namespaced_job("too-slow-materialize", namespace)
    assert job.spec.active_deadline_seconds == 1 and job.spec.backoff_limit == 0
