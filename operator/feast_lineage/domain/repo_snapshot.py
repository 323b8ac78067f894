"""Immutable, content-addressed snapshots of a ConfigMap-sourced repo.

A runner Job never mounts the live repo ConfigMap, which anyone may edit at any moment: it mounts
a snapshot made from the exact content whose digest the operator recorded. The apply of a
revision and every materialization run against it then run the same bytes, whatever happened to
the ConfigMap since. A snapshot is named by its digest (so a revision has one), immutable, owned by
the project, and kept while an apply Job or a running materialization mounts it or the project's
last successful apply names it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from feast_lineage.domain import labels
from feast_lineage.domain.apply_plan import RepoIdentity

SNAPSHOT_COMPONENT = "repo-snapshot"


def snapshot_name(project_resource: str, digest: str) -> str:
    return labels.child_name(project_resource, f"repo-{digest[:16]}")


def render_snapshot(project_resource: str, namespace: str, repo: RepoIdentity, owner: dict[str, Any]) -> dict[str, Any]:
    """The snapshot ConfigMap of ``repo`` (a configMap identity with its content)."""
    assert repo.kind == "configMap" and repo.content is not None
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": snapshot_name(project_resource, repo.fingerprint),
            "namespace": namespace,
            "labels": labels.standard_labels(project_resource, SNAPSHOT_COMPONENT),
            "annotations": {labels.ANNOTATION_REVISION: repo.revision, labels.ANNOTATION_REPO_DIGEST: repo.fingerprint},
            "ownerReferences": [owner],
        },
        "immutable": True,
        "data": dict(repo.content.get("data") or {}),
        "binaryData": dict(repo.content.get("binaryData") or {}),
    }


def mounted_config_maps(job: dict[str, Any]) -> set[str]:
    """Names of the ConfigMaps a Job's pods mount."""
    volumes = ((((job.get("spec") or {}).get("template") or {}).get("spec") or {}).get("volumes")) or []
    return {str(v["configMap"]["name"]) for v in volumes if (v.get("configMap") or {}).get("name")}


def in_use(jobs: Iterable[dict[str, Any]]) -> set[str]:
    """ConfigMaps the project's Jobs still need: every kept apply Job's (the last few applies) and
    those of materializations that have not finished."""
    used: set[str] = set()
    for job in jobs:
        operation = ((job.get("metadata") or {}).get("labels") or {}).get(labels.LABEL_OPERATION)
        finished = any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in (job.get("status") or {}).get("conditions") or []
        )
        if operation == "apply" or not finished:
            used |= mounted_config_maps(job)
    return used


def unreferenced(snapshots: Iterable[str], referenced: Iterable[str | None]) -> list[str]:
    """The snapshots nothing needs any more, in name order."""
    keep = {name for name in referenced if name}
    return sorted(name for name in snapshots if name not in keep)
