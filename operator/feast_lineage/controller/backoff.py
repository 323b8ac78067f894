"""Retry times per object that double after each failure, forgotten on success or deletion.

Entries of objects nobody asks about any more (deleted while waiting) are dropped once they are
long overdue, so the table stays as small as the set of objects being retried.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Backoff:
    def __init__(self, first: float, cap: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.first = min(first, cap)
        self.cap = cap
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, float]] = {}  # key -> (last delay, due time)

    def failed(self, key: str) -> float:
        """Record a failure; returns the delay until the next attempt is due.

        A failure before the current delay has passed (another trigger asked early) does not grow it:
        the delay doubles per real attempt, not per caller.
        """
        with self._lock:
            now = self.clock()
            previous = self._entries.get(key)
            if previous is not None and now < previous[1]:
                return previous[1] - now
            delay = self.first if previous is None else min(previous[0] * 2, self.cap)
            self._entries[key] = (delay, now + delay)
            self._sweep(now)
            return delay

    def defer(self, key: str, delay: float) -> None:
        """The next attempt is due in ``delay`` seconds, whatever the backoff says."""
        with self._lock:
            now = self.clock()
            self._entries[key] = (self.cap, now + delay)
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        stale = [key for key, (delay, due) in self._entries.items() if due < now - 10 * max(delay, self.cap)]
        for key in stale:
            del self._entries[key]

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def due(self, key: str) -> bool:
        with self._lock:
            entry = self._entries.get(key)
            return entry is None or self.clock() >= entry[1]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
