"""FeatureStoreProject end to end: the real operator, control plane, node, Feast and MLflow server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from mlflow.tracking import MlflowClient

from feast_lineage.devcluster.mlflow_server import MlflowServer
from tests.cluster.projects import Projects, example_files, project_manifest, repo_configmap
from tests.cluster_helpers import wait_for_project_resyncs, wait_until
from tests.conftest import Kubectl
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.cluster


def _ops_runs(mlflow_url: str, audit_id: str) -> list[object]:
    mlflow = MlflowClient(mlflow_url)
    experiment = mlflow.get_experiment_by_name("driver_stats-feast-ops")
    if experiment is None:
        return []
    return list(
        mlflow.search_runs([experiment.experiment_id], filter_string=f"tags.`featurelineage.audit_id` = '{audit_id}'")
    )


def test_configmap_project_applies_and_records_the_audit_trail(
    api: client.ApiClient,
    namespace: str,
    operator: ChartOperator,
    mlflow_server: MlflowServer,
    kubectl: Kubectl,
    tmp_path: Path,
) -> None:
    core = client.CoreV1Api(api)
    projects = Projects(api, namespace)
    core.create_namespaced_config_map(namespace, repo_configmap("driver-repo", example_files()))
    manifest = project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "driver-repo"}})
    manifest["metadata"]["annotations"] = {
        "argocd.argoproj.io/tracking-id": "features:featurelineage.io/FeatureStoreProject:ns/drivers"
    }
    projects.create(manifest)

    ready = projects.wait_condition("drivers", "Ready", timeout=180)
    status = ready["status"]
    last = status["lastApply"]
    assert last["outcome"] == "Succeeded" and last["trigger"] == "created"
    assert status["observedGeneration"] == ready["metadata"]["generation"]
    # Changes carry + (created), ~ (updated) or - (deleted); current names are plain.
    assert last["changes"]["featureViews"] == [f"+{view}" for view in sorted(status["featureViews"])]
    assert "driver_hourly_stats" in status["featureViews"]
    assert status["featureServices"] == ["driver_activity_v1", "driver_ranking_v1"]
    # The on-demand view is in the registry, but `feast materialize` leaves it out.
    assert "driver_conversion" in status["featureViews"]
    assert status["materializedFeatureViews"] == ["driver_daily_trips", "driver_hourly_stats"]
    assert [view["name"] for view in status["unmaterializableFeatureViews"]] == ["driver_conversion"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True",
        "Reconciling": "False",
        "Stalled": "False",
        "Applied": "True",
        "SourceAvailable": "True",
    }
    assert all(c["observedGeneration"] == ready["metadata"]["generation"] for c in status["conditions"])

    # The ops run is in MLflow with Kubernetes and GitOps provenance. Ready does not wait for MLflow: a
    # runner whose MLflow call timed out (a loaded machine) leaves its record pending, delivered later.
    def recorded() -> dict[str, Any] | None:
        current = projects.get("drivers")["status"]
        return current["lastApply"] if not current.get("pendingAudit") and current["lastApply"].get("mlflow") else None

    last = wait_until(recorded, 120, "the apply's MLflow run on its status")
    assert last["jobName"] == status["lastApply"]["jobName"]
    runs = _ops_runs(mlflow_server.url, last["auditId"])
    assert len(runs) == 1
    tags = runs[0].data.tags  # type: ignore[attr-defined]
    assert last["mlflow"]["runId"] == runs[0].info.run_id  # type: ignore[attr-defined]
    assert tags["k8s.namespace"] == namespace and tags["k8s.name"] == "drivers"
    assert tags["k8s.uid"] == ready["metadata"]["uid"] and tags["k8s.job"] == last["jobName"]
    assert tags["argocd.tracking_id"].startswith("features:")
    assert tags["featurelineage.trigger"] == "created"
    assert tags["feast.operation"] == "apply" and tags["feast.project"] == "driver_stats"

    table = kubectl("get", "fsp", "-n", namespace).stdout.splitlines()
    assert table[0].split()[:5] == ["NAME", "PROJECT", "READY", "REASON", "REVISION"]
    assert table[1].split()[:5] == ["drivers", "driver_stats", "True", "Applied", last["revision"]]
    # The client config renders auto-logging on and holds no secret.
    client_cm = core.read_namespaced_config_map(status["clientConfigMap"], namespace)
    assert "auto_log: true" in client_cm.data["feature_store.yaml"]
    assert {"Applied", "ApplyStarted"} <= {reason for reason, _ in projects.events("drivers")}

    # An unchanged project is never applied again, however many resyncs pass: three, and a full pass
    # (a settled project's resync asks only Git; every tenth is a full pass).
    jobs = projects.apply_jobs("drivers")
    wait_for_project_resyncs(operator, namespace, "drivers", 3, time.time())
    assert projects.apply_jobs("drivers") == jobs == [last["jobName"]]

    # Changing one feature definition triggers exactly one apply, which names the change.
    files = example_files()
    files["features.py"] = files["features.py"].replace(b"ttl=timedelta(days=1)", b"ttl=timedelta(days=2)", 1)
    assert files["features.py"] != example_files()["features.py"], "the example's first TTL moved"
    core.replace_namespaced_config_map("driver-repo", namespace, repo_configmap("driver-repo", files))

    def reapplied() -> dict[str, Any] | None:
        current = projects.get("drivers")["status"]["lastApply"]
        return current if current["jobName"] != last["jobName"] else None

    second = wait_until(reapplied, 180, "a second apply")
    projects.wait_condition("drivers", "Ready")
    assert second["trigger"] == "repo content changed"
    assert second["changes"] == {"featureViews": ["~driver_hourly_stats"], "featureServices": [], "entities": []}
    assert len(projects.apply_jobs("drivers")) == 2
    assert "feast_lineage_apply_total{" in operator.metrics()


def test_deleting_a_project_removes_what_the_operator_created(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    projects = Projects(api, namespace)
    core.create_namespaced_config_map(namespace, repo_configmap("driver-repo", example_files()))
    projects.create(project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "driver-repo"}}))
    projects.wait_condition("drivers", "Ready", timeout=180)
    projects.custom.delete_namespaced_custom_object(
        "featurelineage.io", "v1alpha1", namespace, "featurestoreprojects", "drivers"
    )

    def children_gone() -> bool:
        configmaps = [cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items]
        jobs = batch.list_namespaced_job(namespace).items
        return not jobs and sorted(configmaps) == ["driver-repo", "kube-root-ca.crt"]

    # The finalizer, then the garbage collector: under a loaded machine this takes more than a minute.
    wait_until(children_gone, 120, "owned ConfigMaps and Jobs to be garbage-collected")
    # The Feast registry is data, not a child: it stays.
    assert (tmp_path / "data" / "registry.db").exists()
