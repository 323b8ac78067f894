"""``feast apply`` with a change list computed from spec snapshots."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from feast_lineage.contract import ImpactReport
from feast_lineage.runner.apply_plan import planned_snapshot, service_views
from feast_lineage.runner.changes import KindChanges, Snapshot, diff
from feast_lineage.runner.console import feast_output
from feast_lineage.runner.errors import OperationFailed, exception_line
from feast_lineage.runner.feast_repo import inside_repo, load_config, parse_repo
from feast_lineage.runner.impact import (
    FoundVersion,
    Policy,
    affected_objects,
    affected_services,
    build_report,
    impacted_models,
    plan_hash,
)
from feast_lineage.runner.materializable import materialization_support
from feast_lineage.runner.snapshot import registry_snapshot


@dataclass(frozen=True)
class ApplyOutcome:
    project: str
    changes: dict[str, KindChanges]
    after: Snapshot
    default_materialized: list[str]
    """Feature views ``feast materialize`` materializes when given none."""
    not_materializable: dict[str, str]
    """Feature views Feast refuses to materialize by name, with its reason."""
    impact: ImpactReport | None = None
    """The plan's impact on registered models; when ``impact.held``, nothing was written."""


FindVersions = Callable[[Collection[str]], tuple[list[FoundVersion], str | None]]


@dataclass(frozen=True)
class ImpactGate:
    """How an apply is judged before it writes (spec.applyPolicy)."""

    policy: Policy
    approved_plan: str | None
    namespace: str
    find_versions: FindVersions | None
    """Model versions by feature service; None when the project has no MLflow to ask."""


def run_apply(repo: Path, gate: ImpactGate | None = None) -> ApplyOutcome:
    """Apply the definitions in ``repo`` (with its feature_store.yaml) to the registry, unless ``gate``
    holds the planned change."""
    from feast import FeatureStore
    from feast.repo_operations import _get_repo_contents, apply_total

    config = load_config(repo)
    project = str(config.project)
    with inside_repo(repo), feast_output() as output:
        # Importing first separates a broken repo from a failing apply, and names the Python error.
        parse_repo(repo)
        store = FeatureStore(repo_path=str(repo))
        registry = store.registry
        before = registry_snapshot(registry, project)
        impact = None
        if gate is not None:
            # Feast's own helper: it adds the project object a repo may leave out, as apply does.
            contents = _get_repo_contents(repo, project, config)
            planned = planned_snapshot(store, contents, before)
            impact = _judge(gate, project, before, planned, service_views(registry, project))
            if impact.held:
                return ApplyOutcome(project, diff(before, planned), before, [], {}, impact)
        try:
            apply_total(config, repo, skip_source_validation=False)
        except SystemExit:
            # Feast prints the reason, then exits.
            raise OperationFailed(f"feast apply failed: {output.last_line() or 'exited without a message'}") from None
        except Exception as error:
            raise OperationFailed(f"feast apply failed: {exception_line(error)}") from error
        after = registry_snapshot(registry, project)
        store = FeatureStore(repo_path=str(repo))
        default, refused = materialization_support(store, after.feature_views)
        _ensure_online_tables(store, project, default)
    return ApplyOutcome(
        project=project,
        changes=diff(before, after),
        after=after,
        default_materialized=default,
        not_materializable=refused,
        impact=impact,
    )


def _judge(
    gate: ImpactGate, project: str, before: Snapshot, planned: Snapshot, services_now: dict[str, list[str]]
) -> ImpactReport:
    changes = diff(before, planned)
    services = affected_services(changes, services_now)
    found: list[FoundVersion] = []
    error = None
    if services:
        if gate.find_versions is None:
            error = "no MLflow tracking URI is configured to look model versions up in"
        else:
            found, error = gate.find_versions(services)
    return build_report(
        digest=plan_hash(project, before, planned),
        objects=affected_objects(changes),
        services=services,
        models=impacted_models(found, services, gate.namespace, project),
        error=error,
        policy=gate.policy,
        approved_plan=gate.approved_plan,
    )


def _ensure_online_tables(store: object, project: str, views: list[str]) -> None:
    """Create any online table the registry says should exist and the store lacks.

    Feast updates the online store only for objects an apply changed: a project whose online store
    moved to a new path applies as "no changes" and leaves the new store empty, and the next
    materialization fails. Feast's own update creates what is missing and keeps what is there.
    """
    from feast import FeatureStore

    assert isinstance(store, FeatureStore)
    try:
        tables = [store.get_feature_view(name) for name in views]
        store._get_provider().update_infra(
            project=project,
            tables_to_delete=[],
            tables_to_keep=tables,
            entities_to_delete=[],
            entities_to_keep=store.list_entities(),
            partial=True,
        )
    except Exception as error:
        raise OperationFailed(
            f"the online store lacks tables for {', '.join(views)}: {exception_line(error)}"
        ) from error
