"""Impact of a planned apply on registered models (pure functions).

An apply is planned before it writes: the change list comes from spec snapshots (see
:mod:`feast_lineage.runner.changes`), not from Feast's own diff, which calls every materialized
view "Updated". Feature views and services that would be updated or deleted affect the feature
services that are or include them; registered model versions carry the feature service they were
trained on (tag ``feast.feature_service``), and their training runs the namespace and Feast project
of the pod that trained them. Only versions trained in the project's namespace, on the project's
Feast project, count: another namespace may reuse a feature service name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from feast_lineage.audit import tags
from feast_lineage.contract import (
    CHANGE_DELETED,
    CHANGE_UPDATED,
    IMPACT_LIST_LIMIT,
    ImpactedModel,
    ImpactReport,
)
from feast_lineage.runner.changes import KINDS, KindChanges, Snapshot

Policy = Literal["Allow", "Warn", "Block"]
POLICIES: tuple[Policy, ...] = ("Allow", "Warn", "Block")
PLAN_HASH_LENGTH = 16


@dataclass(frozen=True)
class FoundVersion:
    """A model version tagged with a feature service, with the tags of the run it came from."""

    name: str
    version: str
    feature_service: str
    run_tags: Mapping[str, str] | None
    """None when the run could not be read (deleted, or not visible)."""


def plan_hash(project: str, before: Snapshot, after: Snapshot) -> str:
    """Identifies the change from ``before`` to ``after`` exactly: each changed object's old and new spec.

    Planning the same repo against the same registry gives the same hash; any other change to the
    repo or the registry in between gives another, so an approval never carries over to a newer plan.
    """
    digest = hashlib.sha256(f"project\0{project}\0".encode())
    for kind in KINDS:
        old, new = before.of(kind), after.of(kind)
        for name in sorted(set(old) | set(new)):
            if old.get(name) == new.get(name):
                continue
            digest.update(f"{kind}\0{name}\0".encode())
            for spec in (old.get(name), new.get(name)):
                digest.update(hashlib.sha256(spec).digest() if spec is not None else b"\0absent")
    return digest.hexdigest()[:PLAN_HASH_LENGTH]


def affected_objects(changes: Mapping[str, KindChanges]) -> list[str]:
    """Updated (``~``) and deleted (``-``) feature views and services: what models can depend on."""
    marked = [
        (name, mark)
        for kind in ("feature_views", "feature_services")
        for mark, names in ((CHANGE_UPDATED, changes[kind].updated), (CHANGE_DELETED, changes[kind].deleted))
        for name in names
    ]
    return [mark + name for name, mark in sorted(marked)]


def affected_services(changes: Mapping[str, KindChanges], service_views: Mapping[str, Collection[str]]) -> list[str]:
    """Existing feature services (``service_views``: each with the views it includes) that the change
    updates or deletes, or that include a feature view it updates or deletes."""
    views = set(changes["feature_views"].updated) | set(changes["feature_views"].deleted)
    services = set(changes["feature_services"].updated) | set(changes["feature_services"].deleted)
    return sorted(
        service for service, included in service_views.items() if service in services or views & set(included)
    )


def in_scope(run_tags: Mapping[str, str] | None, namespace: str, feast_project: str) -> bool:
    """Whether a model version's training run ran in ``namespace`` on ``feast_project`` (when it says)."""
    if run_tags is None or run_tags.get(tags.RUN_NAMESPACE) != namespace:
        return False
    trained_on = run_tags.get(tags.RUN_FEAST_PROJECT)
    return trained_on is None or trained_on == feast_project


def impacted_models(
    found: Collection[FoundVersion], services: Collection[str], namespace: str, feast_project: str
) -> list[ImpactedModel]:
    """The versions, among ``found``, of an affected service and trained in scope; sorted, once each."""
    wanted = set(services)
    unique = {
        (version.name, version.version): version
        for version in found
        if version.feature_service in wanted and in_scope(version.run_tags, namespace, feast_project)
    }
    return [
        ImpactedModel(name=version.name, version=version.version, feature_service=version.feature_service)
        for _, version in sorted(unique.items(), key=lambda item: (item[0][0], _version_key(item[0][1])))
    ]


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (0, version)


def build_report(
    *,
    digest: str,
    objects: list[str],
    services: list[str],
    models: list[ImpactedModel],
    error: str | None,
    policy: Policy,
    approved_plan: str | None,
    limit: int = IMPACT_LIST_LIMIT,
) -> ImpactReport:
    """The report, with lists cut to ``limit`` entries each; whether the apply is held is decided here."""
    truncated = sum(max(0, len(items) - limit) for items in (objects, services, models))
    return ImpactReport(
        plan_hash=digest,
        policy=policy,
        objects=objects[:limit],
        feature_services=services[:limit],
        models=models[:limit],
        truncated=truncated,
        error=error,
        held=is_held(policy, models, error, services, digest, approved_plan),
    )


def is_held(
    policy: Policy,
    models: Collection[ImpactedModel],
    error: str | None,
    services: Collection[str],
    digest: str,
    approved_plan: str | None,
) -> bool:
    """Block holds a change that affects a registered model version, or that may (the lookup failed for
    an affected service), until exactly this plan is approved."""
    if policy != "Block" or approved_plan == digest:
        return False
    return bool(models) or (error is not None and bool(services))
