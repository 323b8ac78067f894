"""The runner on real Feast and real files, logging to a real MLflow server."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from feast_lineage import contract
from feast_lineage.audit import AuditRecord, deliver
from feast_lineage.devcluster.mlflow_server import MlflowServer
from feast_lineage.devcluster.processes import free_port
from tests.integration.mlflow_checks import runs_with_audit_id
from tests.integration.runner_setup import PROJECT, PROVENANCE, RunnerWorld, make_world

OPS = f"{PROJECT}-feast-ops"
ALL_CREATED = {
    "featureViews": ["+driver_conversion", "+driver_daily_trips", "+driver_hourly_stats"],
    "featureServices": ["+driver_activity_v1", "+driver_ranking_v1"],
    "entities": ["+driver"],
}
NO_CHANGES: dict[str, list[str]] = {"featureViews": [], "featureServices": [], "entities": []}
RANGE = {
    contract.ENV_MATERIALIZE_MODE: "Range",
    contract.ENV_MATERIALIZE_START: "2026-11-02T00:00:00Z",
    contract.ENV_MATERIALIZE_END: "2026-11-05T00:00:00Z",
}


@pytest.fixture
def world(tmp_path: Path, mlflow_server: MlflowServer) -> RunnerWorld:
    return make_world(tmp_path, mlflow_server.url)


@pytest.fixture
def applied(world: RunnerWorld) -> tuple[RunnerWorld, dict[str, Any], dict[str, str]]:
    code, result, env = world.run("apply")
    assert code == 0, result
    return world, result, env


def _ops_run(world: RunnerWorld, env: dict[str, str]) -> Any:
    assert world.tracking_uri is not None
    [run] = runs_with_audit_id(world.tracking_uri, OPS, env[contract.ENV_AUDIT_ID])
    return run


def test_apply_creates_objects_and_logs_an_ops_run_with_provenance(
    applied: tuple[RunnerWorld, dict[str, Any], dict[str, str]],
) -> None:
    world, result, env = applied
    assert result["ok"] is True and result["operation"] == "apply"
    assert result["changes"] == ALL_CREATED
    assert result["current"] == {
        "featureViews": ["driver_conversion", "driver_daily_trips", "driver_hourly_stats"],
        "featureServices": ["driver_activity_v1", "driver_ranking_v1"],
        "entities": ["driver"],
    }
    # What `feast materialize` takes without names, and what Feast refuses by name.
    assert result["defaultMaterialized"] == ["driver_daily_trips", "driver_hourly_stats"]
    assert result["notMaterializable"] == {
        "driver_conversion": "OnDemandFeatureView driver_conversion is not configured for write_to_online_store."
    }
    run = _ops_run(world, env)
    assert result["mlflow"]["runId"] == run.info.run_id
    assert run.info.status == "FINISHED" and run.info.run_name == f"apply_{PROJECT}"
    assert PROVENANCE.items() <= run.data.tags.items()
    assert run.data.tags["feast.operation"] == "apply"
    assert run.data.tags["feast.project"] == PROJECT
    assert run.data.tags["featurelineage.outcome"] == "succeeded"
    views = "driver_conversion,driver_daily_trips,driver_hourly_stats"
    assert run.data.tags["feast.feature_views_changed"] == run.data.tags["feast.feature_views_created"] == views
    assert run.data.metrics["feast.apply.feature_views_count"] == 3
    assert run.data.metrics["feast.apply.entities_count"] == 1
    assert "featurelineage.duration_sec" in run.data.metrics


def test_a_repeated_apply_reports_no_changes_even_after_a_materialization(
    applied: tuple[RunnerWorld, dict[str, Any], dict[str, str]],
) -> None:
    world, _, _ = applied
    code, again, env = world.run("apply")
    assert (code, again["changes"]) == (0, NO_CHANGES)
    assert world.run("materialize", **RANGE)[0] == 0
    # Feast's own diff reports the materialized views as "Updated" here.
    code, after_materialize, env = world.run("apply")
    assert (code, after_materialize["changes"]) == (0, NO_CHANGES)
    run = _ops_run(world, env)
    assert "feast.feature_views_changed" not in run.data.tags
    assert run.data.metrics["feast.apply.feature_views_count"] == 0


def test_an_online_store_moved_to_a_new_path_gets_its_tables_on_the_next_apply(
    applied: tuple[RunnerWorld, dict[str, Any], dict[str, str]],
) -> None:
    world, _, _ = applied
    config = world.root / "config" / "feature_store.yaml"
    moved = world.root / "data" / "moved_online_store.db"
    config.write_text(config.read_text().replace(str(world.root / "data" / "online_store.db"), str(moved)))
    code, again, _ = world.run("apply")
    # Nothing changed in the registry, yet the new store has every materializable view's table.
    assert (code, again["changes"]) == (0, NO_CHANGES)
    with sqlite3.connect(moved) as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
    assert {"driver_stats_driver_hourly_stats", "driver_stats_driver_daily_trips"} <= tables, tables
    assert world.run("materialize", **RANGE)[0] == 0


def test_changing_one_definition_reports_exactly_that_change(
    applied: tuple[RunnerWorld, dict[str, Any], dict[str, str]],
) -> None:
    world, _, _ = applied
    features = world.repo_dir / "features.py"
    features.write_text(features.read_text().replace("ttl=timedelta(days=7)", "ttl=timedelta(days=8)"))
    code, result, env = world.run("apply")
    assert code == 0, result
    assert result["changes"] == {"featureViews": ["~driver_daily_trips"], "featureServices": [], "entities": []}
    assert _ops_run(world, env).data.tags["feast.feature_views_updated"] == "driver_daily_trips"


def test_a_repo_that_fails_to_import_reports_pythons_last_line(world: RunnerWorld) -> None:
    features = world.repo_dir / "features.py"
    features.write_text(features.read_text().replace('Field(name="acc_rate"', 'Fielld(name="acc_rate"'))
    # As the Job's container runs it: the real command, its exit code, stdout and termination message.
    env = world.env("apply")
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "feast-lineage"), "runner", "apply"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 1, completed.stderr[-2000:]
    last_line = completed.stdout.strip().splitlines()[-1]
    assert json.loads(last_line) == json.loads(world.result_path.read_text())
    result = json.loads(last_line)
    assert result["ok"] is False
    assert result["error"] == "feature repo failed to import: NameError: name 'Fielld' is not defined"
    run = _ops_run(world, env)
    assert run.info.status == "FAILED"
    assert run.data.tags["featurelineage.outcome"] == "failed"
    assert run.data.tags["featurelineage.error"] == result["error"]


def test_an_unknown_online_store_type_is_named(tmp_path: Path) -> None:
    world = make_world(tmp_path, None, online_store_type="nosuchstore")
    code, result, _ = world.run("apply")
    assert code == 1 and result["ok"] is False
    assert result["error"].startswith("feature_store.yaml is invalid: unknown online store type 'nosuchstore'")
    assert "sqlite" in result["error"] and "\n" not in result["error"]


def test_range_materialization_serves_the_values_online(
    applied: tuple[RunnerWorld, dict[str, Any], dict[str, str]],
) -> None:
    import pandas as pd
    from feast import FeatureStore

    world, _, _ = applied
    window = {**RANGE, contract.ENV_MATERIALIZE_END: "2026-11-09T00:00:00Z"}
    code, result, env = world.run("materialize", **window)
    assert code == 0, result
    assert (result["windowStart"], result["windowEnd"]) == ("2026-11-02T00:00:00Z", "2026-11-09T00:00:00Z")
    assert sorted(result["featureViews"]) == ["driver_daily_trips", "driver_hourly_stats"]
    data = pd.read_parquet(world.repo_dir / "driver_stats.parquet").sort_values("event_timestamp")
    latest = data.groupby("driver_id").last()
    store = FeatureStore(repo_path=str(world.checked_out))
    online = store.get_online_features(
        features=["driver_hourly_stats:conv_rate", "driver_daily_trips:avg_daily_trips"],
        entity_rows=[{"driver_id": 1001}, {"driver_id": 1003}],
    ).to_dict()
    assert online["conv_rate"] == pytest.approx([float(latest.loc[d, "conv_rate"]) for d in (1001, 1003)])
    assert online["avg_daily_trips"] == [int(latest.loc[d, "avg_daily_trips"]) for d in (1001, 1003)]
    run = _ops_run(world, env)
    assert run.info.run_name == f"materialize_{PROJECT}"
    assert run.data.params["feast.materialize.start_date"] == "2026-11-02T00:00:00Z"
    assert run.data.tags["feast.materialize.end_date"] == "2026-11-09T00:00:00Z"
    assert "feast.materialize.duration_sec" in run.data.metrics
    # Rows as the online store received them: at most one per source row of the window, for each view.
    in_window = data[data["event_timestamp"] >= pd.Timestamp("2026-11-02T00:00:00Z")]
    rows = result["rowsWritten"]
    assert set(rows) == {"driver_daily_trips", "driver_hourly_stats"}
    assert all(0 < count <= len(in_window) for count in rows.values()), rows
    assert run.data.metrics["featurelineage.rows_written"] == sum(rows.values())
    assert all(run.data.metrics[f"featurelineage.rows_written.{view}"] == count for view, count in rows.items())


def test_incremental_after_range_starts_where_the_range_ended(
    applied: tuple[RunnerWorld, dict[str, Any], dict[str, str]],
) -> None:
    world, _, _ = applied
    assert world.run("materialize", **RANGE)[0] == 0
    code, result, env = world.run(
        "materialize",
        **{contract.ENV_MATERIALIZE_MODE: "Incremental", contract.ENV_MATERIALIZE_END: "2026-11-09T00:00:00Z"},
    )
    assert code == 0, result
    assert (result["windowStart"], result["windowEnd"]) == ("2026-11-05T00:00:00Z", "2026-11-09T00:00:00Z")
    run = _ops_run(world, env)
    assert run.info.run_name == f"materialize_incremental_{PROJECT}"
    assert run.data.tags["feast.operation"] == "materialize_incremental"
    assert run.data.tags["feast.materialize.start_date"] == "2026-11-05T00:00:00Z"


def test_a_failed_materialization_is_logged_as_a_failed_run(
    applied: tuple[RunnerWorld, dict[str, Any], dict[str, str]],
) -> None:
    world, _, _ = applied
    (world.repo_dir / "driver_stats.parquet").unlink()
    code, result, env = world.run("materialize", **RANGE)
    assert code == 1 and result["ok"] is False
    assert result["error"].startswith("feast materialize failed: ")
    assert "driver_stats.parquet" in result["error"]
    assert result["windowStart"] == "2026-11-02T00:00:00Z"
    run = _ops_run(world, env)
    assert run.info.status == "FAILED"
    assert run.data.tags["featurelineage.error"] == result["error"]


def test_unknown_feature_views_and_bad_windows_are_bad_input(
    applied: tuple[RunnerWorld, dict[str, Any], dict[str, str]],
) -> None:
    world, _, _ = applied
    code, result, env = world.run("materialize", **RANGE, **{contract.ENV_FEATURE_VIEWS: "driver_hourly_stats,nope"})
    assert code == 2 and result["error"] == f"feature view(s) not in project {PROJECT}: nope"
    assert _ops_run(world, env).info.status == "FAILED"
    code, result, _ = world.run("materialize", **RANGE, **{contract.ENV_FEATURE_VIEWS: "driver_conversion"})
    assert (code, result["error"]) == (
        2,
        "feature view cannot be materialized: OnDemandFeatureView driver_conversion is not configured for "
        "write_to_online_store.",
    )
    backwards = {**RANGE, contract.ENV_MATERIALIZE_START: "2026-11-06T00:00:00Z"}
    code, result, _ = world.run("materialize", **backwards)
    assert code == 2 and "ends before it starts" in result["error"]
    code, result, _ = world.run("materialize", **{**RANGE, contract.ENV_MATERIALIZE_END: "2999-01-01T00:00:00Z"})
    assert code == 2 and "in the future" in result["error"]
    # Never materialized, so Feast would start at now - ttl (7 days), after this end: an empty window.
    long_ago = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    code, result, _ = world.run(
        "materialize", **{contract.ENV_MATERIALIZE_MODE: "Incremental", contract.ENV_MATERIALIZE_END: long_ago}
    )
    assert code == 2 and result["error"].startswith("incremental window is empty")
    code, result, _ = world.run("materialize", **{contract.ENV_REPO_KIND: ""})
    assert code == 2 and contract.ENV_REPO_KIND in result["error"]


def test_mlflow_down_does_not_hold_up_apply_and_the_audit_is_delivered_later(
    tmp_path: Path, mlflow_server: MlflowServer
) -> None:
    world = make_world(tmp_path, f"http://127.0.0.1:{free_port()}")
    world.env_overrides = {contract.MLFLOW_ENV_TIMEOUT: "2", contract.MLFLOW_ENV_MAX_RETRIES: "1"}
    began = time.monotonic()
    code, result, env = world.run("apply")
    elapsed = time.monotonic() - began
    assert code == 0 and result["ok"] is True and result["changes"] == ALL_CREATED
    assert "unreachable" in result["mlflowError"] and "mlflow" not in result
    assert elapsed < 60, "apply itself takes seconds; MLflow's default client would take ~250 s"
    record = AuditRecord.from_compact(result["audit"])
    assert record.id == env[contract.ENV_AUDIT_ID] and record.status == "FINISHED"
    assert PROVENANCE.items() <= record.tags.items()
    # The operator delivers it once MLflow is reachable; doing so twice still leaves one run.
    first = deliver(record, mlflow_server.url)
    assert deliver(record, mlflow_server.url) == first
    [run] = runs_with_audit_id(mlflow_server.url, OPS, record.id)
    assert run.info.run_id == first.run_id and run.data.tags["feast.entities_changed"] == "driver"


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_a_git_source_checks_out_the_given_commit(world: RunnerWorld, tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "feature_repo").mkdir(parents=True)
    for name in ("features.py", "driver_stats.parquet"):
        (work / "feature_repo" / name).write_bytes((world.repo_dir / name).read_bytes())
    _git(work, "init", "-q", "-b", "main")
    _git(work, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", ".")
    _git(work, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "first")
    first = _git(work, "rev-parse", "HEAD")
    # A later commit drops the feature services; checking out the first one must still have them.
    features = work / "feature_repo" / "features.py"
    features.write_text(features.read_text().split("driver_activity_v1 = ")[0])
    _git(work, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-am", "second")
    second = _git(work, "rev-parse", "HEAD")
    bare = tmp_path / "remote.git"
    _git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    git_env = {
        contract.ENV_REPO_KIND: "git",
        contract.ENV_REPO_DIR: "",
        contract.ENV_GIT_URL: bare.as_uri(),
        contract.ENV_GIT_REVISION: "main",
        contract.ENV_GIT_PATH: "feature_repo",
        # As an operator would set it when an administrator allows file:// (here: a local bare repo).
        contract.ENV_GIT_ALLOW_PROTOCOL: "file",
    }
    refused_code, refused, _ = world.run(
        "apply", **{**git_env, contract.ENV_GIT_ALLOW_PROTOCOL: "https"}, **{contract.ENV_GIT_COMMIT: first}
    )
    assert refused_code != 0 and "transport 'file' not allowed" in refused["error"]
    code, result, env = world.run("apply", **git_env, **{contract.ENV_GIT_COMMIT: first})
    assert code == 0, result
    assert result["gitCommit"] == first
    assert result["current"]["featureServices"] == ["driver_activity_v1", "driver_ranking_v1"]
    assert _ops_run(world, env).data.tags["featurelineage.git.commit"] == first
    code, result, _ = world.run("apply", **git_env)
    assert (code, result["gitCommit"]) == (0, second)
    assert result["changes"]["featureServices"] == ["-driver_activity_v1", "-driver_ranking_v1"]
    assert result["changes"]["featureViews"] == ["-driver_conversion"]
