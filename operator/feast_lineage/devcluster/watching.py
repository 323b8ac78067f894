"""List then watch one kind of object for ever, handing each change to a callback (an informer, small)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("local-node")

Handler = Callable[[str, dict[str, Any]], None]
"""Called with ``ADDED`` / ``MODIFIED`` / ``DELETED`` and the object as JSON (a relisting replays ``ADDED``)."""


def watch_forever(list_function: Callable[..., Any], handler: Handler, stopping: threading.Event) -> None:
    resource_version = ""
    while not stopping.is_set():
        try:
            if not resource_version:
                data = json.loads(list_function(_preload_content=False).data)
                for item in data["items"]:
                    handler("ADDED", item)
                resource_version = data["metadata"]["resourceVersion"]
            stream = watch.Watch().stream(
                list_function, resource_version=resource_version, timeout_seconds=60, allow_watch_bookmarks=True
            )
            for event in stream:
                raw = event["raw_object"]
                if event["type"] == "ERROR":
                    resource_version = ""
                    break
                resource_version = raw["metadata"]["resourceVersion"]
                if event["type"] != "BOOKMARK":
                    handler(event["type"], raw)
        except ApiException as error:
            if error.status != 410:
                log.warning("watch failed: %s; retrying", error.reason)
                stopping.wait(1)
            resource_version = ""
        except Exception:
            log.exception("watch loop error; relisting")
            resource_version = ""
            stopping.wait(1)


def start_watch(name: str, list_function: Callable[..., Any], handler: Handler, stopping: threading.Event) -> None:
    threading.Thread(
        target=watch_forever, args=(list_function, handler, stopping), name=f"watch-{name}", daemon=True
    ).start()
