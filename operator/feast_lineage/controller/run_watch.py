"""The leader's run path, without Kopf: MaterializationJobs and their materialize Jobs from list-watches
of the operator's own (:mod:`.list_watch`), their passes on a pool of its own.

Kopf handled each run's events with deep copies of the body, causes, progress and loggers, and
added and removed its finalizer with PATCHes it computed as JSON diffs: about 10 ms of CPU per run,
most of a burst's latency on two cores. Here a watch thread decodes each event, brings the indexes
and the run scheduler up to date, and asks the domain (pure) what the run needs: a pass
(:func:`~feast_lineage.domain.materialization_state.pass_on_event`) or a step of its finalizer
(:func:`~feast_lineage.domain.materialization_state.finalizer_step`). The work is queued by run
(:class:`.pass_queue.PassQueue`, 8 threads like Kopf's): events of one run that come while it waits
make one pass, which starts from the latest body. Watch threads never wait on a pass.

The finalizer (``labels.RUN_FINALIZER``, the name Kopf used, so runs from before need nothing) is on
from a run's creation (the mutating webhook adds it: :func:`~feast_lineage.tenancy.admission.creation_patch`)
or else from its first pass, before its Job exists, until its audit record is delivered; then it comes
off in the same patch that labels the run settled, which takes it out of the watch (the history
costs nothing, see :mod:`.settled_runs`). A run deleted while unsettled waits for its record's
delivery or its bounded abandon (``AuditDeliveries.before_deletion``), looked at again by the run
scheduler every few seconds and at once when a delivery writes its status.

Periodic passes come from one scheduler (:mod:`.run_scheduler`), not a timer per run.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from feast_lineage.api import MATERIALIZATION_JOB_KIND, MATERIALIZATION_JOB_PLURAL
from feast_lineage.controller import run_finalizer, run_scheduler, settled_runs
from feast_lineage.controller.audit_redelivery import DELETION_POLL_SECONDS, AuditDeliveries
from feast_lineage.controller.backoff import Backoff
from feast_lineage.controller.index_loader import UNSETTLED
from feast_lineage.controller.indexes import Indexes, project_of
from feast_lineage.controller.kube import Kube, Obj
from feast_lineage.controller.list_watch import LISTED, ListWatch, custom_objects, jobs, key_of, scopes
from feast_lineage.controller.materialization_reconciler import MaterializationReconciler
from feast_lineage.controller.pass_queue import PassQueue
from feast_lineage.controller.settings import OperatorSettings
from feast_lineage.domain import labels
from feast_lineage.domain.materialization_state import HOLD, LABEL, RELEASE, SETTLE, finalizer_step, pass_on_event
from feast_lineage.domain.runner_outcome import job_ended, may_have_ended

log = logging.getLogger(__name__)

WORKERS = 8
"""Threads that run the runs' passes: as many as Kopf's worker threads that ran them before."""
FINALIZER = labels.RUN_FINALIZER
MATERIALIZE_JOBS = f"{labels.LABEL_MANAGED_BY}={labels.MANAGED_BY},{labels.LABEL_OPERATION}=materialize"
"""The label selector of the watch of Jobs: the operator's materialize Jobs only."""

Key = tuple[str, str]


@dataclass
class _Asked:
    """What the events of a run that wait for its pass asked for."""

    body: Obj | None
    """The run as last seen (None: read it afresh)."""
    passes: bool
    when: str
    """``listed`` or ``event``: how the run was found, for the settled count."""


