"""kstatus conditions: Ready, Reconciling, Stalled (plus a resource's own), and their transitions.

``lastTransitionTime`` moves only when a condition's status changes, and every
condition carries the generation it was computed for, as the Kubernetes API
conventions ask. Transitions are returned separately so Events are emitted on
changes only, never on every resync.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"


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
    previous: list[dict[str, Any]], desired: list[DesiredCondition], generation: int | None, now: str
) -> tuple[list[dict[str, Any]], list[Transition]]:
    """New condition list (previous ones not in ``desired`` are kept) and the transitions it makes."""
    by_type = {c.get("type"): c for c in previous}
    result: list[dict[str, Any]] = []
    transitions: list[Transition] = []
    for want in desired:
        old = by_type.pop(want.type, None)
        status = "True" if want.status else "False"
        changed = old is None or old.get("status") != status or old.get("reason") != want.reason
        moved = old is None or old.get("status") != status
        condition = {
            "type": want.type,
            "status": status,
            "observedGeneration": generation,
            "lastTransitionTime": now if moved or old is None else old.get("lastTransitionTime", now),
            "reason": want.reason,
            "message": want.message[:32768],
        }
        if generation is None:
            condition.pop("observedGeneration")
        result.append(condition)
        if changed:
            transitions.append(Transition(want.type, want.status, want.reason, want.message))
    result.extend(by_type.values())
    return result, transitions


def is_true(conditions: list[dict[str, Any]], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)
