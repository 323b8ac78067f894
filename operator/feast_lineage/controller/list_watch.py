"""List, then watch from the list's resourceVersion, in a thread per scope, for as long as it runs.

The operator's own informer, without a cache: objects are decoded to plain dicts and handed to the
caller, who keeps what it needs. Used where Kopf's per-event machinery (deep copies of each body,
causes, progress) would cost more than the work the event asks for, and where Kopf does not run at
all (the webhook's project map is every replica's, Kopf runs on the leader only).

- A paged LIST (``limit``, ``continue``); a continue token that expired (410) lists again from the start.
- A WATCH from the list's resourceVersion with bookmarks; when the server ends it (after
  ``ApiTimeouts.watch_seconds``) the next one resumes from the last resourceVersion seen, bookmarks
  included, without listing again.
- A resourceVersion too old to resume from (410) lists again. The objects known before that the
  new list no longer holds are reported DELETED, so a deletion in the gap is not missed; of those it
  holds, only the new and the changed are reported (``LISTED``), so a relist after an outage passes
  what changed in the gap, not everything. Each key's UID and resourceVersion are kept for that.
- An ``ignorable`` test may tell from an event's text that the handler would drop it (a Job event
  that did not end the Job): such an ADDED or MODIFIED event is not decoded. Its key, identity and
  resourceVersion are read from the head of the line (:func:`glance`), as the API server writes it,
  so the watch's bookkeeping stays exact; a line that does not start that way is decoded.
- Errors back off from 1 s to 30 s; every request is bounded by the client's ``ApiTimeouts``
  (:mod:`.bounded_client`): a watch stream silent past its server-side end is taken for dead.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from feast_lineage.api import GROUP, VERSION
from feast_lineage.controller.errors import brief
from feast_lineage.controller.rest import BatchV1, CustomObjects
from feast_lineage.controller.settings import ApiTimeouts

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]
"""namespace ("" for a cluster-scoped object), name"""
Identity = tuple[str, str]
"""UID, resourceVersion"""
ListCall = Callable[..., Any]
"""A list method for one scope (its positional arguments bound), e.g. ``list_namespaced_pod``."""
LISTED = None
"""The event type of an object found by a (re)list rather than reported by the watch."""
OnEvent = Callable[[str | None, Obj], None]
"""Called with ``LISTED``, ``"ADDED"``, ``"MODIFIED"`` or ``"DELETED"`` and the object."""

Ignorable = Callable[[str], bool]
"""Whether an event's raw text shows that the handler would drop it; True only when that is sure."""

PAGE = 500
"""Objects per list request: a page's bodies are held only while they are handed on."""
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 30.0
QUICK_END_SECONDS = 1.0
"""A watch the server ends sooner than this is resumed after a pause (no busy loop)."""


class Expired(Exception):
    """The resourceVersion a watch resumed from is too old (410 Gone): list again."""


class WatchError(Exception):
    """The server ended a watch with an error other than an expired resourceVersion."""


def scopes(namespaces: list[str]) -> list[str | None]:
    """The namespaces to list or watch one by one; ``[None]`` (all of them) when none are named."""
    return list(namespaces) if namespaces else [None]


def custom_objects(custom: CustomObjects, plural: str, namespace: str | None) -> ListCall:
    """The list call of the operator's custom resource ``plural`` in one scope (None: the cluster)."""
    if namespace is None:
        return functools.partial(custom.list_cluster_custom_object, GROUP, VERSION, plural)
    return functools.partial(custom.list_namespaced_custom_object, GROUP, VERSION, namespace, plural)


def jobs(batch: BatchV1, namespace: str | None) -> ListCall:
    """The list call of Jobs in one scope (None: the cluster)."""
    if namespace is None:
        return batch.list_job_for_all_namespaces
    return functools.partial(batch.list_namespaced_job, namespace)


def key_of(body: Obj) -> Key:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def identity_of(body: Obj) -> Identity:
    """(UID, resourceVersion): what a relist compares an object by."""
    meta = body.get("metadata") or {}
    return str(meta.get("uid") or ""), str(meta.get("resourceVersion") or "")


def stub(key: Key, uid: str) -> Obj:
    """What a DELETED report of an object the watch missed carries: its identity only."""
    return {"metadata": {"namespace": key[0], "name": key[1], "uid": uid}}


def vanished(before: Mapping[Key, Identity], seen: Mapping[Key, Identity]) -> list[tuple[Key, str]]:
    """The objects (key, UID) known before a relist that it no longer holds: deleted in the gap."""
    return [(key, identity[0]) for key, identity in before.items() if key not in seen]


_HEAD = re.compile(
    # An event as the API server writes it: the type, then the object's TypeMeta and the head of its
    # ObjectMeta, in the order of their Go structs. Strings with escapes do not match (then: decode).
    r'\{"type":"(ADDED|MODIFIED)","object":\{"kind":"[^"\\]*","apiVersion":"[^"\\]*",'
    r'"metadata":\{"name":"([^"\\]+)",(?:"generateName":"[^"\\]*",)?"namespace":"([^"\\]+)",'
    r'(?:"selfLink":"[^"\\]*",)?"uid":"([^"\\]+)","resourceVersion":"([^"\\]+)"'
)


