"""Pure parts of the runner: window, change diff, result size, settings, ConfigMap copying."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feast_lineage import contract
from feast_lineage.contract import ObjectChanges, RunnerResult
from feast_lineage.runner.changes import Snapshot, as_object_changes, current_names, diff
from feast_lineage.runner.errors import BadInput
from feast_lineage.runner.fetch import copy_configmap_files
from feast_lineage.runner.result_size import fit_result
from feast_lineage.runner.settings import read_settings
from feast_lineage.runner.window import ViewHistory, incremental_start, parse_time, range_window

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_parse_time_reads_rfc3339_as_utc() -> None:
    assert parse_time("2026-11-02T00:00:00Z", "start") == datetime(2026, 11, 2, tzinfo=UTC)
    assert parse_time("2026-11-02T02:00:00+02:00", "start") == datetime(2026, 11, 2, tzinfo=UTC)
    with pytest.raises(BadInput, match="start is not an RFC 3339"):
        parse_time("yesterday", "start")


def test_range_window_rejects_empty_and_future_windows() -> None:
    start, end = datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 9, tzinfo=UTC)
    assert range_window(start, end, NOW) == (start, end)
    with pytest.raises(BadInput, match="ends before it starts"):
        range_window(end, start, NOW)
    with pytest.raises(BadInput, match="ends before it starts"):
        range_window(start, start, NOW)
    with pytest.raises(BadInput, match="in the future"):
        range_window(start, NOW + timedelta(hours=1), NOW)


def test_incremental_start_is_the_earliest_of_feasts_per_view_starts() -> None:
    views = [
        ViewHistory("a", datetime(2026, 11, 5, tzinfo=UTC), timedelta(days=1)),
        ViewHistory("b", None, timedelta(days=30)),
        ViewHistory("c", None, None),  # Feast itself refuses this one
    ]
    assert incremental_start(views, NOW) == NOW - timedelta(days=30)
    assert incremental_start(views[:1], NOW) == datetime(2026, 11, 5, tzinfo=UTC)
    assert incremental_start([ViewHistory("z", None, timedelta(0))], NOW) == NOW - timedelta(weeks=52)
    assert incremental_start([], NOW) is None


def test_diff_marks_created_updated_and_deleted_names() -> None:
    before = Snapshot(entities={"driver": b"1"}, feature_views={"a": b"1", "b": b"1", "gone": b"1"})
    after = Snapshot(
        entities={"driver": b"1"}, feature_views={"a": b"1", "b": b"2", "new": b"1"}, feature_services={"fs": b"1"}
    )
    changes = diff(before, after)
    assert as_object_changes(changes) == ObjectChanges(
        feature_views=["~b", "-gone", "+new"], feature_services=["+fs"], entities=[]
    )
    assert changes["feature_views"].names() == ["b", "gone", "new"]
    assert current_names(after) == ObjectChanges(
        feature_views=["a", "b", "new"], feature_services=["fs"], entities=["driver"]
    )
    assert as_object_changes(diff(after, after)) == ObjectChanges()


def _big_result() -> RunnerResult:
    names = [f"feature_view_number_{n:04d}" for n in range(300)]
    return RunnerResult(
        operation="apply",
        ok=False,
        error="feast apply failed: " + "e" * 900,
        duration_seconds=1.5,
        changes=ObjectChanges(feature_views=["+" + n for n in names]),
        current=ObjectChanges(feature_views=names, entities=names[:50]),
        counts=contract.ObjectCounts(feature_views=300, feature_services=0, entities=50),
        mlflow_error="MLflow at http://mlflow:5000 unreachable",
        audit={"i": "id-1", "tg": {f"tag.{n}": "v" * 500 for n in range(20)}, "p": {"x": "y" * 500}},
    )


def test_fit_result_leaves_a_small_result_alone() -> None:
    small = RunnerResult(operation="apply", ok=True, duration_seconds=1.0, current=ObjectChanges(entities=["driver"]))
    assert fit_result(small) == small.to_json()


def test_fit_result_drops_current_first_then_truncates() -> None:
    result = _big_result().model_copy(update={"audit": None, "error": "short"})
    text = fit_result(result)
    assert len(text.encode()) <= contract.TERMINATION_MESSAGE_LIMIT
    parsed = RunnerResult.model_validate_json(text)
    assert parsed.current is None
    assert parsed.counts is not None and parsed.counts.feature_views == 300
    assert parsed.changes is not None and parsed.changes.feature_views[-1].startswith("...(+")


def test_fit_result_always_fits_and_keeps_the_audit_id() -> None:
    text = fit_result(_big_result())
    assert len(text.encode()) <= contract.TERMINATION_MESSAGE_LIMIT
    parsed = json.loads(text)
    assert parsed["ok"] is False and parsed["audit"]["i"] == "id-1"
    assert "p" not in parsed["audit"]


def _env(**extra: str) -> dict[str, str]:
    return {
        contract.ENV_CONFIG_PATH: "/etc/feast-lineage/config/feature_store.yaml",
        contract.ENV_REPO_KIND: "configMap",
        contract.ENV_REPO_DIR: contract.REPO_CONFIGMAP_MOUNT,
        **extra,
    }


def test_settings_defaults_and_bad_input() -> None:
    settings = read_settings("apply", _env(FEAST_LINEAGE_PROVENANCE='{"k8s.job": "j", "n": 3}'))
    assert settings.workspace == Path("/workspace") and settings.provenance == {"k8s.job": "j", "n": "3"}
    assert settings.mlflow.timeout == 10 and settings.mlflow.max_retries == 1
    assert not settings.mlflow.log_operations
    with pytest.raises(BadInput, match=contract.ENV_REPO_KIND):
        read_settings("apply", {contract.ENV_CONFIG_PATH: "/x"})
    with pytest.raises(BadInput, match=contract.ENV_PROVENANCE):
        read_settings("apply", _env(FEAST_LINEAGE_PROVENANCE="[1]"))
    with pytest.raises(BadInput, match=contract.ENV_MATERIALIZE_START):
        read_settings("materialize", _env(FEAST_LINEAGE_MATERIALIZE_MODE="Range"))
    with pytest.raises(BadInput, match="Incremental or Range"):
        read_settings("materialize", _env(FEAST_LINEAGE_MATERIALIZE_MODE="Sometimes"))
    with pytest.raises(BadInput, match="MLFLOW_HTTP_REQUEST_TIMEOUT"):
        read_settings("apply", _env(MLFLOW_HTTP_REQUEST_TIMEOUT="soon"))


def test_git_credentials_stay_out_of_the_settings_repr() -> None:
    settings = read_settings(
        "apply",
        {
            contract.ENV_CONFIG_PATH: "/x",
            contract.ENV_REPO_KIND: "git",
            contract.ENV_GIT_URL: "https://git.example/repo.git",
            contract.ENV_GIT_TOKEN: "s3cr3t-token",
        },
    )
    assert settings.git is not None and settings.git.token == "s3cr3t-token"
    assert "s3cr3t" not in repr(settings)


def test_configmap_copy_takes_only_the_visible_keys(tmp_path: Path) -> None:
    # The layout the kubelet creates: a timestamped dir, a ..data symlink to it, and one symlink per key.
    mount = tmp_path / "mount"
    stamp = mount / "..2026_11_20_12_00_00.123"
    stamp.mkdir(parents=True)
    (stamp / "features.py").write_text("x = 1\n")
    (stamp / "data.parquet").write_bytes(b"PAR1")
    (mount / "..data").symlink_to(stamp.name)
    for key in ("features.py", "data.parquet"):
        (mount / key).symlink_to(f"..data/{key}")
    copied = copy_configmap_files(mount, tmp_path / "repo")
    assert copied == ["data.parquet", "features.py"]
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == copied
    assert not (tmp_path / "repo" / "features.py").is_symlink()
