"""When to run `feast apply`, and under which Job name.

An apply is identified by a hash of what it depends on: the parts of the spec
that change what ``feast apply`` does, the runner image, and the identity of the
repo content (ConfigMap content hash, Git commit, or image and path). The Job is
named from that hash, so a restart, a resync or a second operator replica finds
the Job that already exists instead of creating another, and an unchanged project
never applies again.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from feast_lineage.api import FeatureStoreProject, LastApply
from feast_lineage.contract import repo_digest
from feast_lineage.domain.labels import child_name


@dataclass(frozen=True)
class RepoIdentity:
    """What the repo content is, as far as the operator can tell before running anything."""

    kind: str  # configMap | git | image
    revision: str  # shown in status: configmap@hash, the Git revision, or the image
    fingerprint: str  # changes exactly when the content may have changed; configMap: the full repo_digest
    commit: str | None = None  # Git only
    content: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    """configMap: the ``data`` and ``binaryData`` that were hashed, from which the snapshot is made."""


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def configmap_files(data: Mapping[str, str], binary_data: Mapping[str, str]) -> dict[str, bytes]:
    """The files a ConfigMap mounts, by key: ``data`` as UTF-8, ``binaryData`` decoded."""
    files = {key: value.encode() for key, value in data.items()}
    files.update({key: base64.b64decode(value) for key, value in binary_data.items()})
    return files


def configmap_identity(name: str, data: Mapping[str, str], binary_data: Mapping[str, str]) -> RepoIdentity:
    """A ConfigMap source by its content address (the same digest the runner checks its mount against)."""
    digest = repo_digest(configmap_files(data, binary_data))
    return RepoIdentity(
        "configMap",
        f"configmap/{name}@{digest[:12]}",
        digest,
        content={"data": dict(data), "binaryData": dict(binary_data)},
    )


def spec_hash(project: FeatureStoreProject, runner_image: str) -> str:
    """Hash of what decides the outcome of an apply; mlflow, materialization and injection do not."""
    spec = project.spec
    relevant = {
        "project": spec.project,
        "repo": spec.repo.model_dump(mode="json", by_alias=True, exclude_none=True),
        "featureStore": spec.feature_store.model_dump(mode="json", by_alias=True, exclude_none=True),
        "runner": spec.runner.model_dump(mode="json", by_alias=True, exclude_none=True),
        "runnerImage": runner_image,
    }
    if spec.apply_policy.on_impact == "Block":
        # Leaving Block releases a held change; Allow and Warn apply alike (the runner is told which).
        relevant["onImpact"] = "Block"
    return _digest(relevant)[:16]


def apply_hash(spec_digest: str, repo: RepoIdentity, approved_plan: str | None = None) -> str:
    """Identity of an apply; an approval (under Block) is part of it, so approving starts a new Job."""
    parts = {"spec": spec_digest, "repo": repo.fingerprint}
    if approved_plan is not None:
        parts["approvedPlan"] = approved_plan
    return _digest(parts)[:16]


def apply_job_name(project_resource: str, digest: str) -> str:
    return child_name(project_resource, f"apply-{digest[:10]}")


def trigger(previous: LastApply | None, spec_digest: str, repo: RepoIdentity, approved_plan: str | None = None) -> str:
    """Why this apply happens, in words an auditor reads."""
    if previous is None or previous.spec_hash is None:
        return "created"
    reasons = []
    if previous.spec_hash != spec_digest:
        reasons.append("spec changed")
    if (previous.revision, previous.commit) != (repo.revision, repo.commit):
        reasons.append("new git commit" if repo.kind == "git" else "repo content changed")
    held = previous.impact if previous.impact is not None and previous.impact.held else None
    if not reasons and held is not None and approved_plan == held.plan_hash:
        reasons.append(f"plan {approved_plan} approved")
    return ", ".join(reasons) or "retry"


def git_identity(revision: str, path: str, commit: str) -> RepoIdentity:
    """A Git repo resolved to ``commit``."""
    return RepoIdentity("git", revision, f"{path}@{commit}", commit)


def last_applied_git_repo(
    last_apply: LastApply | None,
    applied_hash: str | None,
    spec_digest: str,
    revision: str,
    path: str,
    approved_plan: str | None = None,
) -> RepoIdentity | None:
    """The commit the registry holds, when the project is otherwise unchanged since its last successful apply.

    While the Git server is unreachable, that commit is still what materializations run on: the
    project stays Ready on it. Not when the spec changed since (the new spec's apply waits for Git).
    """
    if last_apply is None or last_apply.outcome != "Succeeded" or not last_apply.commit:
        return None
    if last_apply.spec_hash != spec_digest or last_apply.revision != revision:
        return None
    repo = git_identity(revision, path, last_apply.commit)
    return repo if applied_hash == apply_hash(spec_digest, repo, approved_plan) else None
