"""Leader election on a coordination.k8s.io Lease, with the Kubernetes client's own elector.

Every replica runs the elector in a thread. The holder renews the Lease; the others wait until it
has not been renewed for a lease duration, then take it over (an update at the resourceVersion they
read, so only one of them can). What the client's elector leaves out is added here:

- a leader that cannot renew within the deadline - or whose renew call hangs - is reported lost
  (the caller ends the process: a replica that may no longer lead must not act a moment longer);
- a replica that stops gracefully hands the Lease back (no holder), so the next takes it at once
  instead of a lease duration later, and stops renewing first so it cannot take it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import urllib3
from kubernetes import client
from kubernetes.leaderelection import electionconfig
from kubernetes.leaderelection.leaderelection import LeaderElection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from feast_lineage.controller import metrics
from feast_lineage.controller.bounded_client import BoundedApiClient
from feast_lineage.controller.errors import brief
from feast_lineage.controller.settings import LeaderElectionSettings

log = logging.getLogger(__name__)


class _Lock(LeaseLock):  # type: ignore[misc]  # the client is untyped
    """The client's Lease lock, on the operator's API client rather than the process default. Each
    request is bounded by the renew deadline, as Kubernetes' own electors bound each try: a leader has
    given up by then anyway, and a candidate's try that hangs would only delay its next."""

    def __init__(self, api: client.ApiClient, settings: LeaderElectionSettings) -> None:
        super().__init__(settings.name, settings.namespace, settings.identity)
        if isinstance(api, BoundedApiClient):
            api = BoundedApiClient(api.configuration, api.timeouts.capped(settings.renew_deadline_seconds))
        self.api_instance = client.CoordinationV1Api(api)


class _Election(LeaderElection):  # type: ignore[misc]  # the client is untyped
    """The client's elector, made stoppable: once stopping, it never writes the Lease again."""

    def __init__(self, config: electionconfig.Config, stopping: threading.Event) -> None:
        super().__init__(config)
        self.stopping = stopping
        self.calls = threading.Lock()

    def try_acquire_or_renew(self) -> bool:
        with self.calls:
            if self.stopping.is_set():
                return False
            try:
                return bool(super().try_acquire_or_renew())
            except (urllib3.exceptions.HTTPError, OSError) as error:
                # The client's lock handles API errors only; the API server unreachable is a failed try too.
                log.warning("leader election: the API server did not answer: %s", error)
                return False


class Leadership:
    """Whether this replica leads; ``on_lost`` is called (from another thread) when it stops leading
    without having been asked to."""

    def __init__(self, api: client.ApiClient, settings: LeaderElectionSettings, on_lost: Callable[[str], None]) -> None:
        self.settings = settings
        self.on_lost = on_lost
        self.lock = _Lock(api, settings)
        self.leading = threading.Event()
        self.stopping = threading.Event()
        self.election = _Election(
            electionconfig.Config(
                self.lock,
                lease_duration=settings.lease_seconds,
                renew_deadline=settings.renew_deadline_seconds,
                retry_period=settings.retry_seconds,
                onstarted_leading=self._started,
                onstopped_leading=self._stopped,
            ),
            self.stopping,
        )
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name="leader-watchdog", daemon=True)
        # Each try logs at INFO ("yet to finish lease_duration..."); this module logs the transitions.
        logging.getLogger("leaderelection").setLevel(logging.WARNING)

    @property
    def where(self) -> str:
        return f"Lease {self.settings.namespace}/{self.settings.name}"

    def start(self) -> None:
        log.info("%s: waiting to lead as %s", self.where, self.settings.identity)
        metrics.set_leader(False)
        self._thread.start()

    def wait(self, stop: threading.Event) -> bool:
        """Block until this replica leads (True) or ``stop`` is set (False)."""
        while not stop.is_set():
            if self.leading.wait(0.5):
                return True
        return False

    def alive(self) -> bool:
        return self._thread.is_alive() or self.stopping.is_set()

    def release(self) -> None:
        """Stop renewing and, when this replica holds the Lease, leave it without a holder."""
        self.stopping.set()
        with self.election.calls:  # a try under way finishes first; none starts after it
            if not self.leading.is_set():
                return
            try:
                lease = self.lock.api_instance.read_namespaced_lease(self.settings.name, self.settings.namespace)
                if lease.spec is None or lease.spec.holder_identity != self.settings.identity:
                    return
                lease.spec.holder_identity = None
                lease.spec.lease_duration_seconds = 1
                self.lock.api_instance.replace_namespaced_lease(self.settings.name, self.settings.namespace, lease)
                log.info("%s: released", self.where)
            except Exception as error:  # the API server refused or did not answer: it expires instead
                log.warning("%s: could not release it (it expires instead): %s", self.where, brief(error))
            finally:
                self.leading.clear()
                metrics.set_leader(False)

    def _run(self) -> None:
        try:
            self.election.run()
        except Exception:
            log.exception("%s: the election failed", self.where)
            if self.leading.is_set() and not self.stopping.is_set():
                self.on_lost("the election failed")

    def _started(self) -> None:
        log.info("%s: leading as %s", self.where, self.settings.identity)
        self.leading.set()
        metrics.set_leader(True)
        self._watchdog.start()

    def _stopped(self) -> None:
        if self.stopping.is_set():
            return
        self.on_lost(f"not renewed within {self.settings.renew_deadline_seconds}s")

    def _watch(self) -> None:
        """A renew call that hangs never returns to the elector's deadline check: check it here."""
        deadline_ms = self.settings.renew_deadline_seconds * 1000
        while not self.stopping.is_set():
            time.sleep(self.settings.retry_seconds / 2)
            if self.stopping.is_set():
                return
            record = self.election.observed_record
            renewed_ms = self.election.observed_time_milliseconds
            if record is not None and record.holder_identity != self.settings.identity:
                self.on_lost(f"the Lease is held by {record.holder_identity}")
                return
            if time.time() * 1000 - renewed_ms > deadline_ms:
                self.on_lost(f"not renewed for {self.settings.renew_deadline_seconds}s")
                return
