"""The watch's copies a run's pass reads: projects stripped to what the pass needs, and the repo
snapshots that exist with the project that owns each."""

from __future__ import annotations

import copy
from typing import Any

from feast_lineage.api import FeatureStoreProject, FeatureStoreProjectStatus
from feast_lineage.controller.project_cache import ProjectCache, SnapshotIndex, pack, stripped, unpack
from feast_lineage.domain import labels
from feast_lineage.domain.materialization_state import applied_revision
from feast_lineage.domain.repo_snapshot import SNAPSHOT_COMPONENT

APPLY = {
    "revision": "configmap/repo@abc",
    "snapshot": "drivers-repo-abc",
    "commit": None,
    "repoDigest": "abc",
    "jobName": "drivers-apply-1",
    "auditId": "apply-audit",
    "outcome": "Succeeded",
    "mlflow": {"runId": "apply-run"},
    "changes": {"featureViews": [f"fv_{i}" for i in range(500)]},
    "error": "x" * 4000,
}


def project(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "featurelineage.io/v1alpha1",
        "kind": "FeatureStoreProject",
        "metadata": {
            "name": "drivers",
            "namespace": "ns",
            "uid": "u-1",
            "resourceVersion": "7",
            "generation": 2,
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}" * 100},
        },
        "spec": {
            "project": "driver_stats",
            "repo": {"configMap": {"name": "repo"}},
            "featureStore": {"registry": {"path": "/feast-data/registry.db"}},
        },
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "Applied", "message": ""}],
            "featureViews": ["fv_0", "fv_1"],
            "lastSuccessfulApply": copy.deepcopy(APPLY),
            **status,
        },
    }


def test_a_copy_keeps_what_a_run_reads_and_drops_what_grows() -> None:
    full = project(
        pendingAudit=[{"record": "r" * 1000}] * 50,
        lastMaterialization={"name": "run-1"},
        entities=["driver"],
        featureServices=[f"fs_{i}" for i in range(100)],
    )
    copy_ = stripped(full)
    assert copy_["metadata"] == {
        "name": "drivers",
        "namespace": "ns",
        "uid": "u-1",
        "resourceVersion": "7",
        "generation": 2,
    }
    assert copy_["spec"] == full["spec"]
    assert set(copy_["status"]) == {"conditions", "featureViews", "lastSuccessfulApply"}
    applied = copy_["status"]["lastSuccessfulApply"]
    assert "changes" not in applied and "error" not in applied
    # What a run records and mounts of the apply it runs against is all there.
    record = applied_revision(FeatureStoreProjectStatus.from_k8s(copy_["status"]))
    assert record is not None
    assert (record.revision, record.snapshot, record.job_name, record.audit_id) == (
        "configmap/repo@abc",
        "drivers-repo-abc",
        "drivers-apply-1",
        "apply-audit",
    )
    assert record.mlflow is not None and record.mlflow.run_id == "apply-run"
    # The Job is rendered from the copy: it is a valid project.
    parts = {k: copy_[k] for k in ("apiVersion", "kind", "metadata", "spec")}
    assert FeatureStoreProject.model_validate(parts).metadata.uid == "u-1"


def test_each_reader_gets_a_copy_of_its_own() -> None:
    full = project()
    cache = ProjectCache()
    cache.observe("ns", "drivers", full)
    before = cache.get("ns", "drivers")
    # Neither the watch's body changing afterwards nor a reader changing its copy changes the cache.
    full["spec"]["repo"]["configMap"]["name"] = "changed"
    full["status"]["featureViews"].append("fv_2")
    mine = cache.get("ns", "drivers")
    assert mine is not None and mine == before
    mine["status"]["featureViews"].append("fv_3")
    mine["spec"]["project"] = "changed"
    assert cache.get("ns", "drivers") == before


def test_a_copy_is_a_fraction_of_the_project_in_memory() -> None:
    # A project listing 300 views (about what the runner's result can name) and its records.
    names = [f"feature_view_number_{i}" for i in range(300)]
    full = project(featureViews=names, materializedFeatureViews=names, pendingAudit=[{"record": "r" * 2000}])
    full["status"]["lastApply"] = {**full["status"]["lastSuccessfulApply"], "changes": {"featureViews": names}}
    assert len(pack(stripped(full))) < 4096
    assert unpack(pack(stripped(full))) == stripped(full)


def test_the_cache_holds_the_last_seen_state_until_the_project_goes() -> None:
    cache = ProjectCache()
    assert cache.get("ns", "drivers") is None
    cache.observe("ns", "drivers", project())
    cache.observe("ns", "drivers", project(featureViews=["fv_9"]))
    cached = cache.get("ns", "drivers")
    assert cached is not None and cached["status"]["featureViews"] == ["fv_9"]
    assert cache.get("other", "drivers") is None and len(cache) == 1
    cache.observe("ns", "drivers", None)
    assert cache.get("ns", "drivers") is None and len(cache) == 0


def config_map(name: str, owner_uid: str | None, component: str = SNAPSHOT_COMPONENT) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "labels": labels.standard_labels("drivers", component)}
    if owner_uid is not None:
        meta["ownerReferences"] = [labels.owner_reference("FeatureStoreProject", "drivers", owner_uid)]
    return {"metadata": meta, "data": {"features.py": "..."}}


def test_a_snapshot_is_known_with_its_owner_until_it_is_deleted() -> None:
    index = SnapshotIndex()
    assert not index.owned_by("ns", "drivers-repo-abc", "u-1")  # not seen: proves nothing
    index.observe("ns", "drivers-repo-abc", config_map("drivers-repo-abc", "u-1"))
    assert index.owned_by("ns", "drivers-repo-abc", "u-1")
    assert not index.owned_by("ns", "drivers-repo-abc", "u-2")  # a project of the same name made again
    assert not index.owned_by("other", "drivers-repo-abc", "u-1")
    index.observe("ns", "drivers-repo-abc", None)
    assert not index.owned_by("ns", "drivers-repo-abc", "u-1") and len(index) == 0


def test_only_project_owned_snapshots_are_kept() -> None:
    index = SnapshotIndex()
    index.observe("ns", "repo", {"metadata": {"name": "repo", "namespace": "ns"}, "data": {}})
    index.observe("ns", "drivers-runner", config_map("drivers-runner", "u-1", component="runner-config"))
    index.observe("ns", "forged", config_map("forged", None))
    assert len(index) == 0
    # A snapshot whose labels someone changed is no longer taken for one.
    index.observe("ns", "drivers-repo-abc", config_map("drivers-repo-abc", "u-1"))
    index.observe("ns", "drivers-repo-abc", config_map("drivers-repo-abc", "u-1", component="other"))
    assert not index.owned_by("ns", "drivers-repo-abc", "u-1")
