"""Who and what an operation came from: Kubernetes identity, Git, and GitOps owners.

The result becomes MLflow tags on the ops run, so an auditor can go from a run to
the resource, the Job, the commit and the Argo CD / Flux application that made it.
"""

from __future__ import annotations

from typing import Any

from feast_lineage.redaction import redact

ARGOCD_TRACKING_ID = "argocd.argoproj.io/tracking-id"
ARGOCD_INSTANCE_LABEL = "app.kubernetes.io/instance"
FLUX_KUSTOMIZATION_NAME = "kustomize.toolkit.fluxcd.io/name"
FLUX_KUSTOMIZATION_NAMESPACE = "kustomize.toolkit.fluxcd.io/namespace"
FLUX_HELMRELEASE_NAME = "helm.toolkit.fluxcd.io/name"
FLUX_HELMRELEASE_NAMESPACE = "helm.toolkit.fluxcd.io/namespace"

_TAG_VALUE_LIMIT = 500
TAG_REVISION = "featurelineage.revision"
"""The repo revision the operation ran: configmap/<name>@<digest>, the Git revision, or the image and path."""
TAG_APPLY_JOB = "featurelineage.apply.job"
TAG_APPLY_AUDIT_ID = "featurelineage.apply.audit_id"
TAG_APPLY_RUN_ID = "featurelineage.apply.run_id"
"""A materialization's links to the apply it ran against."""


def gitops_owner(metadata: dict[str, Any]) -> dict[str, str]:
    """Argo CD and Flux identities found on an object's labels and annotations."""
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    owner: dict[str, str] = {}
    if ARGOCD_TRACKING_ID in annotations:
        owner["argocd.tracking_id"] = annotations[ARGOCD_TRACKING_ID]
    if FLUX_KUSTOMIZATION_NAME in labels:
        owner["flux.kustomization"] = (
            f"{labels.get(FLUX_KUSTOMIZATION_NAMESPACE, '')}/{labels[FLUX_KUSTOMIZATION_NAME]}"
        )
    if FLUX_HELMRELEASE_NAME in labels:
        owner["flux.helmrelease"] = f"{labels.get(FLUX_HELMRELEASE_NAMESPACE, '')}/{labels[FLUX_HELMRELEASE_NAME]}"
    return owner


def triggered_by(metadata: dict[str, Any], created_by_schedule: bool) -> str:
    """schedule | gitops | manual."""
    if created_by_schedule:
        return "schedule"
    return "gitops" if gitops_owner(metadata) else "manual"


def provenance_tags(
    *,
    namespace: str,
    kind: str,
    name: str,
    uid: str,
    generation: int | None,
    job_name: str,
    trigger: str,
    metadata: dict[str, Any],
    git_url: str | None = None,
    git_revision: str | None = None,
    git_commit: str | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """MLflow tags naming where an operation came from."""
    tags = {
        "k8s.namespace": namespace,
        "k8s.kind": kind,
        "k8s.name": name,
        "k8s.uid": uid,
        "k8s.job": job_name,
        "featurelineage.trigger": trigger,
    }
    if generation is not None:
        tags["k8s.generation"] = str(generation)
    if git_url:
        tags["git.url"] = redact(git_url)
    if git_revision:
        tags["git.revision"] = git_revision
    if git_commit:
        tags["git.commit"] = git_commit
    tags.update(gitops_owner(metadata))
    tags.update(extra or {})
    return {key: value[:_TAG_VALUE_LIMIT] for key, value in tags.items()}
