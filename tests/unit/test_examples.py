"""The driver-stats example: valid manifests, a flat feature repo and data that Feast can serve."""

import importlib.util
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest
import yaml

from feast_lineage.api import FeatureStoreProject, MaterializationJob, validate_manifest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "driver-stats"
REPO = EXAMPLE / "feature_repo"
WEEK_START = datetime(2026, 11, 2, tzinfo=UTC)
WEEK_END = datetime(2026, 11, 9, tzinfo=UTC)


def load_yaml(name: str) -> dict[str, Any]:
    document = yaml.safe_load((EXAMPLE / name).read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def repo_files() -> list[str]:
    return sorted(path.name for path in REPO.iterdir() if path.name != "__pycache__")


def project() -> FeatureStoreProject:
    resource = validate_manifest(load_yaml("featurestoreproject.yaml"))
    assert isinstance(resource, FeatureStoreProject)
    return resource


def test_project_manifest() -> None:
    spec = project().spec
    assert project().metadata.name == "driver-stats"
    assert spec.repo.config_map is not None and spec.repo.config_map.name == "driver-stats-repo"
    assert spec.feature_store.provider == "local"
    assert spec.feature_store.registry.registry_type == "file"
    assert spec.feature_store.registry.path == "/feast-data/registry.db"
    assert spec.feature_store.online_store is not None
    assert spec.feature_store.online_store.type == "sqlite"
    assert spec.feature_store.online_store.settings == {"path": "/feast-data/online_store.db"}
    assert spec.feature_store.offline_store is not None and spec.feature_store.offline_store.type == "file"
    assert spec.mlflow.log_operations


def test_backfill_covers_the_data_week() -> None:
    resource = validate_manifest(load_yaml("materializationjob-backfill.yaml"))
    assert isinstance(resource, MaterializationJob)
    assert resource.spec.project_ref.name == "driver-stats"
    assert resource.spec.mode == "Range"
    assert (resource.spec.start_time, resource.spec.end_time) == (WEEK_START, WEEK_END)
    data = pd.read_parquet(REPO / "driver_stats.parquet")
    assert data["event_timestamp"].min() >= pd.Timestamp(WEEK_START)
    assert data["event_timestamp"].max() < pd.Timestamp(WEEK_END)


def test_incremental_job() -> None:
    resource = validate_manifest(load_yaml("materializationjob-incremental.yaml"))
    assert isinstance(resource, MaterializationJob)
    assert resource.spec.project_ref.name == "driver-stats"
    assert resource.spec.mode == "Incremental" and resource.spec.start_time is None


def test_feature_repo_is_flat_and_has_no_feature_store_yaml() -> None:
    # The repo may ship as a ConfigMap, whose keys cannot contain '/'; the operator renders the YAML.
    assert repo_files() == ["driver_stats.parquet", "features.py"]
    assert not any(path.is_dir() for path in REPO.iterdir() if path.name != "__pycache__")


def test_kustomization_ships_the_repo_and_only_the_project() -> None:
    kustomization = load_yaml("kustomization.yaml")
    assert kustomization["resources"] == ["featurestoreproject.yaml"]
    (generator,) = kustomization["configMapGenerator"]
    assert generator["name"] == "driver-stats-repo"
    assert generator["options"]["disableNameSuffixHash"] is True
    assert sorted(Path(file).name for file in generator["files"]) == repo_files()
    assert all(Path(file).parent == Path("feature_repo") for file in generator["files"])


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_builds_the_config_map() -> None:
    output = subprocess.run(
        ["kubectl", "kustomize", str(EXAMPLE)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    documents = {document["kind"]: document for document in yaml.safe_load_all(output)}
    config_map = documents["ConfigMap"]
    assert config_map["metadata"]["name"] == "driver-stats-repo"
    assert set(config_map["data"]) == {"features.py"}
    assert set(config_map["binaryData"]) == {"driver_stats.parquet"}
    assert documents["FeatureStoreProject"]["metadata"]["name"] == "driver-stats"


def test_parquet_is_what_make_data_writes() -> None:
    make_data = load_module(EXAMPLE / "make_data.py", "driver_stats_make_data")
    committed = pd.read_parquet(REPO / "driver_stats.parquet")
    pd.testing.assert_frame_equal(committed, make_data.driver_stats(), check_dtype=False)
    assert list(committed.columns) == [
        "driver_id",
        "event_timestamp",
        "created",
        "conv_rate",
        "acc_rate",
        "avg_daily_trips",
    ]
    assert committed["driver_id"].nunique() == 5 and len(committed) == 5 * 24 * 7
    assert (REPO / "driver_stats.parquet").stat().st_size < 16 * 1024


def feature_store_yaml(repo: Path) -> str:
    """The example's store settings, pointed at a scratch directory."""
    spec = project().spec.feature_store
    assert spec.online_store is not None and spec.offline_store is not None
    return yaml.safe_dump(
        {
            "project": project().spec.project,
            "provider": spec.provider,
            "registry": {"registry_type": spec.registry.registry_type, "path": str(repo / "registry.db")},
            "online_store": {"type": spec.online_store.type, "path": str(repo / "online_store.db")},
            "offline_store": {"type": spec.offline_store.type},
            "entity_key_serialization_version": spec.entity_key_serialization_version,
        }
    )


def test_feast_applies_materializes_and_serves_the_repo(tmp_path: Path) -> None:
    feast = pytest.importorskip("feast")
    repo = tmp_path / "feature_repo"
    shutil.copytree(REPO, repo, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "feature_store.yaml").write_text(feature_store_yaml(repo), encoding="utf-8")
    sys.dont_write_bytecode = True
    try:
        features = load_module(repo / "features.py", "driver_stats_features")
    finally:
        sys.dont_write_bytecode = False

    store = feast.FeatureStore(repo_path=str(repo))
    objects = [
        features.driver,
        features.driver_stats_source,
        features.driver_hourly_stats,
        features.driver_daily_trips,
        features.driver_conversion,
        features.driver_activity_v1,
        features.driver_ranking_v1,
    ]
    store.apply(objects)
    assert sorted(view.name for view in store.list_feature_views()) == ["driver_daily_trips", "driver_hourly_stats"]
    assert [view.name for view in store.list_on_demand_feature_views()] == ["driver_conversion"]
    assert sorted(service.name for service in store.list_feature_services()) == [
        "driver_activity_v1",
        "driver_ranking_v1",
    ]

    # Without names Feast leaves the on-demand view out; by name it refuses it.
    store.materialize(WEEK_START, WEEK_END)
    with pytest.raises(ValueError, match="driver_conversion is not configured for write_to_online_store"):
        store.materialize(WEEK_START, WEEK_END, ["driver_conversion"])
    served = store.get_online_features(
        features=store.get_feature_service("driver_activity_v1"),
        entity_rows=[{"driver_id": driver_id} for driver_id in (1001, 1005)],
    ).to_dict()

    data = pd.read_parquet(REPO / "driver_stats.parquet")
    latest = data.sort_values("event_timestamp").groupby("driver_id").last()
    assert served["driver_id"] == [1001, 1005]
    assert served["avg_daily_trips"] == [
        int(latest.loc[1001, "avg_daily_trips"]),
        int(latest.loc[1005, "avg_daily_trips"]),
    ]
    assert served["conv_rate"] == pytest.approx([latest.loc[1001, "conv_rate"], latest.loc[1005, "conv_rate"]])
    ranked = store.get_online_features(
        features=store.get_feature_service("driver_ranking_v1"), entity_rows=[{"driver_id": 1001}]
    ).to_dict()
    expected = latest.loc[1001, "conv_rate"] * latest.loc[1001, "acc_rate"]
    assert ranked["conv_acc_rate"] == pytest.approx([expected], rel=1e-5)
