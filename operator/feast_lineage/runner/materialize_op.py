"""``feast materialize`` (Range) and ``materialize-incremental`` (Incremental), reporting the window used."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from feast_lineage.runner.console import feast_output
from feast_lineage.runner.errors import BadInput, OperationFailed, exception_line
from feast_lineage.runner.feast_repo import inside_repo, load_config
from feast_lineage.runner.materializable import feast_selection
from feast_lineage.runner.row_count import counting_rows
from feast_lineage.runner.window import ViewHistory, format_time, incremental_start


@dataclass(frozen=True)
class MaterializeRequest:
    incremental: bool
    start: datetime | None
    """Range only."""
    end: datetime
    feature_views: list[str]
    """Empty: the feature views ``feast materialize`` materializes (see :mod:`.materializable`)."""


@dataclass(frozen=True)
class MaterializeOutcome:
    project: str
    start: datetime | None
    end: datetime
    feature_views: list[str]
    duration_seconds: float
    rows_written: dict[str, int]
    """Rows written to the online store, per feature view (0 for a view whose window had none)."""


@dataclass
class MaterializePlan:
    """What is about to run, known before Feast starts (so a failure can still report it)."""

    project: str
    start: datetime | None
    end: datetime
    feature_views: list[str]


def plan_materialize(repo: Path, request: MaterializeRequest, now: datetime) -> tuple[Any, MaterializePlan]:
    """The store and the plan: names checked against the registry, the incremental start computed."""
    from feast import FeatureStore

    config = load_config(repo)
    with inside_repo(repo), feast_output():
        store = FeatureStore(repo_path=str(repo))
        views = {view.name: view for view in store.registry.list_all_feature_views(store.project, allow_cache=False)}
        unknown = [name for name in request.feature_views if name not in views]
        if unknown:
            raise BadInput(f"feature view(s) not in project {config.project}: {', '.join(unknown)}")
        try:
            chosen = feast_selection(store, request.feature_views or None)
        except ValueError as error:
            raise BadInput(f"feature view cannot be materialized: {error}") from None
    start = request.start
    if request.incremental:
        start = incremental_start(
            (
                ViewHistory(view.name, getattr(view, "most_recent_end_time", None), getattr(view, "ttl", None))
                for view in chosen
                if hasattr(view, "most_recent_end_time")
            ),
            now,
        )
        if start is not None and start > request.end:
            # Feast would run and load nothing; say why instead.
            raise BadInput(
                f"incremental window is empty: it starts at {format_time(start)} (the last materialized end, "
                f"or now minus the ttl) after its end {format_time(request.end)}; use mode Range for that window"
            )
    plan = MaterializePlan(
        project=str(config.project), start=start, end=request.end, feature_views=[view.name for view in chosen]
    )
    return store, plan


def run_materialize(repo: Path, store: Any, plan: MaterializePlan, request: MaterializeRequest) -> MaterializeOutcome:
    names = request.feature_views or None
    began = time.monotonic()
    with inside_repo(repo), feast_output() as output, counting_rows(store, plan.feature_views) as rows:
        try:
            if request.incremental:
                store.materialize_incremental(plan.end, names)
            else:
                store.materialize(plan.start, plan.end, names)
        except SystemExit:
            raise OperationFailed(
                f"feast materialize failed: {output.last_line() or 'exited without a message'}"
            ) from None
        except Exception as error:
            raise OperationFailed(f"feast materialize failed: {exception_line(error)}") from error
    return MaterializeOutcome(
        project=plan.project,
        start=plan.start,
        end=plan.end,
        feature_views=plan.feature_views,
        duration_seconds=time.monotonic() - began,
        rows_written=dict(rows),
    )
