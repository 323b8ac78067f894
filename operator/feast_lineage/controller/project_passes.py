"""Which periodic passes a FeatureStoreProject needs, from the project as the watch last delivered it.

They come from one scheduler (:class:`.run_scheduler.RunScheduler`), not Kopf timers: a timer on a
resource makes Kopf keep the latest body of every object of it (with ``managedFields`` and Kopf's own
annotations, the largest part of a project in memory). A schedule
tick starts from the project as last seen, so that much is kept, stripped to what the tick reads,
for the projects that have a schedule only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from feast_lineage.domain.apply_gate import AWAITING_APPROVAL
from feast_lineage.domain.conditions import RECONCILING, STALLED
from feast_lineage.domain.project_state import SOURCE_AVAILABLE

Obj = dict[str, Any]

RESYNC, APPLYING, SOURCE_RETRY, SECRET_RETRY, AUDIT, SCHEDULE = (
    "resync",
    "applying",
    "source-retry",
    "secret-retry",
    "audit",
    "schedule",
)
WAITING_FOR_SECRET = frozenset({"SecretNotFound", "SecretKeyNotFound"})


@dataclass(frozen=True)
class ProjectIntervals:
    resync: float
    active_poll: float
    input_retry: float
    audit_retry: float
    schedule_tick: float

    def of(self, purpose: str) -> float:
        return {
            RESYNC: self.resync,
            APPLYING: self.active_poll,
            SOURCE_RETRY: self.active_poll,
            SECRET_RETRY: self.input_retry,
            AUDIT: self.audit_retry,
            SCHEDULE: self.schedule_tick,
        }[purpose]


def _condition(status: Obj, kind: str) -> Obj | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


def applying(status: Obj) -> bool:
    """An apply in flight: polled closely. A change that waits for a person is not (the approval
    annotation has its own handler, and the resync still looks)."""
    reconciling = _condition(status, RECONCILING) or {}
    return reconciling.get("status") == "True" and reconciling.get("reason") != AWAITING_APPROVAL


def has_pending_audit(status: Obj) -> bool:
    return bool(status.get("pendingAudit"))


def project_purposes(spec: Obj, status: Obj) -> set[str]:
    """The periodic passes a project with this spec and status needs."""
    wanted = {RESYNC}
    if applying(status):
        wanted.add(APPLYING)
    # Checked often; the reconciler's backoff decides when the source is actually asked again.
    if (_condition(status, SOURCE_AVAILABLE) or {}).get("status") == "False":
        wanted.add(SOURCE_RETRY)
    # Secrets are not watched (that would take list/watch on every Secret): a short retry instead.
    stalled = _condition(status, STALLED) or {}
    if stalled.get("status") == "True" and stalled.get("reason") in WAITING_FOR_SECRET:
        wanted.add(SECRET_RETRY)
    if has_pending_audit(status):
        wanted.add(AUDIT)
    if spec.get("materialization"):
        wanted.add(SCHEDULE)
    return wanted


KEPT_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp")


def schedule_view(body: Obj) -> Obj:
    """What a schedule tick reads of a project: no ``managedFields``, labels or annotations. The
    status write that follows carries this ``resourceVersion``: a stale view costs a fresh read, never
    a stale write."""
    meta = body.get("metadata") or {}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {key: meta[key] for key in KEPT_METADATA if key in meta},
        "spec": body.get("spec") or {},
        "status": body.get("status") or {},
    }


class LastSeen:
    """The schedule view of each scheduled project, as the watch last delivered it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bodies: dict[tuple[str, str], Obj] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._bodies)

    def observe(self, namespace: str, name: str, body: Obj | None) -> None:
        with self._lock:
            if body is None:
                self._bodies.pop((namespace, name), None)
            else:
                self._bodies[(namespace, name)] = schedule_view(body)

    def get(self, namespace: str, name: str) -> Obj | None:
        with self._lock:
            return self._bodies.get((namespace, name))
