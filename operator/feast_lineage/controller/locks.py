"""One reconcile at a time per object, across every handler that may touch it."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class ObjectLocks:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)

    @contextmanager
    def hold(self, kind: str, namespace: str, name: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks[f"{kind}/{namespace}/{name}"]
        with lock:
            yield
