"""The MLflow audit record of a runner's operation, with Feast-compatible and provenance tags."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from feast_lineage.audit import tags
from feast_lineage.audit.caps import join_capped
from feast_lineage.audit.record import AuditRecord
from feast_lineage.contract import ImpactReport
from feast_lineage.redaction import KNOWN
from feast_lineage.runner.changes import KINDS, KindChanges
from feast_lineage.runner.window import format_time

DEFAULT_OPS_SUFFIX = "-feast-ops"


@dataclass
class OperationFacts:
    """What the runner learned about the operation, as far as it got."""

    operation: str
    """apply | materialize | materialize_incremental (Feast's names)."""
    project: str | None = None
    git_commit: str | None = None
    error: str | None = None
    changes: Mapping[str, KindChanges] | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    feature_views: list[str] | None = None
    materialize_seconds: float | None = None
    impact: ImpactReport | None = None
    """apply: the plan's impact on registered models (held: nothing was written)."""
    impact_policy: str | None = None
    """apply: spec.applyPolicy.onImpact the plan was judged by."""
    rows_written: dict[str, int] | None = None


def build_record(
    facts: OperationFacts,
    *,
    audit_id: str,
    experiment: str | None,
    provenance: Mapping[str, str],
    start_ms: int,
    end_ms: int,
) -> AuditRecord:
    """One run: provenance tags as given, then the operation's own tags (which win on a clash)."""
    project = facts.project or "unknown"
    run_tags: dict[str, str] = dict(provenance)
    run_tags[tags.OPERATION] = facts.operation
    run_tags[tags.PROJECT] = project
    held = facts.impact is not None and facts.impact.held and not facts.error
    run_tags[tags.OUTCOME] = (
        tags.OUTCOME_FAILED if facts.error else tags.OUTCOME_HELD if held else tags.OUTCOME_SUCCEEDED
    )
    if facts.error:
        run_tags[tags.ERROR] = facts.error
    if facts.operation == "apply":
        run_tags[tags.REASON] = "ApplyFailed" if facts.error else "Applied"
    else:
        # The operator's reason for a run the runner saw through (a deadline stops it before it logs).
        run_tags[tags.REASON] = "MaterializationFailed" if facts.error else "Succeeded"
    if facts.git_commit:
        run_tags[tags.GIT_COMMIT] = facts.git_commit
    params: dict[str, str] = {}
    metrics: dict[str, float] = {tags.DURATION_SEC: round((end_ms - start_ms) / 1000, 4)}
    if facts.changes is not None:
        _apply_tags(facts.changes, run_tags, metrics)
    if facts.impact is not None:
        _impact_tags(facts.impact, run_tags)
    if facts.impact_policy is not None:
        params[tags.IMPACT_POLICY] = facts.impact_policy
    if facts.feature_views is not None:
        run_tags[tags.MATERIALIZE_FEATURE_VIEWS] = join_capped(facts.feature_views)
    for name, moment in (
        (tags.MATERIALIZE_START_DATE, facts.window_start),
        (tags.MATERIALIZE_END_DATE, facts.window_end),
    ):
        if moment is not None:
            # Feast logs the window as params; tags make it searchable as well.
            params[name] = run_tags[name] = format_time(moment)
    if facts.materialize_seconds is not None:
        metrics[tags.MATERIALIZE_DURATION_SEC] = round(facts.materialize_seconds, 4)
    if facts.rows_written is not None:
        metrics[tags.ROWS_WRITTEN] = float(sum(facts.rows_written.values()))
        for view, rows in facts.rows_written.items():
            metrics[f"{tags.ROWS_WRITTEN_PREFIX}{view}"] = float(rows)
    return AuditRecord(
        id=audit_id,
        experiment=experiment or f"{project}{DEFAULT_OPS_SUFFIX}",
        run_name=tags.run_name(
            facts.operation, project, provenance.get(tags.K8S_NAMESPACE), provenance.get(tags.K8S_NAME)
        ),
        status="FAILED" if facts.error else "FINISHED",
        start_time_ms=start_ms,
        end_time_ms=end_ms,
        # What Feast, git or user code said may echo a secret: the record is redacted as it is built.
        tags=KNOWN.redact_data(run_tags),
        params=KNOWN.redact_data(params),
        metrics=metrics,
    )


def _apply_tags(changes: Mapping[str, KindChanges], run_tags: dict[str, str], metrics: dict[str, float]) -> None:
    changed_tag = {
        "feature_views": (tags.FEATURE_VIEWS_CHANGED, tags.APPLY_FEATURE_VIEWS_COUNT),
        "feature_services": (tags.FEATURE_SERVICES_CHANGED, tags.APPLY_FEATURE_SERVICES_COUNT),
        "entities": (tags.ENTITIES_CHANGED, tags.APPLY_ENTITIES_COUNT),
    }
    for kind in KINDS:
        kind_changes = changes[kind]
        tag, metric = changed_tag[kind]
        names = kind_changes.names()
        # Feast counts the changed objects, not all of them.
        metrics[metric] = float(len(names))
        if names:
            run_tags[tag] = join_capped(names)
        for transition, transition_names in (
            ("created", kind_changes.created),
            ("updated", kind_changes.updated),
            ("deleted", kind_changes.deleted),
        ):
            if transition_names:
                run_tags[tags.transition_tag(kind, transition)] = join_capped(transition_names)


def _impact_tags(impact: ImpactReport, run_tags: dict[str, str]) -> None:
    run_tags[tags.IMPACT_PLAN_HASH] = impact.plan_hash
    run_tags[tags.IMPACT_HELD] = "true" if impact.held else "false"
    for tag, names in (
        (tags.IMPACT_OBJECTS, impact.objects),
        (tags.IMPACT_FEATURE_SERVICES, impact.feature_services),
        (tags.IMPACT_MODELS, [f"{model.name}/{model.version}" for model in impact.models]),
    ):
        if names:
            run_tags[tag] = join_capped(names)
    if impact.error:
        run_tags[tags.IMPACT_ERROR] = impact.error
