"""Size caps for values that travel in a 4096-byte termination message and in MLflow tags."""

from __future__ import annotations

from collections.abc import Iterable

from feast_lineage.contract import TRUNCATED_MARKER

TAG_VALUE_LIMIT = 500
"""Our cap on a tag or param value; MLflow allows 8000 (tags) / 6000 (params), the termination message far less."""


def cap_text(text: str, limit: int = TAG_VALUE_LIMIT) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``...(+N)`` (N characters dropped) if cut."""
    if len(text) <= limit:
        return text
    # The marker's own length depends on N, so shrink the kept part until the whole fits.
    keep = limit
    while keep > 0:
        marker = f"...(+{len(text) - keep})"
        if keep + len(marker) <= limit:
            return text[:keep] + marker
        keep -= 1
    return f"...(+{len(text)})"[:limit]


def join_capped(names: Iterable[str], limit: int = TAG_VALUE_LIMIT, separator: str = ",") -> str:
    """Names joined by ``separator``, dropping whole trailing names for a ``...(+N)`` marker (N names dropped)."""
    items = list(names)
    joined = separator.join(items)
    if len(joined) <= limit:
        return joined
    for keep in range(len(items) - 1, -1, -1):
        marker = TRUNCATED_MARKER.format(count=len(items) - keep)
        candidate = separator.join([*items[:keep], marker])
        if len(candidate) <= limit:
            return candidate
    return cap_text(joined, limit)


def cap_list(items: list[str], keep: int) -> list[str]:
    """The first ``keep`` items, plus a ``...(+N)`` item when some were dropped."""
    if len(items) <= keep:
        return list(items)
    return [*items[:keep], TRUNCATED_MARKER.format(count=len(items) - keep)]
