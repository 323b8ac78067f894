"""Admission under way while replicas come and go: a thread that keeps asking the API server to admit
a MaterializationJob (a server-side dry run, so nothing is stored), which it can only do by calling
the operator's webhooks through their Service (the validating one fails closed)."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from types import TracebackType

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from feast_lineage.api import GROUP, VERSION
from tests.cluster.projects import range_run_manifest

PAUSE_SECONDS = 0.05
"""Between two admissions of one worker."""
WORKERS = 4
"""Admissions at once: the API server then keeps several connections to the replicas open, and at
almost any moment one of them carries a review."""


@dataclass
class AdmissionLoad:
    """``with AdmissionLoad(api, namespace, "drivers") as load:`` ... then ``load.admitted`` and
    ``load.refused`` (the API server's message for every admission that failed, or the client's
    error). Only the fail-closed webhook's failures show: the others' are ignored by design."""

    api: client.ApiClient
    namespace: str
    project: str
    admitted: int = 0
    refused: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> AdmissionLoad:
        self._threads = [
            threading.Thread(target=self._run, name=f"admission-load-{n}", daemon=True) for n in range(WORKERS)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        while not self._stop.is_set():
            manifest = range_run_manifest(f"load-{uuid.uuid4().hex[:8]}", self.project)
            try:
                custom.create_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, "materializationjobs", manifest, dry_run="All"
                )
                with self._lock:
                    self.admitted += 1
            except ApiException as error:
                with self._lock:
                    self.refused.append(f"{error.status}: {error.body}")
            except Exception as error:  # a timeout, a reset: counted too, and the worker goes on
                with self._lock:
                    self.refused.append(f"{type(error).__name__}: {error}")
            self._stop.wait(PAUSE_SECONDS)
