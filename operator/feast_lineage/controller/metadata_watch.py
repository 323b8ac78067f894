"""A list-watch of one resource's metadata only, paged, on a thread of its own.

The operator needs of a ConfigMap only that it exists, changed or went, and its labels and owner
(a project's repo is read by the pass, fresh). Kopf's watch would list every ConfigMap of the cluster
at each start in one unpaged answer, content included, and keep a task and the body of each while
handling it: at 1,000 projects some 3,000 ConfigMaps (each project's repo, the operator's rendered
ConfigMaps and repo snapshots), a start's high-water mark that the interpreter never gives back.

Here the API server sends ``PartialObjectMetadata`` (no ``data``), a page of :data:`PAGE` at a time,
and the watch resumes from the list's resourceVersion. What stays between events is each object's
resourceVersion, by key: when the watch's version is too old (410 Gone), the resource is listed
again and only the difference is reported (:func:`relisted`), so a relist after a long outage passes
only the projects whose ConfigMaps changed while the watch was away.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from feast_lineage.controller.rest import Rest

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]
"""(namespace, name)"""
Handler = Callable[[str | None, Obj], None]
"""Called with the event's type (``ADDED``, ``MODIFIED``, ``DELETED``; ``None`` for an object of the
first list) and ``{"metadata": ...}``, on the watch's thread."""

METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
PAGE = 500
"""Objects per list request: a page is held only while it is handled."""
GONE = 410


class Expired(Exception):
    """The version the watch resumes from is older than the API server keeps: list again."""


def key_of(meta: Obj) -> Key:
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _without_managed_fields(meta: Obj) -> Obj:
    meta.pop("managedFields", None)
    return meta


def check_error(event: Obj) -> None:
    """A watch's ERROR event as an exception: :class:`Expired` for 410 Gone (the version the watch
    resumed from is no longer kept: list again), else a :class:`RuntimeError` (resume after a pause)."""
    if event.get("type") != "ERROR":
        return
    status = event.get("object") or {}
    if status.get("code") == GONE:
        raise Expired(status.get("message"))
    raise RuntimeError(f"watch error {status.get('code')}: {status.get('message')}")


class Known:
    """What is kept of an object between events: its version, and its owners (a deletion a relist
    finds is reported with them, as a watch's DELETED event would have been)."""

    __slots__ = ("owners", "version")

    def __init__(self, meta: Obj) -> None:
        self.version = str(meta.get("resourceVersion") or "")
        self.owners: list[Obj] | None = meta.get("ownerReferences") or None

    def gone(self, key: Key) -> Obj:
        meta: Obj = {"namespace": key[0], "name": key[1]}
        if self.owners:
            meta["ownerReferences"] = self.owners
        return meta


def relisted(known: dict[Key, Known], listed: dict[Key, Obj]) -> list[tuple[str, Obj]]:
    """The events a relist stands for: ``listed`` (metadata by key) against what was ``known``.
    New objects are ADDED, those whose version moved MODIFIED, those gone DELETED (with their name,
    namespace and owners as last known); unchanged ones nothing."""
    events: list[tuple[str, Obj]] = []
    for key, meta in listed.items():
        before = known.get(key)
        if before is None:
            events.append(("ADDED", meta))
        elif before.version != meta.get("resourceVersion"):
            events.append(("MODIFIED", meta))
    for key in sorted(known.keys() - listed.keys()):
        events.append(("DELETED", known[key].gone(key)))
    return events