class RunWatch:
    def __init__(
        self,
        kube: Kube,
        settings: OperatorSettings,
        indexes: Indexes,
        runs: MaterializationReconciler,
        audits: AuditDeliveries,
        workers: int = WORKERS,
    ) -> None:
        self.kube = kube
        self.indexes = indexes
        self.runs = runs
        self.audits = audits
        self._lock = threading.Lock()
        self._asked: dict[Key, _Asked] = {}
        self._queue = PassQueue(
            self._act,
            Backoff(settings.active_poll_seconds, settings.resync_seconds),
            workers=workers,
            name="run-passes",
        )
        self.scheduler = run_scheduler.RunScheduler(
            run_scheduler.Intervals(
                settings.active_poll_seconds,
                settings.resync_seconds,
                settings.audit_retry_seconds,
                DELETION_POLL_SECONDS,
            ),
            self._scheduled,
        )
        self._watches: list[ListWatch] = []
        for namespace in scopes(settings.namespaces):
            where = namespace or "all namespaces"
            self._watches.append(
                ListWatch(
                    f"runs in {where}",
                    custom_objects(kube.custom, MATERIALIZATION_JOB_PLURAL, namespace),
                    self.run_event,
                    label_selector=UNSETTLED,
                    timeouts=settings.api_timeouts,
                )
            )
            self._watches.append(
                ListWatch(
                    f"materialize Jobs in {where}",
                    jobs(kube.batch, namespace),
                    self.job_event,
                    label_selector=MATERIALIZE_JOBS,
                    timeouts=settings.api_timeouts,
                    # Most Job events are the Job controller's progress: not decoded (see job_event).
                    ignorable=lambda line: not may_have_ended(line),
                )
            )

    def start(self) -> None:
        self._queue.start()
        self.scheduler.start()
        for watch in self._watches:
            watch.start()

    def stop(self) -> None:
        for watch in self._watches:
            watch.stop()
        self.scheduler.stop()
        self._queue.stop()

    # -- on the watch threads: decode, decide, hand on ------------------------------------------

    def run_event(self, kind: str | None, body: Obj) -> None:
        """A run's event (``LISTED``: found by a list). It is indexed first: its own pass sees it among its peers."""
        namespace, name = key_of(body)
        deleted = kind == "DELETED"
        self.indexes.observe_run(namespace, name, None if deleted else body)
        status = body.get("status") or {}
        step = None if deleted else finalizer_step(body, FINALIZER)
        known = self.scheduler.observe(
            namespace, name, status.get("phase"), bool(status.get("pendingAudit")), deleted, step == RELEASE
        )
        passes = pass_on_event(kind, body, known, FINALIZER)
        if passes or step is not None:
            self.submit(namespace, name, body, passes, "listed" if kind is LISTED else "event")

    def job_event(self, kind: str | None, body: Obj) -> None:
        """A materialize Job's event: its run needs a pass when it ended or went. Its creation and the
        Job controller's progress updates tell the run nothing it does not know (pods that cannot
        start are the resync's): the watch does not even decode those whose text cannot hold a
        final condition (``may_have_ended``)."""
        owner = labels.controller_owner(body, MATERIALIZATION_JOB_KIND)
        if owner is None or (kind != "DELETED" and not job_ended(body)):
            return
        namespace = key_of(body)[0]
        # A finished run's Job has nothing more to tell it: only runs the index knows as unfinished.
        if self.indexes.project_of_run(namespace, owner) is not None:
            self.submit(namespace, owner, None, True)

    def submit(self, namespace: str, name: str, body: Obj | None, passes: bool, when: str = "event") -> None:
        """Queue the run; what it asked for joins what its earlier events asked for, if they still wait."""
        key = (namespace, name)
        with self._lock:
            asked = self._asked.get(key)
            if asked is None:
                self._asked[key] = _Asked(body, passes, when)
            else:
                asked.body = body if body is not None else asked.body
                asked.passes = asked.passes or passes
                asked.when = when
        self._queue.submit(namespace, name)

    def _scheduled(self, namespace: str, name: str, purpose: str) -> None:
        """A periodic pass of the run scheduler, on its threads."""
        if purpose == run_scheduler.AUDIT:
            self.audits.submit(MATERIALIZATION_JOB_KIND, namespace, name)
        elif purpose == run_scheduler.DELETING:
            self.submit(namespace, name, None, False)
        elif (project := self.indexes.project_of_run(namespace, name)) is not None:
            peers = self.indexes.peers(namespace, project)
            if purpose == run_scheduler.WAITING:
                # Often; the reconciler's backoff decides when a waiting run is actually looked at again.
                self.runs.poll_waiting(namespace, name, peers)
            else:
                # Job events report completion at once; this only catches pods that cannot start.
                self.runs.reconcile(namespace, name, peers)

    # -- on the pass threads ----------------------------------------------------------------------

    def _act(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        with self._lock:
            asked = self._asked.pop(key, None) or _Asked(None, False, "event")
        try:
            self._pass(namespace, name, asked)
        except Exception:
            # The queue retries it (with backoff), on a fresh read, asking for what this one did.
            with self._lock:
                again = self._asked.setdefault(key, _Asked(None, False, asked.when))
                again.passes = again.passes or asked.passes
            raise

    def _pass(self, namespace: str, name: str, asked: _Asked) -> None:
        body = asked.body or self.kube.get_custom(MATERIALIZATION_JOB_PLURAL, namespace, name)
        if body is None:
            return
        step = finalizer_step(body, FINALIZER)
        if step == RELEASE:
            self._deleting(body)
            return
        if step == HOLD:
            # On before the pass may create the Job. Changed meanwhile: its next event decides again.
            held = run_finalizer.hold(self.kube, body, FINALIZER)
            if held is None:
                return
            body = held
        # A settled run first: a pass asked for with it (a second "Job ended" event while the run's
        # last pass ran) has nothing to decide for a finished run, and no later event would settle it.
        if step == SETTLE:
            run_finalizer.settle(self.kube, body, FINALIZER, asked.when)
        elif step == LABEL:
            settled_runs.label_settled(self.kube, body, asked.when)
        elif asked.passes:
            peers = self.indexes.peers(namespace, project_of(dict(body.get("spec") or {})))
            self.runs.reconcile(namespace, name, peers, seen=body)

    def _deleting(self, body: Obj) -> None:
        """A run being deleted: its pending record first (delivered, or abandoned after a bounded
        wait), then the finalizer comes off. While it waits, the scheduler's deleting pass and the
        status write of a delivery bring it back here."""
        releasable = self.audits.releasable(MATERIALIZATION_JOB_KIND, body)
        if releasable is not None:
            run_finalizer.release(self.kube, releasable, FINALIZER)
