"""What happens to audit records waiting for MLflow: pure decisions, no I/O.

``status.pendingAudit`` is the one source of truth of what still has to reach MLflow. It is
bounded (the oldest records go first, counted and reported, never silently); records are
delivered independently (one that fails does not hold back the others); and a record that
can never be delivered as configured is moved aside to ``status.undeliverableAudit`` with its
reason instead of being retried forever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

MAX_PENDING_AUDIT = 100
"""Records kept for redelivery per object: a status stays far below etcd's object size limit."""
MAX_UNDELIVERABLE_AUDIT = 10
"""Records kept aside (newest) with the reason they cannot be delivered."""

AUDIT_DROPPED = "AuditRecordsDropped"
AUDIT_UNDELIVERABLE = "AuditRecordUndeliverable"
AUDIT_ABANDONED = "AuditRecordsAbandoned"

Record = dict[str, Any]
Outcome = Literal["delivered", "retry", "undeliverable"]


def record_id(record: Mapping[str, Any]) -> str:
    """The id of a compact audit record ("i", see AuditRecord.to_compact)."""
    return str(record.get("i", ""))


@dataclass(frozen=True)
class Capped:
    kept: list[Record]
    dropped: list[str]
    """Ids of the records dropped, oldest first."""


def add_pending(pending: Sequence[Record], record: Record, cap: int = MAX_PENDING_AUDIT) -> Capped:
    """``record`` appended (replacing an earlier copy of the same id); the oldest beyond ``cap`` dropped."""
    others = [item for item in pending if record_id(item) != record_id(record)]
    return cap_pending([*others, record], cap)


def dropped_message(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    return f"{len(ids)} audit record(s) never reached MLflow and were dropped, oldest first, to keep the cap: {shown}"


def cap_pending(pending: Sequence[Record], cap: int = MAX_PENDING_AUDIT) -> Capped:
    excess = max(len(pending) - cap, 0)
    return Capped(list(pending[excess:]), [record_id(item) for item in pending[:excess]])


@dataclass(frozen=True)
class Attempt:
    """What happened to one record in a delivery pass."""

    outcome: Outcome
    reason: str = ""
    mlflow: Any = None
    """The delivered run (an MlflowRunRef) when delivered."""


@dataclass(frozen=True)
class Settled:
    pending: list[Record]
    undeliverable: list[Record]
    delivered: dict[str, Any] = field(default_factory=dict)
    """The run of each delivered record, by id."""
    set_aside: list[tuple[str, str]] = field(default_factory=list)
    """(id, reason) of records moved aside by this pass."""
    dropped: list[str] = field(default_factory=list)
    """Ids of records moved aside earlier that no longer fit."""


def settle(
    pending: Sequence[Record],
    undeliverable: Sequence[Record],
    attempts: Mapping[str, Attempt],
    now: datetime,
    cap: int = MAX_UNDELIVERABLE_AUDIT,
) -> Settled:
    """The new ``pendingAudit`` and ``undeliverableAudit`` after a pass over (a snapshot of) ``pending``.

    ``pending`` is read fresh, after the pass: records added meanwhile stay. Records tried and still
    waiting go behind those not tried yet, so a record that keeps failing never holds back the others.
    """
    untried: list[Record] = []
    retry: list[Record] = []
    aside = list(undeliverable)
    delivered: dict[str, Any] = {}
    set_aside: list[tuple[str, str]] = []
    for record in pending:
        attempt = attempts.get(record_id(record))
        if attempt is None:
            untried.append(record)
        elif attempt.outcome == "delivered":
            delivered[record_id(record)] = attempt.mlflow
        elif attempt.outcome == "undeliverable":
            set_aside.append((record_id(record), attempt.reason))
            aside = [item for item in aside if record_id(item.get("record") or {}) != record_id(record)]
            aside.append({"record": record, "reason": attempt.reason, "since": now.isoformat()})
        else:
            retry.append(record)
    excess = max(len(aside) - cap, 0)
    dropped = [record_id(item.get("record") or {}) for item in aside[:excess]]
    return Settled([*untried, *retry], aside[excess:], delivered, set_aside, dropped)


@dataclass(frozen=True)
class DeletionVerdict:
    wait_seconds: float | None
    """Ask again after this long; None: let the object go."""
    abandoned: list[str] = field(default_factory=list)
    """Ids of records given up on (the bounded wait is over)."""


def on_deletion(
    pending: Sequence[Record], deleting_since: datetime | None, now: datetime, wait: timedelta, poll_seconds: float
) -> DeletionVerdict:
    """An object being deleted first lets its pending records be delivered; after ``wait`` they are
    abandoned, so a dead MLflow never makes anything undeletable."""
    if not pending:
        return DeletionVerdict(None)
    if deleting_since is not None and now - deleting_since >= wait:
        return DeletionVerdict(None, [record_id(record) for record in pending])
    return DeletionVerdict(poll_seconds)
