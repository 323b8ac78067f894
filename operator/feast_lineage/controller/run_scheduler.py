"""One scheduler for the periodic passes of MaterializationJobs, instead of a Kopf timer per run.

A Kopf timer on a resource makes Kopf keep the latest body of every object of that resource in
memory (finished ones too, timer or not) and hold each with a finalizer: with thousands of finished
runs that is most of the operator's memory. Here one thread keeps, for each run that needs it, when
its next pass is due, fed by the watch: a waiting run is looked at often (the reconciler's backoff
decides whether the look costs anything), an active one every resync, one with an undelivered audit
record every audit retry, one being deleted while its record waits for MLflow every few seconds
(until it is delivered or abandoned). A finished run with nothing pending costs nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from feast_lineage.domain.materialization_state import TERMINAL

log = logging.getLogger(__name__)

WAITING, ACTIVE, AUDIT, DELETING = "waiting", "active", "audit", "deleting"
Key = tuple[str, str]
Pass = tuple[str, str, str]
"""namespace, name, purpose"""


class PassIntervals(Protocol):
    def of(self, purpose: str) -> float:
        """Seconds between two passes of this purpose."""
        ...


@dataclass(frozen=True)
class Intervals:
    waiting: float
    active: float
    audit: float
    deleting: float

    def of(self, purpose: str) -> float:
        return {WAITING: self.waiting, ACTIVE: self.active, AUDIT: self.audit, DELETING: self.deleting}[purpose]


def purposes(phase: str | None, pending_audit: bool, deleting: bool = False) -> set[str]:
    """Which periodic passes a run with this phase needs; ``deleting``: it is being deleted and
    holds the operator's finalizer (its deletion is looked at again until the finalizer is off)."""
    wanted = set()
    # A run with no phase yet has its first pass from its watch event; polling it too would only
    # queue a second pass behind the first in a burst. The resync still catches a failed one.
    if phase == "Pending":
        wanted.add(WAITING)
    if phase not in TERMINAL:
        wanted.add(ACTIVE)
    if pending_audit:
        wanted.add(AUDIT)
    if deleting:
        wanted.add(DELETING)
    return wanted


class DueTimes:
    """When each run's passes are next due (no threads: the scheduler's bookkeeping)."""

    def __init__(self, intervals: PassIntervals) -> None:
        self.intervals = intervals
        self._due: dict[Key, dict[str, float]] = {}

    def __len__(self) -> int:
        return len(self._due)

    def observe(self, key: Key, wanted: set[str], now: float) -> bool:
        """The run as last seen: a new purpose is first due one interval from now (the event that
        revealed it has its own handler); a purpose no longer wanted is dropped, and so is the run.
        Returns whether the run was known already (had a pass due)."""
        current = self._due.get(key)
        updated = {purpose: (current or {}).get(purpose, now + self.intervals.of(purpose)) for purpose in wanted}
        if updated:
            self._due[key] = updated
        else:
            self._due.pop(key, None)
        return current is not None

    def forget(self, key: Key) -> None:
        self._due.pop(key, None)

    def pop_due(self, now: float) -> list[Pass]:
        """The passes due by ``now``, each scheduled again one interval later."""
        ready = []
        for (namespace, name), due in self._due.items():
            for purpose, at in due.items():
                if at <= now:
                    ready.append((namespace, name, purpose))
                    due[purpose] = now + self.intervals.of(purpose)
        return ready


class RunScheduler:
    """Runs ``act(namespace, name, purpose)`` for each due pass on a few threads of its own. The
    projects' periodic passes use one too (their purposes and intervals: :mod:`.project_passes`)."""

    def __init__(
        self,
        intervals: PassIntervals,
        act: Callable[[str, str, str], None],
        workers: int = 4,
        tick: float = 0.5,
        name: str = "run-scheduler",
    ) -> None:
        self._times = DueTimes(intervals)
        self._act = act
        self._tick = tick
        self._lock = threading.Lock()
        self._busy: set[Pass] = set()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def __len__(self) -> int:
        with self._lock:
            return len(self._times)

    def observe(
        self, namespace: str, name: str, phase: str | None, pending_audit: bool, deleted: bool, deleting: bool = False
    ) -> bool:
        """Returns whether the run was known already: an unfinished run is, from its first event on."""
        wanted = set() if deleted else purposes(phase, pending_audit, deleting)
        return self.observe_purposes(namespace, name, wanted)

    def observe_purposes(self, namespace: str, name: str, wanted: set[str]) -> bool:
        """The object as last seen needs these periodic passes (none: it is forgotten). Returns
        whether it was known already."""
        with self._lock:
            return self._times.observe((namespace, name), wanted, time.monotonic())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._tick):
            with self._lock:
                ready = [item for item in self._times.pop_due(time.monotonic()) if item not in self._busy]
                self._busy.update(ready)
            for item in ready:
                self._pool.submit(self._run, item)

    def _run(self, item: Pass) -> None:
        try:
            self._act(*item)
        except Exception:  # a pass's own errors are reported on the run; a bug must not stop the loop
            log.exception("scheduled %s pass of %s/%s failed", item[2], item[0], item[1])
        finally:
            with self._lock:
                self._busy.discard(item)
