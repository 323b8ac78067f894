"""Which feature views ``feast materialize`` materializes, asked of Feast itself.

Without names Feast materializes online, enabled feature views and stream feature views, and
on-demand feature views that write to the online store; by name it refuses an on-demand view
that does not, a disabled view, a view neither online nor offline and a label view. The runner
reports both at apply time and uses the same selection at materialize time, so "all feature
views" of a MaterializationJob is exactly what ``feast materialize`` would do with the repo.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from feast_lineage.runner.errors import exception_line


def feast_selection(store: Any, names: list[str] | None) -> list[Any]:
    """The views Feast materializes for ``names`` (None: its default); ValueError names a refused view.

    Feast's own selection (a private method, stable across the pinned Feast minor version) rather
    than a copy of its rules, which change with Feast.
    """
    views: list[Any] = store._get_feature_views_to_materialize(names)
    return views


def materialization_support(store: Any, view_names: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """(the views materialized by default, {view: why Feast refuses it by name}) among ``view_names``."""
    default = sorted({view.name for view in feast_selection(store, None)})
    refused: dict[str, str] = {}
    for name in sorted(set(view_names) - set(default)):
        try:
            feast_selection(store, [name])
        except ValueError as error:
            refused[name] = str(error) or exception_line(error)
    return default, refused
