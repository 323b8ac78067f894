"""The leader's project path, without Kopf: FeatureStoreProjects from a list-watch of the operator's own
(:mod:`.list_watch`), their passes on a pool of its own, as the run path does (:mod:`.run_watch`).

Kopf queued every event of a project for the project's own worker, whole: at a first start each
project's first writes (Kopf's finalizer, Kopf's diff base, the operator's status) came back as
whole-project events and waited there, 13-18 MiB of them at a thousand projects. Here a watch
thread decodes each event, brings the indexes, the run path's project copies and the scheduler up
to date, asks :mod:`.project_passes` (pure) what the project needs, and drops the body: what waits
for a pass thread is a key and a few flags (:class:`_Asked`), and the pass reads the project afresh.

What asks for a pass (:func:`~.project_passes.pass_on_event`): a project seen for the first time
(created, or listed at a start: Kopf's resume), a spec change (``metadata.generation`` ahead of
``status.observedGeneration``, which every written pass sets), a change of its plan approval (the
last value seen is kept here, for annotated projects only), every event of one of its apply Jobs
(a second list-watch here), and ConfigMap events (:meth:`ProjectWatch.submit`). The queue
(:class:`.pass_queue.PassQueue`) coalesces them and retries a failed pass with backoff.

The finalizer (``labels.RUN_FINALIZER``, the name Kopf used, so projects from before need nothing)
is on from a project's creation (the mutating webhook adds it:
:func:`~feast_lineage.tenancy.admission.creation_patch`) or else from its first pass, before any
apply. A project deleted while audit records of it wait for MLflow keeps it until they are
delivered or abandoned after a bounded wait (``AuditDeliveries.before_deletion``), looked at again
by the scheduler every few seconds and at once when a delivery writes its status; then its metric
series go and the finalizer comes off.

Projects from versions on Kopf carry its annotations: a copy of the spec (its diff base, which
roughly doubled every event and list page of a project) and its handlers' progress. The first
pass after an upgrade takes them off, in the same conditional patch as the finalizer's if that is due.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from feast_lineage.api import FEATURE_STORE_PROJECT_KIND, FEATURE_STORE_PROJECT_PLURAL
from feast_lineage.controller import project_passes, run_finalizer
from feast_lineage.controller.audit_redelivery import DELETION_POLL_SECONDS, AuditDeliveries
from feast_lineage.controller.backoff import Backoff
from feast_lineage.controller.index_loader import PROJECT_PAGE
from feast_lineage.controller.indexes import Indexes
from feast_lineage.controller.kube import Kube, Obj
from feast_lineage.controller.list_watch import ListWatch, custom_objects, jobs, key_of, scopes
from feast_lineage.controller.logs import object_fields
from feast_lineage.controller.pass_queue import PassQueue
from feast_lineage.controller.project_cache import ProjectCache
from feast_lineage.controller.project_passes import HOLD, RELEASE, finalizer_step
from feast_lineage.controller.project_reconciler import ProjectReconciler
from feast_lineage.controller.run_scheduler import DELETING, RunScheduler
from feast_lineage.controller.schedule_reconciler import ScheduleReconciler
from feast_lineage.controller.settings import OperatorSettings
from feast_lineage.domain import labels

log = logging.getLogger(__name__)

WORKERS = 4
"""Threads of the projects' pass queue: passes asked for by project events, a start's included."""
FINALIZER = labels.RUN_FINALIZER
PLURAL = FEATURE_STORE_PROJECT_PLURAL
APPLY_JOBS = f"{labels.LABEL_MANAGED_BY}={labels.MANAGED_BY},{labels.LABEL_OPERATION}=apply"
"""The label selector of the watch of Jobs: the operator's apply Jobs only."""

Key = tuple[str, str]


