"""Fitting a :class:`RunnerResult` into the termination message (pure functions).

Kubernetes keeps 4096 bytes. The ``counts`` always stay. What matters least goes first: the ``current``
lists and what can be materialized (the registry has them), then list tails, then the audit record's params
and tag values (the run still gets created with its id, outcome and times), then long messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from feast_lineage.audit.caps import cap_list, cap_text
from feast_lineage.contract import TERMINATION_MESSAGE_LIMIT, ImpactReport, ObjectChanges, RunnerResult

_KEPT_AUDIT_TAGS = ("featurelineage.audit_id", "featurelineage.outcome", "feast.operation", "feast.project")


def fit_result(result: RunnerResult, limit: int = TERMINATION_MESSAGE_LIMIT) -> str:
    """The result's JSON, shrunk step by step until it takes at most ``limit`` UTF-8 bytes."""
    for candidate in _shrinking(result):
        text = candidate.to_json()
        if len(text.encode()) <= limit:
            return text
    raise ValueError(f"a runner result cannot be made to fit {limit} bytes")


def _shrinking(result: RunnerResult) -> Iterator[RunnerResult]:
    yield result
    # The operator then falls back to the names it had and lets Feast pick the views of a run.
    result = result.model_copy(update={"current": None, "default_materialized": None, "not_materializable": None})
    yield result
    for keep in (50, 20, 10, 5, 2, 0):
        yield (result := _cap_lists(result, keep))
    audit = result.audit
    if audit is not None:
        for value_limit, essentials_only in ((200, False), (60, False), (60, True)):
            audit = _shrink_audit(audit, value_limit, essentials_only)
            yield (result := result.model_copy(update={"audit": audit}))
    yield (
        result := result.model_copy(
            update={"error": _cut(result.error, 300), "mlflow_error": _cut(result.mlflow_error, 300)}
        )
    )
    # Last resort: the outcome alone. Losing the audit record beats losing the whole message.
    yield RunnerResult(
        operation=result.operation,
        ok=result.ok,
        error=_cut(result.error, 200),
        duration_seconds=result.duration_seconds,
        git_commit=result.git_commit,
        counts=result.counts,
        mlflow_error=_cut(result.mlflow_error, 200),
        impact=_cap_impact(result, 0),
    )


def _cap_lists(result: RunnerResult, keep: int) -> RunnerResult:
    changes = result.changes
    if changes is not None:
        changes = ObjectChanges(
            feature_views=cap_list(changes.feature_views, keep),
            feature_services=cap_list(changes.feature_services, keep),
            entities=cap_list(changes.entities, keep),
        )
    views = cap_list(result.feature_views, keep) if result.feature_views is not None else None
    return result.model_copy(update={"changes": changes, "feature_views": views, "impact": _cap_impact(result, keep)})


def _cap_impact(result: RunnerResult, keep: int) -> ImpactReport | None:
    """The impact's lists cut to ``keep`` entries (never the plan hash nor whether the apply is held)."""
    impact = result.impact
    if impact is None:
        return None
    lists = (impact.objects, impact.feature_services, impact.models)
    dropped = sum(max(0, len(items) - keep) for items in lists)
    return impact.model_copy(
        update={
            "objects": impact.objects[:keep],
            "feature_services": impact.feature_services[:keep],
            "models": impact.models[:keep],
            "truncated": impact.truncated + dropped,
            "error": _cut(impact.error, 300),
        }
    )


def _shrink_audit(audit: dict[str, Any], value_limit: int, essentials_only: bool) -> dict[str, Any]:
    """The compact audit record (see ``AuditRecord.to_compact``) with shorter tag values and no params."""
    shrunk = {key: value for key, value in audit.items() if key != "p"}
    tags: dict[str, str] = dict(audit.get("tg") or {})
    if essentials_only:
        tags = {key: value for key, value in tags.items() if key in _KEPT_AUDIT_TAGS}
    shrunk["tg"] = {key: cap_text(str(value), value_limit) for key, value in tags.items()}
    return shrunk


def _cut(text: str | None, limit: int) -> str | None:
    return None if text is None else cap_text(text, limit)
