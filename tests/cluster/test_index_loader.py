"""The operator's indexes filled from the API server before Kopf starts: a paged list of projects
and runs (the settled ones labelled, and left out of every later list), and a later look-up that
drops listed runs deleted before any watch event saw them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from feast_lineage.api import (
    FEATURE_STORE_PROJECT_PLURAL,
    GROUP,
    MATERIALIZATION_JOB_PLURAL,
    VERSION,
    MaterializationJobStatus,
)
from feast_lineage.controller import index_loader
from feast_lineage.controller.indexes import Indexes
from feast_lineage.controller.kube import Kube
from feast_lineage.domain.labels import LABEL_SETTLED
from tests.cluster.projects import project_manifest, range_run_manifest
from tests.cluster_helpers import operators_paused

pytestmark = pytest.mark.cluster


@pytest.fixture
def quiet(api: client.ApiClient, crds_installed: None) -> Iterator[None]:
    """No operator acts on the objects: the test's indexes alone say what they hold."""
    with operators_paused(api):
        yield


def project(name: str, config_map: str, tmp_path: Path) -> dict[str, Any]:
    return project_manifest(name, tmp_path, {"configMap": {"name": config_map}})


def test_a_paged_list_fills_every_index_and_vanished_runs_are_dropped(
    api: client.ApiClient, namespace: str, quiet: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(index_loader, "PAGE", 3)  # several pages of each kind
    monkeypatch.setattr(index_loader, "PROJECT_PAGE", 3)
    custom = client.CustomObjectsApi(api)
    for index in range(4):
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, FEATURE_STORE_PROJECT_PLURAL, project(f"p{index}", f"repo-{index % 2}", tmp_path)
        )
    for index in range(7):
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, MATERIALIZATION_JOB_PLURAL, range_run_manifest(f"active-{index}", "p0")
        )
    for index in range(5):
        body = custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, MATERIALIZATION_JOB_PLURAL, range_run_manifest(f"done-{index}", "p0")
        )
        status = MaterializationJobStatus(phase="Succeeded", reason="Succeeded", message="finished")
        custom.replace_namespaced_custom_object_status(
            GROUP, VERSION, namespace, MATERIALIZATION_JOB_PLURAL, f"done-{index}", {**body, "status": status.to_k8s()}
        )

    kube = Kube(api)
    indexes = Indexes()
    # The finished runs (no finalizer, no record pending) are labelled as the list finds them.
    assert index_loader.fill(kube, indexes, [namespace]) == (4, 12, 5)
    for index in range(5):
        done = custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, MATERIALIZATION_JOB_PLURAL, f"done-{index}"
        )
        assert done["metadata"]["labels"][LABEL_SETTLED] == "true"
    assert indexes.projects_using(namespace, "repo-0") == {"p0", "p2"}
    assert indexes.projects_using(namespace, "repo-1") == {"p1", "p3"}
    assert sorted(peer["name"] for peer in indexes.peers(namespace, "p0")) == [f"active-{i}" for i in range(7)]
    assert indexes.project_of_run(namespace, "active-3") == "p0"
    assert indexes.project_of_run(namespace, "done-3") is None  # the finished history is not kept
    assert len(indexes.unconfirmed_runs()) == 7

    # Filling again (a retried start) changes nothing, and lists only the unsettled runs.
    assert index_loader.fill(kube, indexes, [namespace]) == (4, 7, 0)
    assert len(indexes.peers(namespace, "p0")) == 7

    # A watch event confirms one run; two others are deleted before any event saw them.
    seen = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, MATERIALIZATION_JOB_PLURAL, "active-0")
    indexes.observe_run(namespace, "active-0", seen)
    for name in ("active-1", "active-2"):
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, MATERIALIZATION_JOB_PLURAL, name)
    assert index_loader.drop_vanished(kube, indexes) == 2
    assert sorted(peer["name"] for peer in indexes.peers(namespace, "p0")) == ["active-0"] + [
        f"active-{i}" for i in range(3, 7)
    ]
    assert indexes.project_of_run(namespace, "active-1") is None
    # The runs that still exist stay listed-only until their watch event; nothing else is dropped.
    assert indexes.unconfirmed_runs() == [(namespace, f"active-{i}") for i in range(3, 7)]
    assert index_loader.drop_vanished(kube, indexes) == 0
