"""The project models a run's pass reads: validated once per project version, bounded in number."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from feast_lineage.controller.project_cache import stripped
from feast_lineage.controller.project_models import ProjectModels

Obj = dict[str, Any]


def project(version: str = "1", uid: str = "p-uid", views: tuple[str, ...] = ("fv_0",)) -> Obj:
    return {
        "apiVersion": "featurelineage.io/v1alpha1",
        "kind": "FeatureStoreProject",
        "metadata": {"name": "drivers", "namespace": "ns", "uid": uid, "resourceVersion": version},
        "spec": {
            "project": "driver_stats",
            "repo": {"configMap": {"name": "repo"}},
            "featureStore": {"registry": {"registryType": "sql", "path": "sqlite:////feast-data/registry.db"}},
        },
        "status": {
            "featureViews": list(views),
            "lastSuccessfulApply": {"revision": "configmap/repo@abc", "outcome": "Succeeded", "changes": {"a": 1}},
            "lastMaterialization": {"name": "earlier", "phase": "Succeeded"},
        },
    }


def test_one_version_is_validated_once_and_a_new_version_again() -> None:
    models = ProjectModels()
    first = models.status(project())
    assert models.status(project()) is first
    assert models.project(project()) is models.project(project())
    changed = models.status(project(version="2", views=("fv_0", "fv_1")))
    assert changed is not first
    assert changed.feature_views == ["fv_0", "fv_1"]


def test_the_watchs_copy_and_a_fresh_read_of_one_version_give_the_same_status() -> None:
    from_copy = ProjectModels().status(stripped(project()))
    from_read = ProjectModels().status(project())
    assert from_copy == from_read
    # Only what a run reads is kept: the project's own fields are not in it, either way.
    assert from_read.last_materialization is None
    assert from_read.last_successful_apply is not None and from_read.last_successful_apply.revision


def test_only_the_projects_used_last_are_kept() -> None:
    models = ProjectModels(size=2)
    first = models.status(project(uid="a"))
    models.status(project(uid="b"))
    assert models.status(project(uid="a")) is first  # used last now: "b" goes next
    models.status(project(uid="c"))
    assert models.status(project(uid="a")) is first
    assert len(models._statuses) == 2


def test_a_project_without_a_version_is_validated_each_time() -> None:
    body = project()
    del body["metadata"]["resourceVersion"]
    models = ProjectModels()
    assert models.status(body) is not models.status(body)


def test_an_invalid_spec_raises_every_time() -> None:
    body = project()
    body["spec"] = {"repo": "not a repo"}
    models = ProjectModels()
    for _ in range(2):
        with pytest.raises(ValidationError):
            models.project(body)
