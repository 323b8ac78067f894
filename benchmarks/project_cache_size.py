"""Memory of the watch-fed copies a run's pass reads (controller/project_cache.py), per project.

Feeds --projects FeatureStoreProjects, each as the watch delivers it after a few applies (four
conditions, last and last successful apply with their changes, --views feature views listed, pending
audit records, schedule state), and two repo snapshot ConfigMaps each, and prints what the copies
hold by tracemalloc, next to what the full bodies would hold. No cluster needed:

    .venv/bin/python benchmarks/project_cache_size.py --projects 1000 --views 100
"""

from __future__ import annotations

import argparse
import json
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.cluster.projects import project_manifest  # noqa: E402

from feast_lineage.controller.project_cache import ProjectCache, SnapshotIndex  # noqa: E402
from feast_lineage.domain import labels  # noqa: E402
from feast_lineage.domain.repo_snapshot import SNAPSHOT_COMPONENT  # noqa: E402

MEMORY_TARGET_MIB = 150  # the whole operator's, at 1,000 projects and 10,000 runs (issue 16)


def _apply(index: int, views: list[str]) -> dict[str, Any]:
    return {
        "revision": f"configmap/repo-{index}@0123456789ab",
        "repoDigest": "0123456789abcdef" * 4,
        "snapshot": f"project-{index}-repo-0123456789abcdef",
        "time": "2026-11-27T10:00:00Z",
        "jobName": f"project-{index}-apply-0123456789",
        "trigger": "spec",
        "mlflow": {"experimentId": "1", "runId": "0123456789abcdef0123456789abcdef", "runUrl": "http://mlflow/#/x"},
        "changes": {"featureViews": views, "featureServices": [], "entities": ["driver"]},
        "durationSeconds": 12.5,
        "outcome": "Succeeded",
        "specHash": "f" * 64,
        "auditId": "0a0b0c0d-0000-4000-8000-000000000000",
        "image": "feast-lineage-runner:0.1.0",
        "imageId": "sha256:" + "e" * 64,
    }


def project_body(index: int, views: int) -> dict[str, Any]:
    """A project as the watch delivers it after a few applies and runs."""
    manifest = project_manifest(f"project-{index}", Path("/data"), {"configMap": {"name": f"repo-{index}"}})
    manifest["spec"]["materialization"] = {"schedule": "*/30 * * * *"}
    names = [f"feature_view_number_{i}" for i in range(views)]
    conditions = [
        {
            "type": kind,
            "status": "True" if kind in ("Ready", "Applied") else "False",
            "reason": "Applied",
            "message": "applied revision configmap/repo@0123456789ab",
            "lastTransitionTime": "2026-11-27T10:00:00Z",
            "observedGeneration": 3,
        }
        for kind in ("Ready", "Reconciling", "Stalled", "Applied")
    ]
    manifest["metadata"].update(
        namespace="team",
        uid=f"00000000-0000-4000-8000-{index:012d}",
        resourceVersion=str(100000 + index),
        generation=3,
        creationTimestamp="2026-11-27T09:00:00Z",
        finalizers=["featurelineage.io/finalizer"],
        annotations={"featurelineage.io/last-handled-configuration": "{" + '"spec": "..."' * 40 + "}"},
        managedFields=[{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {"f:repo": {}}}}] * 3,
    )
    manifest["status"] = {
        "observedGeneration": 3,
        "conditions": conditions,
        "lastApply": _apply(index, names),
        "lastSuccessfulApply": _apply(index, names),
        "lastMaterialization": {"name": "run", "phase": "Succeeded", "completionTime": "2026-11-27T10:30:00Z"},
        "schedule": {"lastScheduleTime": "2026-11-27T10:30:00Z", "active": ["run"]},
        "featureViews": names,
        "featureViewCount": views,
        "materializedFeatureViews": names,
        "featureServices": [f"service_{i}" for i in range(10)],
        "entities": ["driver"],
        "clientConfigMap": f"project-{index}-client",
        "runnerConfigMap": f"project-{index}-runner",
        "pendingAudit": [{"kind": "apply", "record": "x" * 2000}],
        "appliedSpecHash": "a" * 64,
    }
    return manifest


def snapshot_body(index: int, digest: str) -> dict[str, Any]:
    owner = labels.owner_reference("FeatureStoreProject", f"project-{index}", f"00000000-0000-4000-8000-{index:012d}")
    return {
        "metadata": {
            "name": f"project-{index}-repo-{digest}",
            "namespace": "team",
            "labels": labels.standard_labels(f"project-{index}", SNAPSHOT_COMPONENT),
            "ownerReferences": [owner],
        },
        "data": {"features.py": "x" * 4000},
    }


def held_bytes(fill: Callable[[], object]) -> tuple[int, object]:
    """Bytes still allocated once ``fill`` returned (what its result holds), by tracemalloc."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = fill()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--views", type=int, nargs="+", default=[10, 100])
    args = parser.parse_args()
    for views in args.views:
        # Each as a watch event: parsed from JSON, its own strings, dropped once handled.
        wire = [json.dumps(project_body(i, views)) for i in range(args.projects)]

        def copies(wire: list[str] = wire) -> ProjectCache:
            cache = ProjectCache()
            for i, text in enumerate(wire):
                cache.observe("team", f"project-{i}", json.loads(text))
            return cache

        def full(wire: list[str] = wire) -> list[dict[str, Any]]:
            return [json.loads(text) for text in wire]

        def snapshots() -> SnapshotIndex:
            index = SnapshotIndex()
            for i in range(args.projects):
                for digest in ("0123456789abcdef", "fedcba9876543210"):
                    body = json.loads(json.dumps(snapshot_body(i, digest)))
                    index.observe("team", body["metadata"]["name"], body)
            return index

        cached, _ = held_bytes(copies)
        whole, _ = held_bytes(full)
        indexed, _ = held_bytes(snapshots)
        print(
            f"{args.projects} projects, {views} feature views listed each: copies {cached / 2**20:.1f} MiB "
            f"({cached / args.projects / 1024:.1f} KiB/project; whole bodies {whole / args.projects / 1024:.1f} "
            f"KiB/project), snapshot index {indexed / 2**20:.2f} MiB for {2 * args.projects} snapshots "
            f"(the operator's whole target: {MEMORY_TARGET_MIB} MiB)"
        )


if __name__ == "__main__":
    main()
