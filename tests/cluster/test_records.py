"""What ran is exactly what is recorded: revisions, apply links, run names, every outcome, rows.

Real operator, node, Feast and MLflow; MLflow runs are found by their Kubernetes tags.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from feast_lineage.contract import repo_digest
from feast_lineage.devcluster.mlflow_server import MlflowServer
from tests.cluster.projects import Projects, example_files, project_manifest, repo_configmap
from tests.cluster.test_materialization import Runs
from tests.cluster.test_metrics import project_samples
from tests.cluster_helpers import wait_until
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.cluster

EXPERIMENT = "driver_stats-feast-ops"


def _ready_project(api: client.ApiClient, namespace: str, data: Path) -> dict[str, Any]:
    client.CoreV1Api(api).create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
    Projects(api, namespace).create(project_manifest("drivers", data, {"configMap": {"name": "repo"}}))
    return Projects(api, namespace).wait_condition("drivers", "Ready", timeout=240)


def _runs_of(mlflow_server: MlflowServer, namespace: str, name: str) -> list[Run]:
    mlflow = MlflowClient(mlflow_server.url)
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    return list(
        mlflow.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.`k8s.namespace` = '{namespace}' and tags.`k8s.name` = '{name}'",
        )
    )


def _one_run(mlflow_server: MlflowServer, namespace: str, name: str) -> Run:
    """The MLflow run of a resource, once it is there; exactly one."""
    runs = wait_until(lambda: _runs_of(mlflow_server, namespace, name), 240, f"the MLflow run of {name}")
    assert len(runs) == 1, [(r.info.run_id, r.info.run_name) for r in runs]
    return runs[0]


def _snapshot_files(config_map: Any) -> dict[str, bytes]:
    files = {key: value.encode() for key, value in (config_map.data or {}).items()}
    files.update({key: base64.b64decode(value) for key, value in (config_map.binary_data or {}).items()})
    return files


def _names_run(runs: Runs, name: str, run_id: str) -> Callable[[], bool]:
    return lambda: (runs.status(name).get("mlflow") or {}).get("runId") == run_id


# Two applies and a run, one after another (a file registry takes one writer at a time).
@pytest.mark.timeout(1200)
def test_a_run_started_as_the_repo_changes_uses_and_records_the_applied_revision(
    api: client.ApiClient, namespace: str, operator: ChartOperator, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    project = _ready_project(api, namespace, tmp_path / "data")
    first = project["status"]["lastSuccessfulApply"]
    original = example_files()
    assert first["revision"] == f"configmap/repo@{repo_digest(original)[:12]}"

    # Edit the repo, and start a run at once.
    edited = {**original, "NOTES.md": b"edited after the apply\n"}
    core.replace_namespaced_config_map("repo", namespace, repo_configmap("repo", edited))
    runs = Runs(api, namespace)
    runs.create("right-after", mode="Range", startTime="2026-11-02T00:00:00Z", endTime="2026-11-03T00:00:00Z")
    done = runs.wait_phase("right-after", "Succeeded", "Failed", timeout=480)
    assert done["phase"] == "Succeeded", done

    # Whichever apply it ran after, it mounted the immutable snapshot of exactly the revision it records.
    job = batch.read_namespaced_job("right-after-materialize", namespace)
    mounted = next(v.config_map.name for v in job.spec.template.spec.volumes if v.name == "repo")
    assert mounted != "repo"
    snapshot = core.read_namespaced_config_map(mounted, namespace)
    assert snapshot.immutable is True
    assert [(o.uid, o.controller) for o in snapshot.metadata.owner_references] == [(project["metadata"]["uid"], True)]
    content = _snapshot_files(snapshot)
    assert content in (original, edited)
    assert done["revision"] == f"configmap/repo@{repo_digest(content)[:12]}"

    # The MLflow run says the same, and links to the apply of that revision.
    projects = Projects(api, namespace)
    applied = projects.get("drivers")["status"]["lastSuccessfulApply"]
    tags = _one_run(mlflow_server, namespace, "right-after").data.tags
    assert tags["featurelineage.revision"] == done["revision"]
    assert tags["featurelineage.apply.audit_id"] == done["applyAuditId"]
    assert tags["featurelineage.apply.job"] == done["applyJob"]
    if done["revision"] == first["revision"]:
        assert done["applyAuditId"] == first["auditId"] and done["applyRunId"] == first["mlflow"]["runId"]
    # The apply's run id is linked when it was known as the run started (MLflow may have taken the
    # apply's record later); the audit id always is.
    assert tags.get("featurelineage.apply.run_id") == done.get("applyRunId")

    # The next apply records the new content, in status and in its own MLflow run.
    new_revision = f"configmap/repo@{repo_digest(edited)[:12]}"

    def new_apply_logged() -> dict[str, Any] | None:
        # Its MLflow run is in status once the runner, or the operator's redelivery, delivered it.
        applied = projects.get("drivers")["status"].get("lastSuccessfulApply") or {}
        return applied if applied.get("revision") == new_revision and applied.get("mlflow") else None

    applied = wait_until(new_apply_logged, 300, "the edited repo to be applied and logged")
    apply_run = MlflowClient(mlflow_server.url).get_run(applied["mlflow"]["runId"])
    assert apply_run.data.tags["featurelineage.revision"] == new_revision
    assert core.read_namespaced_config_map(applied["snapshot"], namespace).immutable is True


def test_every_terminal_reason_is_one_mlflow_run_and_one_count(
    api: client.ApiClient, namespace: str, operator: ChartOperator, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    _ready_project(api, namespace, tmp_path / "data")
    runs = Runs(api, namespace)
    window = {"mode": "Range", "startTime": "2026-11-02T00:00:00Z", "endTime": "2026-11-03T00:00:00Z"}
    runs.create("ok", **window)
    runs.create("unknown-view", **window, featureViews=["no_such_view"])
    runs.create("future", mode="Range", startTime="2026-11-02T00:00:00Z", endTime="2099-01-01T00:00:00Z")
    # One second is over before the runner has imported Feast: the Job's deadline ends it.
    runs.create("deadline", **window, activeDeadlineSeconds=1)
    # After "ok", the views' last materialized end is 2026-11-03: an incremental run ending earlier
    # is refused by the runner, and the run fails.
    runs.create("too-early", mode="Incremental", endTime="2026-11-01T00:00:00Z")
    expected = {
        "ok": "Succeeded",
        "unknown-view": "UnknownFeatureView",
        "future": "InvalidWindow",
        "deadline": "DeadlineExceeded",
        "too-early": "MaterializationFailed",
    }
    for name, reason in expected.items():
        status = runs.wait_phase(name, "Succeeded", "Failed", timeout=480)
        assert status["reason"] == reason, (name, status)

    for name, reason in expected.items():
        run = _one_run(mlflow_server, namespace, name)
        assert run.data.tags["featurelineage.reason"] == reason, name
        assert run.info.status == ("FINISHED" if reason == "Succeeded" else "FAILED"), name
        assert run.data.tags["featurelineage.revision"].startswith("configmap/repo@"), name
        if reason != "Succeeded":
            assert run.data.tags["featurelineage.error"], name
        # Status names the same run, once a record the operator kept is delivered.
        wait_until(_names_run(runs, name, run.info.run_id), 120, f"status of {name} to name its MLflow run")

    def counted() -> dict[str, float] | None:
        counts = {
            labels["outcome"]: value
            for metric, labels, value in project_samples(operator, namespace)
            if metric == "feast_lineage_materialization_total"
        }
        return counts if sum(counts.values()) >= len(expected) else None

    assert wait_until(counted, 60, "every run counted") == {"succeeded": 1.0, "failed": 4.0}


def test_two_namespaces_with_one_feast_project_write_runs_told_apart(
    api: client.ApiClient, namespace: str, operator: ChartOperator, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    core = client.CoreV1Api(api)
    other = f"{namespace[:50]}-b"
    core.create_namespace({"metadata": {"name": other}})
    try:
        wait_until(
            lambda: any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(other).items),
            30,
            f"default ServiceAccount in {other}",
        )
        for where, data in ((namespace, tmp_path / "a"), (other, tmp_path / "b")):
            _ready_project(api, where, data)
            Runs(api, where).create(
                "backfill", mode="Range", startTime="2026-11-02T00:00:00Z", endTime="2026-11-03T00:00:00Z"
            )
        for where in (namespace, other):
            assert Runs(api, where).wait_phase("backfill", "Succeeded", "Failed", timeout=480)["phase"] == "Succeeded"

        names, experiments = set(), set()
        for where in (namespace, other):
            for resource in ("drivers", "backfill"):
                run = _one_run(mlflow_server, where, resource)
                assert run.data.tags["k8s.namespace"] == where
                assert f"@{where}/{resource}" in run.info.run_name
                names.add(run.info.run_name)
                experiments.add(run.info.experiment_id)
        assert len(names) == 4 and len(experiments) == 1
    finally:
        core.delete_namespace(other)


def test_a_window_without_data_reports_zero_rows_and_warns(
    api: client.ApiClient, namespace: str, operator: ChartOperator, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    _ready_project(api, namespace, tmp_path / "data")
    runs = Runs(api, namespace)
    runs.create("with-data", mode="Range", startTime="2026-11-02T00:00:00Z", endTime="2026-11-03T00:00:00Z")
    runs.create("empty", mode="Range", startTime="2020-01-01T00:00:00Z", endTime="2020-01-02T00:00:00Z")
    full = runs.wait_phase("with-data", "Succeeded", "Failed", timeout=480)
    empty = runs.wait_phase("empty", "Succeeded", "Failed", timeout=480)
    assert full["phase"] == empty["phase"] == "Succeeded", (full, empty)

    rows = {entry["featureView"]: entry["rows"] for entry in full["rowsWritten"]}
    assert set(rows) == set(full["featureViews"]) and all(count > 0 for count in rows.values()), rows
    assert {entry["featureView"]: entry["rows"] for entry in empty["rowsWritten"]} == dict.fromkeys(rows, 0)

    warnings = wait_until(
        lambda: [m for reason, m in Projects(api, namespace).events("empty") if reason == "NoRowsWritten"],
        30,
        "the NoRowsWritten Warning",
    )
    assert len(warnings) == 1 and all(view in warnings[0] for view in rows), warnings
    assert not [reason for reason, _ in Projects(api, namespace).events("with-data") if reason == "NoRowsWritten"]

    metrics = _one_run(mlflow_server, namespace, "empty").data.metrics
    assert metrics["featurelineage.rows_written"] == 0
    assert all(metrics[f"featurelineage.rows_written.{view}"] == 0 for view in rows)
    full_metrics = _one_run(mlflow_server, namespace, "with-data").data.metrics
    assert full_metrics["featurelineage.rows_written"] == sum(rows.values())
