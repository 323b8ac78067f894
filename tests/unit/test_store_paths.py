"""Stores whose files would die with the runner pod are refused before the first apply."""

from __future__ import annotations

from typing import Any

from feast_lineage.api import FeatureStoreProjectSpec
from feast_lineage.domain.store_paths import ephemeral_store_paths

MOUNTED = {"volumes": [{"name": "d", "emptyDir": {}}], "volumeMounts": [{"name": "d", "mountPath": "/feast-data"}]}


def _spec(store: dict[str, Any], runner: dict[str, Any] | None = None) -> FeatureStoreProjectSpec:
    return FeatureStoreProjectSpec.model_validate(
        {"project": "p", "repo": {"configMap": {"name": "r"}}, "featureStore": store, "runner": runner or MOUNTED}
    )


def test_stores_on_a_mounted_volume_or_remote_are_fine() -> None:
    on_volume = {
        "registry": {"path": "/feast-data/registry.db"},
        "onlineStore": {"type": "sqlite", "settings": {"path": "/feast-data/online.db"}},
    }
    assert ephemeral_store_paths(_spec(on_volume)) == []
    remote = {"registry": {"registryType": "sql", "path": "postgresql://db/feast"}, "onlineStore": {"type": "redis"}}
    assert ephemeral_store_paths(_spec(remote, runner={})) == []
    s3 = {"registry": {"path": "s3://bucket/registry.db"}, "onlineStore": {"type": "redis"}}
    assert ephemeral_store_paths(_spec(s3, runner={})) == []


def test_feasts_default_online_store_is_refused_with_the_fix() -> None:
    (problem,) = ephemeral_store_paths(_spec({"registry": {"path": "/feast-data/registry.db"}}))
    assert problem.startswith("onlineStore is not set") and "throwaway workspace" in problem


def test_paths_off_the_volumes_are_named() -> None:
    store = {
        "registry": {"path": "/tmp/registry.db"},
        "onlineStore": {"type": "sqlite", "settings": {"path": "data/online.db"}},
    }
    problems = ephemeral_store_paths(_spec(store))
    assert problems[0].startswith("registry path /tmp/registry.db is not on a mounted volume")
    assert problems[1].startswith("onlineStore sqlite path data/online.db is not on a mounted volume")
    prefix = {"registry": {"path": "/feast-database/r.db"}, "onlineStore": {"type": "redis"}}
    assert ephemeral_store_paths(_spec(prefix)), "a path beside the mount is not under it"
