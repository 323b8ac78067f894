"""The event-time window of a materialization (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from feast_lineage.runner.errors import BadInput

CLOCK_SKEW = timedelta(seconds=60)
"""An end this far past the runner's clock is accepted: the operator's clock may run ahead."""
ZERO_TTL_LOOKBACK = timedelta(weeks=52)
"""Feast's start for a feature view with ttl 0 and no earlier materialization."""


@dataclass(frozen=True)
class ViewHistory:
    """What Feast uses to choose where an incremental materialization of one view starts."""

    name: str
    most_recent_end: datetime | None
    ttl: timedelta | None


def parse_time(text: str, what: str) -> datetime:
    """An RFC 3339 timestamp as an aware UTC datetime (a naive one is taken as UTC)."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadInput(f"{what} is not an RFC 3339 timestamp: {text!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def check_end(end: datetime, now: datetime) -> datetime:
    if end > now + CLOCK_SKEW:
        raise BadInput(f"materialization window ends in the future: {format_time(end)} is after {format_time(now)}")
    return end


def range_window(start: datetime, end: datetime, now: datetime) -> tuple[datetime, datetime]:
    """``[start, end)`` for a Range materialization; raises :class:`BadInput` if it is empty or reaches the future."""
    if end <= start:
        raise BadInput(f"materialization window ends before it starts: {format_time(start)} to {format_time(end)}")
    return start, check_end(end, now)


def incremental_start(views: Iterable[ViewHistory], now: datetime) -> datetime | None:
    """Earliest start Feast's ``materialize_incremental`` uses across ``views``.

    Per view Feast starts at the end of its most recent materialization, else at ``now - ttl``,
    else (ttl 0) a year back; a view with neither is an error Feast raises itself, so it is
    skipped here. ``None`` when no view has a start.
    """
    starts: list[datetime] = []
    for view in views:
        if view.most_recent_end is not None:
            start = view.most_recent_end
        elif view.ttl is None:
            continue
        elif view.ttl.total_seconds() > 0:
            start = now - view.ttl
        else:
            start = now - ZERO_TTL_LOOKBACK
        starts.append(start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC))
    return min(starts) if starts else None


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as Kubernetes writes times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
