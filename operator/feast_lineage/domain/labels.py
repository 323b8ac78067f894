"""Names, labels and owner references of the objects the operator creates."""

from __future__ import annotations

import hashlib
from typing import Any

from feast_lineage.api import API_VERSION, GROUP

MANAGED_BY = "feast-lineage-operator"
OPERATOR_FIELD_MANAGER = MANAGED_BY
"""The field manager of the operator's writes: the API server names it from the User-Agent, up to its
first "/" (the Kubernetes client's default would be "OpenAPI-Generator")."""
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_PROJECT = f"{GROUP}/project"
LABEL_OPERATION = f"{GROUP}/operation"
LABEL_MATERIALIZATION = f"{GROUP}/materialization-job"
LABEL_CREATED_BY = f"{GROUP}/created-by"
LABEL_SETTLED = f"{GROUP}/settled"
"""On a MaterializationJob the operator is done with (finished, its record delivered, no finalizer):
the operator's watch of runs selects ``!LABEL_SETTLED``, so the finished history costs it nothing."""
RUN_FINALIZER = f"{GROUP}/finalizer"
"""The operator's finalizer, on both kinds (Kopf's on projects, the run watch's own on runs): a run
carries it from its start until its record is delivered."""

ANNOTATION_APPLY_HASH = f"{GROUP}/apply-hash"
ANNOTATION_SPEC_HASH = f"{GROUP}/spec-hash"
ANNOTATION_REVISION = f"{GROUP}/revision"
ANNOTATION_COMMIT = f"{GROUP}/commit"
ANNOTATION_REPO_DIGEST = f"{GROUP}/repo-digest"
"""On an apply Job and a repo snapshot: the content digest of a ConfigMap source."""
ANNOTATION_SNAPSHOT = f"{GROUP}/repo-snapshot"
"""On an apply Job: the immutable ConfigMap it mounts as its repo."""
ANNOTATION_TRIGGER = f"{GROUP}/trigger"
ANNOTATION_GENERATION = f"{GROUP}/generation"
ANNOTATION_AUDIT_ID = f"{GROUP}/audit-id"
ANNOTATION_SCHEDULED_TIME = f"{GROUP}/scheduled-time"

ANNOTATION_RERUN_OF = f"{GROUP}/rerun-of"
"""On a MaterializationJob: the run it runs again (``feast-lineage rerun``)."""
ANNOTATION_CREATOR = f"{GROUP}/creator"
"""On FeatureStoreProjects and MaterializationJobs: the user who created it, as the API server
authenticated them, written at admission (a user-set value is replaced, a change refused)."""

LABEL_INJECT = f"{GROUP}/inject"
"""On a pod: the FeatureStoreProject whose client configuration it asks for, or "true" for the default."""
ANNOTATION_INJECTED = f"{GROUP}/injected"
"""On a pod: hash of what the webhook injected; a pod that has it is never injected again."""
ANNOTATION_INJECTED_PROJECT = f"{GROUP}/injected-project"
ANNOTATION_INJECTION_WARNINGS = f"{GROUP}/injection-warnings"
"""On a pod: what was left out of the injection and why (a pod made by a controller never shows
its admission warnings to anyone)."""
ANNOTATION_ROLE = f"{GROUP}/role"
"""On a pod: training (default, retrieval auto-logging on), serving or batch (auto-logging off)."""
ANNOTATION_INJECT_INIT_CONTAINERS = f"{GROUP}/inject-init-containers"
"""On a pod: "true" to configure init containers too."""

_MAX_NAME = 63


def standard_labels(project_resource: str, component: str) -> dict[str, str]:
    return {
        LABEL_NAME: "feast-lineage",
        LABEL_INSTANCE: project_resource,
        LABEL_COMPONENT: component,
        LABEL_PART_OF: "feast-lineage",
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_PROJECT: project_resource,
    }


def owner_reference(kind: str, name: str, uid: str) -> dict[str, Any]:
    """A controller owner reference: the garbage collector deletes the child with its owner."""
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_name(owner: str, suffix: str) -> str:
    """``<owner>-<suffix>``, shortened with a hash when it would not fit a label value (63)."""
    name = f"{owner}-{suffix}"
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(owner.encode()).hexdigest()[:10]  # 40 bits: collisions negligible
    keep = _MAX_NAME - len(suffix) - len(digest) - 2
    return f"{owner[:keep].rstrip('-.')}-{digest}-{suffix}"


def controller_owner(obj: dict[str, Any], kind: str) -> str | None:
    """Name of the object's controller owner of ``kind`` in this API group, if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind and ref.get("apiVersion") == API_VERSION:
            return str(ref["name"])
    return None


def controller_owner_uid(metadata: dict[str, Any], kind: str) -> str | None:
    """UID of the object's controller owner of ``kind`` in this API group, if any."""
    for ref in metadata.get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind and ref.get("apiVersion") == API_VERSION:
            return str(ref.get("uid"))
    return None
