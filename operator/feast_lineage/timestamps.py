"""Kubernetes-style timestamps: RFC 3339 in UTC, to the second."""

from __future__ import annotations

import datetime


def rfc3339(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339() -> str:
    return rfc3339(datetime.datetime.now(datetime.UTC))


def utc_now() -> datetime.datetime:
    """Now in UTC, to the second, as status timestamps are written."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def parse_rfc3339(value: str) -> datetime.datetime:
    """An RFC 3339 time as the API server writes it (``Z`` or an offset)."""
    parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.UTC)
