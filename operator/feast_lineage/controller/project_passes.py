"""Which passes a FeatureStoreProject needs, from the project as the watch last delivered it: the
periodic ones, and what a watch event asks for (a pass, a step of the finalizer, Kopf's leftovers off).

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

from feast_lineage.api import APPROVE_PLAN_ANNOTATION, GROUP
from feast_lineage.controller.run_scheduler import DELETING
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
    deleting: float

    def of(self, purpose: str) -> float:
        return {
            DELETING: self.deleting,
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


def project_purposes(spec: Obj, status: Obj, deleting: bool = False) -> set[str]:
    """The periodic passes a project with this spec and status needs. ``deleting``: it is being
    deleted and holds the operator's finalizer; only its deletion is looked at again (every few
    seconds, until its pending audit records are delivered or abandoned and the finalizer is off)."""
    if deleting:
        return {DELETING, AUDIT} if has_pending_audit(status) else {DELETING}
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


def approval(body: Obj) -> str | None:
    """The project's plan approval annotation, if any."""
    return ((body.get("metadata") or {}).get("annotations") or {}).get(APPROVE_PLAN_ANNOTATION)


def pass_on_event(event_type: str | None, body: Obj, approval_before: str | None) -> bool:
    """Whether a watch event of a project (``None``: found by a list) calls for a pass: one this
    process sees for the first time (created, or listed at a start or after a watch expired), a
    spec change (``metadata.generation`` ahead of the ``status.observedGeneration`` every written
    pass sets; a project's generation moves on spec changes only), or a change of its plan approval
    from ``approval_before``, the last value this process saw. Every other event is a status write
    (the operator's own, mostly) or metadata: nothing the pass decides on. A deletion is the
    finalizer's (:func:`finalizer_step`), not a pass's."""
    meta = body.get("metadata") or {}
    if event_type == "DELETED" or meta.get("deletionTimestamp"):
        return False
    if event_type != "MODIFIED":
        return True
    observed = (body.get("status") or {}).get("observedGeneration")
    return observed is None or meta.get("generation") != observed or approval(body) != approval_before


class Approvals:
    """The last plan approval seen of each project that has one (what :func:`pass_on_event`
    compares a modified project's with): Kopf kept it in each project's diff base annotation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, str], str] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def swap(self, namespace: str, name: str, body: Obj | None) -> str | None:
        """Record the approval of the project as ``body`` has it (None: it was deleted); returns the
        value seen before."""
        current = None if body is None else approval(body)
        with self._lock:
            before = self._values.pop((namespace, name), None)
            if current is not None:
                self._values[(namespace, name)] = current
        return before


HOLD, RELEASE = "hold", "release"
"""What the operator does with a project's finalizer (see :func:`finalizer_step`)."""


def finalizer_step(body: Obj, finalizer: str) -> str | None:
    """What a project as it is now needs of the operator's ``finalizer``: ``HOLD`` (put it on; the
    mutating webhook puts it on at creation, so only when the webhook was not there), ``RELEASE``
    (it is being deleted: once its pending audit records are delivered or abandoned, take it off)."""
    meta = body.get("metadata") or {}
    held = finalizer in (meta.get("finalizers") or [])
    if meta.get("deletionTimestamp"):
        return RELEASE if held else None
    return None if held else HOLD


KOPF_DIFF_BASE = f"{GROUP}/last-handled-configuration"
KOPF_PROGRESS_PREFIXES = tuple(
    f"{GROUP}/{handler}"
    for handler in ("project_changed", "project_approval_changed", "project_deleted", "touch-dummy")
)
"""What Kopf's handlers of projects (versions before the operator's own watch) kept in annotations:
their progress, keyed by handler id (shortened with a hash when long, hence prefixes), and the
"touch" it patched to wake a delayed handler."""


def kopf_leftovers(annotations: Obj | None) -> list[str]:
    """The annotations Kopf left on a project: its diff base (a copy of the spec, which roughly
    doubled every event and list page of the project) and its progress records."""
    return sorted(key for key in annotations or {} if key == KOPF_DIFF_BASE or key.startswith(KOPF_PROGRESS_PREFIXES))


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
