"""What a run's first pass asks the API server for, given the watch's copies: nothing to start a run
the copy says can start, a fresh read before any verdict against the project or its snapshot.

The API server here is a recorder that answers from a dict (the pass's decisions are the logic under
test; the cluster tests show the same runs against a real one)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from feast_lineage.api import StatusModel
from feast_lineage.controller.kube import Kube
from feast_lineage.controller.locks import ObjectLocks
from feast_lineage.controller.materialization_reconciler import MaterializationReconciler
from feast_lineage.controller.project_cache import ProjectCache, SnapshotIndex
from feast_lineage.controller.settings import OperatorSettings
from feast_lineage.domain import labels
from feast_lineage.domain.repo_snapshot import SNAPSHOT_COMPONENT

Obj = dict[str, Any]
SNAPSHOT = "drivers-repo-abc"


def project(ready: bool = True, views: tuple[str, ...] = ("fv_0",), version: str = "2") -> Obj:
    condition = {"type": "Ready", "status": "True" if ready else "False", "reason": "Applied", "message": "m"}
    return {
        "apiVersion": "featurelineage.io/v1alpha1",
        "kind": "FeatureStoreProject",
        "metadata": {"name": "drivers", "namespace": "ns", "uid": "p-uid", "resourceVersion": version, "generation": 1},
        "spec": {
            "project": "driver_stats",
            "repo": {"configMap": {"name": "repo"}},
            "featureStore": {"registry": {"registryType": "sql", "path": "sqlite:////feast-data/registry.db"}},
        },
        "status": {
            "conditions": [{**condition, "lastTransitionTime": "2026-11-27T10:00:00Z"}],
            "featureViews": list(views),
            "lastSuccessfulApply": {"revision": "configmap/repo@abc", "snapshot": SNAPSHOT, "outcome": "Succeeded"},
        },
    }


def snapshot() -> Obj:
    owner = labels.owner_reference("FeatureStoreProject", "drivers", "p-uid")
    meta = {"name": SNAPSHOT, "namespace": "ns", "labels": labels.standard_labels("drivers", SNAPSHOT_COMPONENT)}
    return {"metadata": {**meta, "ownerReferences": [owner]}}


def run(view: str) -> Obj:
    return {
        "apiVersion": "featurelineage.io/v1alpha1",
        "kind": "MaterializationJob",
        "metadata": {
            "name": "run",
            "namespace": "ns",
            "uid": "r-uid",
            "resourceVersion": "5",
            "generation": 1,
            "creationTimestamp": "2026-11-27T11:00:00Z",
        },
        "spec": {
            "projectRef": {"name": "drivers"},
            "mode": "Range",
            "startTime": "2026-11-02T00:00:00Z",
            "endTime": "2026-11-03T00:00:00Z",
            "featureViews": [view],
        },
    }


class RecordingKube(Kube):
    """Answers from ``objects`` and records each request (no network)."""

    def __init__(self) -> None:
        super().__init__(client.ApiClient())
        self.objects: dict[str, Obj] = {}
        self.requests: list[str] = []
        self.statuses: list[Obj] = []
        self.core = SimpleNamespace(read_namespaced_config_map=self._read_config_map)  # type: ignore[assignment]

    def _read_config_map(self, name: str, namespace: str, **_: Any) -> Any:
        self.requests.append(f"GET configmap {name}")
        if name not in self.objects:
            raise ApiException(status=404)
        return SimpleNamespace(data=json.dumps(self.objects[name]).encode())

    def get_custom(self, plural: str, namespace: str, name: str) -> Obj | None:
        self.requests.append(f"GET {plural} {name}")
        return self.objects.get(name)

    def create_job(self, namespace: str, manifest: Obj) -> bool:
        self.requests.append(f"POST job {manifest['metadata']['name']}")
        return True

    def write_status(self, plural: str, body: Obj, status: StatusModel, owned: frozenset[str]) -> bool:
        self.requests.append(f"PUT {plural}/status")
        if plural == "materializationjobs":
            self.statuses.append(status.to_k8s())
        return True

    def create_event(self, namespace: str, event: Obj) -> None:
        self.requests.append("POST event")


@pytest.fixture
def kube() -> RecordingKube:
    return RecordingKube()


@pytest.fixture
def copies() -> Iterator[tuple[ProjectCache, SnapshotIndex]]:
    yield ProjectCache(), SnapshotIndex()


def first_pass(kube: RecordingKube, copies: tuple[ProjectCache, SnapshotIndex], view: str) -> Obj:
    """The first pass of a new run (its Job not looked for) and the status it wrote."""
    reconciler = MaterializationReconciler(kube, OperatorSettings(), ObjectLocks(), *copies)
    body = run(view)
    reconciler.reconcile("ns", "run", [{"name": "run", "created": "", "featureViews": [view], "phase": ""}], seen=body)
    return kube.statuses[-1]


def test_a_copy_that_starts_the_run_is_all_the_pass_reads(
    kube: RecordingKube, copies: tuple[ProjectCache, SnapshotIndex]
) -> None:
    copies[0].observe("ns", "drivers", project())
    copies[1].observe("ns", SNAPSHOT, snapshot())
    status = first_pass(kube, copies, "fv_0")
    assert (status["phase"], status["revision"]) == ("Running", "configmap/repo@abc")
    assert kube.requests == ["POST job run-materialize", "PUT materializationjobs/status", "POST event"]


@pytest.mark.parametrize(
    "stale",
    # The copy is a version older than what the API server has now.
    [project(ready=False, version="1"), project(views=(), version="1")],
    ids=["not ready on the copy", "the view not yet on the copy"],
)
def test_a_copy_that_would_hold_up_or_fail_the_run_is_read_again(
    kube: RecordingKube, copies: tuple[ProjectCache, SnapshotIndex], stale: Obj
) -> None:
    copies[0].observe("ns", "drivers", stale)
    copies[1].observe("ns", SNAPSHOT, snapshot())
    kube.objects["drivers"] = project()  # what the API server says now
    status = first_pass(kube, copies, "fv_0")
    assert status["phase"] == "Running"
    assert kube.requests[:2] == ["GET featurestoreprojects drivers", "POST job run-materialize"]


def test_a_verdict_against_the_project_is_written_from_the_fresh_read(
    kube: RecordingKube, copies: tuple[ProjectCache, SnapshotIndex]
) -> None:
    copies[0].observe("ns", "drivers", project())
    copies[1].observe("ns", SNAPSHOT, snapshot())
    kube.objects["drivers"] = project(views=("fv_0",))
    status = first_pass(kube, copies, "fv_9")
    assert (status["phase"], status["reason"]) == ("Failed", "UnknownFeatureView")
    # One fresh read decided it; the next is the finished run's record on its project.
    assert kube.requests[:2] == ["GET featurestoreprojects drivers", "PUT materializationjobs/status"]
    assert not any(request.startswith("POST job") for request in kube.requests)


def test_a_snapshot_the_watch_has_not_shown_is_read_before_the_run_fails(
    kube: RecordingKube, copies: tuple[ProjectCache, SnapshotIndex]
) -> None:
    copies[0].observe("ns", "drivers", project())
    kube.objects["drivers"] = project()
    kube.objects[SNAPSHOT] = snapshot()  # there, though the index has not seen it yet
    assert first_pass(kube, copies, "fv_0")["phase"] == "Running"
    assert f"GET configmap {SNAPSHOT}" in kube.requests

    gone = RecordingKube()
    gone.objects["drivers"] = project()
    status = first_pass(gone, copies, "fv_0")
    assert (status["phase"], status["reason"]) == ("Failed", "RevisionUnavailable")
    assert gone.requests[:3] == [
        f"GET configmap {SNAPSHOT}",
        "GET featurestoreprojects drivers",
        f"GET configmap {SNAPSHOT}",
    ]


def test_without_copies_the_pass_reads_the_project_and_its_snapshot(kube: RecordingKube) -> None:
    kube.objects.update({"drivers": project(), SNAPSHOT: snapshot()})
    reconciler = MaterializationReconciler(kube, OperatorSettings(), ObjectLocks())
    reconciler.reconcile("ns", "run", [], seen=run("fv_0"))
    assert kube.requests[:3] == [
        "GET featurestoreprojects drivers",
        f"GET configmap {SNAPSHOT}",
        "POST job run-materialize",
    ]
