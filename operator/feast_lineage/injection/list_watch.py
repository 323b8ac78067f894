"""List, then watch from the list's resourceVersion, in a thread per scope, forever.

Beside Kopf's own watches: the webhook's project map must be fed on every replica, Kopf runs on
the leader only. A watch that ends is resumed; one whose resourceVersion expired (410) lists again at
once; errors back off up to 30 s. The server ends each watch after ``ApiTimeouts.watch_seconds``,
and the client takes a stream silent a little longer for dead (see controller/bounded_client.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from feast_lineage.controller.settings import ApiTimeouts

log = logging.getLogger(__name__)

Obj = dict[str, Any]
ListCall = Callable[..., Any]
"""A client list method for one scope (its positional arguments bound), e.g. ``list_namespaced_pod``."""


class ListWatch:
    def __init__(
        self,
        what: str,
        call: ListCall,
        on_list: Callable[[list[Obj]], None],
        on_event: Callable[[str, Obj], None],
        stopping: threading.Event,
        **kwargs: Any,
    ) -> None:
        self.what = what
        self.call = call
        self.kwargs = kwargs
        self.on_list = on_list
        self.on_event = on_event
        self.stopping = stopping
        self.listed = threading.Event()
        """Set once the first list was handed to ``on_list``."""

    def start(self) -> None:
        threading.Thread(target=self._forever, name=f"watch-{self.what}", daemon=True).start()

    def _forever(self) -> None:
        backoff = 1.0
        while not self.stopping.is_set():
            try:
                body = json.loads(self.call(_preload_content=False, **self.kwargs).data)
                self.on_list(list(body.get("items") or []))
                self.listed.set()
                backoff = 1.0
                # Events as plain dicts: no typed model to look up (nor import) from the list method.
                stream = watch.Watch(return_type="object")
                version = str(body["metadata"]["resourceVersion"])
                for event in stream.stream(
                    self.call, resource_version=version, timeout_seconds=ApiTimeouts.watch_seconds, **self.kwargs
                ):
                    if self.stopping.is_set():
                        stream.stop()
                        return
                    if event["type"] not in ("ADDED", "MODIFIED", "DELETED"):
                        # An ERROR carries a Status, not an object: list again, after a pause.
                        log.info("watch of %s ended: %s", self.what, event["raw_object"].get("message"))
                        time.sleep(backoff)
                        break
                    self.on_event(str(event["type"]), dict(event["raw_object"]))
            except ApiException as error:
                if error.status != 410:  # 410: the resourceVersion expired; list again at once
                    log.warning("watch of %s failed: %s; retrying in %.0fs", self.what, error.reason, backoff)
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
            except Exception as error:
                log.warning("watch of %s failed: %s; retrying in %.0fs", self.what, error, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