def glance(line: str) -> tuple[str, Key, Identity] | None:
    """The type, key and identity of a namespaced object's ADDED or MODIFIED event, read from the
    head of its line without decoding it; None for any other line (decode it)."""
    match = _HEAD.match(line)
    if match is None:
        return None
    kind, name, namespace, uid, version = match.groups()
    return kind, (namespace, name), (uid, version)


def is_expired(error: ApiException) -> bool:
    return bool(error.status == 410)


class ListWatch:
    """One resource in one scope. ``lists`` and ``watches`` count the requests begun (a relist is
    one more list; a watch resumed after the server ended it, one more watch)."""

    def __init__(
        self,
        what: str,
        call: ListCall,
        on_event: OnEvent,
        *,
        label_selector: str | None = None,
        on_synced: Callable[[], None] | None = None,
        timeouts: ApiTimeouts | None = None,
        page: int = PAGE,
        ignorable: Ignorable | None = None,
    ) -> None:
        self.what = what
        self.call = call
        self.on_event = on_event
        self.ignorable = ignorable
        self.ignored = 0
        """Events not decoded: the handler would have dropped them."""
        self.on_synced = on_synced
        self.label_selector = label_selector
        self.timeouts = timeouts or ApiTimeouts()
        self.page = page
        self.lists = 0
        self.watches = 0
        self.version: str | None = None
        """The last resourceVersion seen (None: list first)."""
        self.listed = threading.Event()
        """Set once the first list was handed on."""
        self._known: dict[Key, Identity] = {}
        self._stopping = threading.Event()
        self._response: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._forever, name=f"watch-{self.what}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current event; a stream waiting for the next one is cut now."""
        self._stopping.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):  # already closed
                response.shutdown()  # unblocks the watch thread's read

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _forever(self) -> None:
        backoff = FIRST_BACKOFF
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                if self.version is None:
                    self.relist()
                events = self.watch()
                backoff = FIRST_BACKOFF
                if not events and time.monotonic() - began < QUICK_END_SECONDS:
                    self._stopping.wait(QUICK_END_SECONDS)
            except Expired as expired:
                log.info("watch of %s expired (%s); listing again", self.what, expired)
                self.version = None
            except Exception as error:
                if self._stopping.is_set():
                    return
                log.warning("watch of %s failed: %s; retrying in %.0fs", self.what, brief(error), backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def _request(self, **arguments: Any) -> Any:
        return self.call(label_selector=self.label_selector, _preload_content=False, **arguments)

    def relist(self) -> str:
        """List every object, page by page, and hand each on (``LISTED``); then report the objects
        known before that the list no longer holds as DELETED. Returns the list's resourceVersion."""
        self.lists += 1
        seen: dict[Key, Identity] = {}
        token: str | None = None
        while True:
            try:
                body = json.loads(self._request(limit=self.page, **{"continue": token}).data)
            except ApiException as error:
                if token is None or not is_expired(error):
                    raise
                # The continue token outlived the server's snapshot: list again from the start.
                self.lists += 1
                seen, token = {}, None
                continue
            for item in body.get("items") or []:
                key, identity = key_of(item), identity_of(item)
                seen[key] = identity
                previous = self._known.get(key)
                if previous == identity:  # unchanged since the watch last saw it: nothing to tell
                    continue
                if previous is not None and previous[0] != identity[0]:  # deleted and made again in the gap
                    self.on_event("DELETED", stub(key, previous[0]))
                self.on_event(LISTED, item)
                self._known[key] = identity  # once handed on: one that failed is told again
            meta = body.get("metadata") or {}
            token = meta.get("continue") or None
            if token is None:
                version = str(meta.get("resourceVersion") or "")
                break
        for key, uid in vanished(self._known, seen):
            del self._known[key]
            self.on_event("DELETED", stub(key, uid))
        self.version = version
        self.listed.set()
        if self.on_synced is not None:
            self.on_synced()
        return version

    def watch(self) -> int:
        """Watch from :attr:`version` until the server ends the stream; returns how many events came.
        :class:`Expired` when the version is too old."""
        self.watches += 1
        try:
            response = self._request(
                watch=True,
                allow_watch_bookmarks=True,
                resource_version=self.version,
                timeout_seconds=self.timeouts.watch_seconds,
            )
        except ApiException as error:
            if is_expired(error):
                raise Expired(error.reason) from error
            raise
        self._response = response
        events = 0
        try:
            for line in iter_resp_lines(response):
                if self._stopping.is_set():
                    break
                if not line:
                    continue
                events += 1
                if self.ignorable is not None and (head := glance(line)) is not None and self.ignorable(line):
                    self.ignored += 1
                    kind, key, identity = head
                    self._seen(kind, key, identity)
                    self.version = identity[1]
                    continue
                self._dispatch(json.loads(line))
        finally:
            self._response = None
            response.release_conn()
        return events

    def _dispatch(self, event: Obj) -> None:
        kind, obj = event.get("type"), dict(event.get("object") or {})
        if kind == "ERROR":
            message = obj.get("message") or str(obj)
            if obj.get("code") == 410:
                raise Expired(message)
            raise WatchError(message)
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self.on_event(kind, obj)
            # Known once handed on: one whose handling failed is told again by a relist too.
            self._seen(kind, key_of(obj), identity_of(obj))
        # After the event was handed on: a failure to hand it on resumes from the version before it.
        if version:
            self.version = str(version)

    def _seen(self, kind: str, key: Key, identity: Identity) -> None:
        if kind == "DELETED":
            self._known.pop(key, None)
        else:
            self._known[key] = identity