class MetadataWatch:
    """List ``path`` (a collection: ``/api/v1/configmaps``, ``/api/v1/namespaces/{ns}/configmaps``)
    once with :meth:`list_once`, then :meth:`start` watching it from there, for ever."""

    def __init__(
        self,
        rest: Rest,
        path: str,
        handler: Handler,
        *,
        watch_seconds: int,
        retry_seconds: float,
        name: str,
    ) -> None:
        self._rest = rest
        self._path = path
        self._handler = handler
        self._watch_seconds = watch_seconds
        self._retry_seconds = retry_seconds
        self._name = name
        self._known: dict[Key, Known] = {}  # what a relist is compared with
        self.version = ""
        """The resourceVersion the watch resumes from; empty: list first."""
        self._stop = threading.Event()
        self._stream: Any = None  # the open watch response, closed by stop()
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._known)

    def list_once(self) -> int:
        """List every object (each handed over as ``None``, as its page comes) and remember where the
        watch resumes; returns how many. A list whose continue token expires halfway (410) starts
        over: what it delivered again is delivered twice, which the handler takes as the same state."""
        while True:
            self._known = {}
            try:
                for meta in self._listed():
                    self._known[key_of(meta)] = Known(meta)
                    self._deliver(None, meta)
            except Expired:
                log.info("list of %s expired (410) halfway; listing again", self._path)
                continue
            return len(self._known)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"watch-{self._name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()  # the blocked read ends now, not at the server's timeout

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the loop ---------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.version:
                    self._relist()
                self._watch()
            except Expired:
                log.info("watch of %s expired (410); listing again", self._path)
                self.version = ""
            except Exception as error:  # the API server away, a dropped stream: resume after a pause
                if not self._stop.is_set():
                    log.warning("watch of %s failed (%s); resuming", self._path, error)
                    self._stop.wait(self._retry_seconds)

    def _relist(self) -> None:
        listed = {key_of(meta): meta for meta in self._listed()}
        events = relisted(self._known, listed)
        self._known = {key: Known(meta) for key, meta in listed.items()}
        for kind, meta in events:
            self._deliver(kind, meta)

    def _listed(self) -> Iterator[Obj]:
        """Every object's metadata, a page at a time; sets :attr:`version` to the list's. A continue
        token that expires halfway raises :class:`Expired` (the caller lists again)."""
        token: str | None = None
        while True:
            try:
                response = self._rest.request(
                    "GET", self._path, {"limit": PAGE, "continue": token}, accept=METADATA_LIST
                )
            except ApiException as error:
                if error.status == GONE:
                    raise Expired() from error
                raise
            page = json.loads(response.data)
            # managedFields is most of an object's metadata, and nothing here reads it.
            yield from (_without_managed_fields(item.get("metadata") or {}) for item in page.get("items") or [])
            meta = page.get("metadata") or {}
            if token is None:
                self.version = str(meta.get("resourceVersion") or "")
            token = meta.get("continue") or None
            if token is None:
                return

    def _watch(self) -> None:
        """One watch request from :attr:`version`, until the server ends it."""
        arguments = {
            "watch": True,
            "resource_version": self.version,
            "allow_watch_bookmarks": True,
            "timeout_seconds": self._watch_seconds,
        }
        try:
            self._stream = self._rest.request("GET", self._path, arguments, accept=METADATA)
        except ApiException as error:
            if error.status == GONE:
                raise Expired() from error
            raise
        try:
            for line in iter_resp_lines(self._stream):
                if self._stop.is_set():
                    return
                if line:
                    self._event(json.loads(line))
        finally:
            self._stream.release_conn()
            self._stream = None

    def _event(self, event: Obj) -> None:
        check_error(event)
        kind, obj = event.get("type"), event.get("object") or {}
        meta = _without_managed_fields(obj.get("metadata") or {})
        version = str(meta.get("resourceVersion") or "")
        if version:
            self.version = version
        if kind == "BOOKMARK":
            return
        key = key_of(meta)
        if kind == "DELETED":
            self._known.pop(key, None)
        else:
            self._known[key] = Known(meta)
        self._deliver(str(kind), meta)

    def _deliver(self, kind: str | None, meta: Obj) -> None:
        try:
            self._handler(kind, {"metadata": meta})
        except Exception:  # one handler's failure must not stop the watch of every other object
            log.exception("handling %s of %s/%s failed", kind, meta.get("namespace"), meta.get("name"))
