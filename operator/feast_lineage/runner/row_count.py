"""Rows a materialization writes to the online store, counted per feature view.

Feast reports no row counts. Every compute engine writes through the provider's online store
instance (``online_write_batch(config, table, data, progress)``, one entry of ``data`` per entity
row), so counting the rows handed to that one method, on that one instance, counts what was written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

_PARAMETERS = ("config", "table", "data", "progress")


@contextlib.contextmanager
def counting_rows(store: Any, feature_views: list[str]) -> Iterator[dict[str, int]]:
    """Count the rows ``store`` writes to its online store while the block runs; every view in
    ``feature_views`` starts at zero, so a view that got no rows is reported as 0, not left out."""
    counts = dict.fromkeys(feature_views, 0)
    online = getattr(store._get_provider(), "online_store", None)
    if online is None:
        yield counts
        return
    write = online.online_write_batch

    def counted(*args: Any, **kwargs: Any) -> Any:
        named = dict(zip(_PARAMETERS, args, strict=False)) | kwargs
        table, data = named.get("table"), named.get("data")
        name = str(getattr(table, "name", table))
        counts[name] = counts.get(name, 0) + (len(data) if data is not None else 0)
        return write(*args, **kwargs)

    online.online_write_batch = counted
    try:
        yield counts
    finally:
        # The instance attribute shadowed the class's method: removing it restores that.
        with contextlib.suppress(AttributeError):
            del online.online_write_batch
