"""kstatus conditions: Ready, Reconciling, Stalled (plus a resource's own), and their transitions.

``lastTransitionTime`` moves only when a condition's status changes, and every
condition carries the generation it was computed for, as the Kubernetes API
conventions ask. Transitions are returned separately so Events are emitted on
changes only, never on every resync.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from feast_lineage.api import Condition

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
MESSAGE_LIMIT = 32768


@dataclass(frozen=True)
class DesiredCondition:
    type: str
    status: bool
    reason: str
    message: str


@dataclass(frozen=True)
class Transition:
    type: str
    status: bool
    reason: str
    message: str


def kstatus(ready: bool, reconciling: bool, stalled: bool, reason: str, message: str) -> list[DesiredCondition]:
    """The three standard conditions, sharing one reason and message."""
    return [
        DesiredCondition(READY, ready, reason, message),
        DesiredCondition(RECONCILING, reconciling, reason if reconciling else "Idle", message if reconciling else ""),
        DesiredCondition(STALLED, stalled, reason if stalled else "Healthy", message if stalled else ""),
    ]


def merge_conditions(
    previous: list[Condition], desired: list[DesiredCondition], generation: int | None, now: datetime
) -> tuple[list[Condition], list[Transition]]:
    """New condition list (previous ones not in ``desired`` are kept) and the transitions it makes."""
    by_type = {c.type: c for c in previous}
    result: list[Condition] = []
    transitions: list[Transition] = []
    for want in desired:
        old = by_type.pop(want.type, None)
        status = "True" if want.status else "False"
        moved = old is None or old.status != status
        changed = moved or old is None or old.reason != want.reason
        result.append(
            Condition(
                type=want.type,
                status=status,
                observed_generation=generation,
                last_transition_time=now if moved or old is None else old.last_transition_time,
                reason=want.reason,
                message=want.message[:MESSAGE_LIMIT],
            )
        )
        if changed:
            transitions.append(Transition(want.type, want.status, want.reason, want.message))
    result.extend(by_type.values())
    return result, transitions


def is_true(conditions: list[dict[str, Any]], kind: str) -> bool:
    """On a status as stored (the handlers' filters see plain dicts)."""
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def find(conditions: list[Condition], kind: str) -> Condition | None:
    return next((c for c in conditions if c.type == kind), None)
