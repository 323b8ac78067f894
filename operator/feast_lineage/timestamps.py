"""Kubernetes-style timestamps: RFC 3339 in UTC, to the second."""

from __future__ import annotations

import datetime


def rfc3339(value: datetime.datetime) -> str:
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339() -> str:
    return rfc3339(datetime.datetime.now(datetime.timezone.utc))