@dataclass
class _Asked:
    """What the events of a project that wait for its pass asked for: flags only, never a body (a
    start's thousand listed projects would otherwise wait here whole)."""

    passes: bool = False
    finalizer: bool = False
    """A step of the finalizer may be due (held, or released on a deletion): read the project first."""
    strip: bool = False
    """Kopf's leftover annotations are on it: take them off (once, after an upgrade)."""
    gone: bool = False
    """The project was deleted: forget what the operator kept of it."""

    def join(self, other: _Asked) -> None:
        self.passes = self.passes or other.passes
        self.finalizer = self.finalizer or other.finalizer
        self.strip = self.strip or other.strip
        self.gone = self.gone or other.gone


class ProjectWatch:
    def __init__(
        self,
        kube: Kube,
        settings: OperatorSettings,
        indexes: Indexes,
        copies: ProjectCache,
        projects: ProjectReconciler,
        schedules: ScheduleReconciler,
        audits: AuditDeliveries,
        workers: int = WORKERS,
    ) -> None:
        self.kube = kube
        self.indexes = indexes
        self.copies = copies
        self.projects = projects
        self.schedules = schedules
        self.audits = audits
        self._lock = threading.Lock()
        self._asked: dict[Key, _Asked] = {}
        self._approvals = project_passes.Approvals()
        self._last_seen = project_passes.LastSeen()
        self._queue = PassQueue(
            self._act, Backoff(settings.active_poll_seconds, settings.resync_seconds), workers=workers
        )
        self.scheduler = RunScheduler(
            project_passes.ProjectIntervals(
                resync=settings.resync_seconds,
                active_poll=settings.active_poll_seconds,
                input_retry=settings.input_retry_seconds,
                audit_retry=settings.audit_retry_seconds,
                schedule_tick=settings.schedule_tick_seconds,
                deleting=DELETION_POLL_SECONDS,
            ),
            self._scheduled,
            name="project-scheduler",
        )
        self._watches: list[ListWatch] = []
        for namespace in scopes(settings.namespaces):
            where = namespace or "all namespaces"
            self._watches.append(
                ListWatch(
                    f"projects in {where}",
                    custom_objects(kube.custom, PLURAL, namespace),
                    self.project_event,
                    timeouts=settings.api_timeouts,
                    page=PROJECT_PAGE,  # a project is about 23 KiB decoded
                )
            )
            self._watches.append(
                ListWatch(
                    f"apply Jobs in {where}",
                    jobs(kube.batch, namespace),
                    self.job_event,
                    label_selector=APPLY_JOBS,
                    timeouts=settings.api_timeouts,
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

    def project_event(self, kind: str | None, body: Obj) -> None:
        """A project's event (``LISTED``: found by a list)."""
        namespace, name = key = key_of(body)
        if kind == "DELETED":
            self.indexes.observe_project(namespace, name, None)
            self.copies.observe(namespace, name, None)
            self.scheduler.observe_purposes(namespace, name, set())
            self._last_seen.observe(namespace, name, None)
            self._approvals.swap(namespace, name, None)
            self._ask(key, _Asked(gone=True))
            return
        spec, status = dict(body.get("spec") or {}), dict(body.get("status") or {})
        self.indexes.observe_project(namespace, name, spec)
        self.copies.observe(namespace, name, body)
        step = finalizer_step(body, FINALIZER)
        wanted = project_passes.project_purposes(spec, status, deleting=step == RELEASE)
        self._last_seen.observe(namespace, name, body if project_passes.SCHEDULE in wanted else None)
        self.scheduler.observe_purposes(namespace, name, wanted)
        before = self._approvals.swap(namespace, name, body)
        passes = project_passes.pass_on_event(kind, body, before)
        annotations = (body.get("metadata") or {}).get("annotations")
        strip = step != RELEASE and bool(project_passes.kopf_leftovers(annotations))
        if passes or strip or step is not None:
            self._ask(key, _Asked(passes=passes, finalizer=step is not None, strip=strip))

    def job_event(self, kind: str | None, body: Obj) -> None:
        """An apply Job's event: its project's pass decides what the Job's state means (pending,
        superseded, applied, failed); the queue coalesces a burst of them into one."""
        owner = labels.controller_owner(body, FEATURE_STORE_PROJECT_KIND)
        if owner is not None:
            self.submit(key_of(body)[0], owner)

    def submit(self, namespace: str, name: str) -> None:
        """Ask for a pass (a ConfigMap or an apply Job of the project changed, a Git answer came)."""
        self._ask((namespace, name), _Asked(passes=True))

    def _ask(self, key: Key, asked: _Asked) -> None:
        """Queue the project; what it asks for joins what its earlier events asked for, if they still wait."""
        with self._lock:
            waiting = self._asked.setdefault(key, _Asked())
            waiting.join(asked)
        self._queue.submit(*key)

    def _scheduled(self, namespace: str, name: str, purpose: str) -> None:
        """A periodic pass of the project scheduler, on its threads."""
        if purpose == project_passes.AUDIT:
            self.audits.submit(FEATURE_STORE_PROJECT_KIND, namespace, name)
        elif purpose == project_passes.SOURCE_RETRY:
            self.projects.retry_source(namespace, name)
        elif purpose == project_passes.SCHEDULE:
            seen = self._last_seen.get(namespace, name)
            self.schedules.tick(namespace, name, self.indexes.peers(namespace, name), seen=seen)
        elif purpose == project_passes.RESYNC:
            self.projects.resync(namespace, name)
        elif purpose == DELETING:
            self._ask((namespace, name), _Asked(finalizer=True))
        else:
            self.projects.reconcile(namespace, name)

    # -- on the pass threads ----------------------------------------------------------------------

    def _act(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        with self._lock:
            asked = self._asked.pop(key, None) or _Asked()
        try:
            self._pass(namespace, name, asked)
        except Exception:
            # The queue retries it (with backoff), asking for what this one did.
            with self._lock:
                self._asked.setdefault(key, _Asked()).join(asked)
            raise

    def _pass(self, namespace: str, name: str, asked: _Asked) -> None:
        if asked.gone:
            self.projects.deleted(namespace, name)
        if asked.finalizer or asked.strip:
            body = self.kube.get_custom(PLURAL, namespace, name)
            if body is None:
                return
            if finalizer_step(body, FINALIZER) == RELEASE:
                self._deleting(namespace, name, body)
                return
            if not self._metadata(body):
                # Changed (or gone) since the read: decide again on a fresh one, the pass still asked for.
                self._ask((namespace, name), _Asked(passes=asked.passes, finalizer=True, strip=True))
                return
        if asked.passes:
            self.projects.reconcile(namespace, name)

    def _metadata(self, body: Obj) -> bool:
        """Hold the project with the finalizer if it is not, and take Kopf's leftover annotations off
        (see :func:`~.project_passes.kopf_leftovers`), in one patch conditional on the version read;
        False if the project changed or went meanwhile."""
        meta = body.get("metadata") or {}
        patch: dict[str, object] = {}
        if finalizer_step(body, FINALIZER) == HOLD:
            patch["finalizers"] = [*(meta.get("finalizers") or []), FINALIZER]
        leftovers = project_passes.kopf_leftovers(meta.get("annotations"))
        if leftovers:
            patch["annotations"] = dict.fromkeys(leftovers)  # null: a merge patch removes the key
            log.info("removing %d annotation(s) left by Kopf", len(leftovers), extra=object_fields(*key_of(body)))
        return not patch or run_finalizer.patch_metadata(self.kube, body, patch, PLURAL) is not None

    def _deleting(self, namespace: str, name: str, body: Obj) -> None:
        """A project being deleted: its pending audit records first (delivered, or abandoned after a
        bounded wait), then its metric series go and the finalizer comes off. While it waits, the
        scheduler's deleting pass and the status write of a delivery bring it back here."""
        releasable = self.audits.releasable(FEATURE_STORE_PROJECT_KIND, body)
        if releasable is not None:
            self.projects.deleted(namespace, name)
            run_finalizer.release(self.kube, releasable, FINALIZER, PLURAL)
