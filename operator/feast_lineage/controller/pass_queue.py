"""Passes asked for by watch events, run on a few threads of the operator's own, retried until they succeed.

Kopf runs a handler per object in a task of its own that holds the object's body and every event
queued behind it until the handler returns. A start lists every project at once: with the passes
run inside Kopf's handlers, a thousand projects waited for Kopf's worker threads, each holding its
body and Kopf's per-object machinery, and that peak left the interpreter's memory fragmented for
good. Here a handler only names the project and returns: what waits is a key, and a pass re-reads
the project when its turn comes.

Kopf stores its diff base when a handler returns, before the pass has happened, so Kopf would not
ask again for a change whose pass fails: a failed pass is retried here, with backoff, until one
succeeds or a newer ask replaces it. A project asked for again while waiting is passed over once; one
asked for while its pass runs is passed again after it, so no change is missed.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from feast_lineage.controller.backoff import Backoff

log = logging.getLogger(__name__)

Key = tuple[str, str]
"""namespace, name"""


class PassQueue:
    def __init__(
        self,
        act: Callable[[str, str], object],
        retry: Backoff,
        workers: int = 4,
        name: str = "project-passes",
    ) -> None:
        self._act = act
        self._retry = retry
        self._name = name
        self._workers = workers
        self._cond = threading.Condition()
        self._ready: deque[Key] = deque()
        self._queued: set[Key] = set()  # in _ready
        self._running: set[Key] = set()
        self._again: set[Key] = set()  # asked for while its pass ran
        self._retries: dict[Key, float] = {}  # key -> when its retry is due
        self._due: list[tuple[float, Key]] = []  # heap over _retries (stale entries skipped)
        self._stopped = False
        self._threads: list[threading.Thread] = []

    def __len__(self) -> int:
        """Projects waiting for a pass or a retry."""
        with self._cond:
            return len(self._queued) + len(self._retries)

    def submit(self, namespace: str, name: str) -> None:
        """Ask for a pass; returns at once."""
        with self._cond:
            self._enqueue((namespace, name))

    def start(self) -> None:
        for index in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"{self._name}-{index}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _enqueue(self, key: Key) -> None:
        self._retries.pop(key, None)  # a pass now replaces a retry later
        if key in self._running:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._ready.append(key)
            self._cond.notify()

    def _promote_due(self, now: float) -> float | None:
        """Retries due by ``now`` join the ready ones; returns the seconds until the next is due."""
        while self._due:
            at, key = self._due[0]
            if self._retries.get(key) != at:
                heapq.heappop(self._due)  # replaced by a newer ask
            elif at <= now:
                heapq.heappop(self._due)
                self._enqueue(key)
            else:
                return at - now
        return None

    def _next(self) -> Key | None:
        with self._cond:
            while not self._stopped:
                wait = self._promote_due(time.monotonic())
                if self._ready:
                    key = self._ready.popleft()
                    self._queued.discard(key)
                    self._running.add(key)
                    return key
                self._cond.wait(wait)
            return None

    def _work(self) -> None:
        while (key := self._next()) is not None:
            failed = False
            try:
                self._act(*key)
            except Exception:
                failed = True
                log.exception("a pass of %s/%s failed; it is retried", *key)
            retry_key = f"{key[0]}/{key[1]}"
            delay = self._retry.failed(retry_key) if failed else 0.0
            if not failed:
                self._retry.forget(retry_key)
            with self._cond:
                self._running.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    self._enqueue(key)
                elif failed:
                    at = time.monotonic() + delay
                    self._retries[key] = at
                    heapq.heappush(self._due, (at, key))
                    self._cond.notify()
