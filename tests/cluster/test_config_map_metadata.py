"""The operator's list-watch of ConfigMaps asks for their metadata only, against the real API server:
a paged list and a watch that carry no content, and a deletion the watch missed reported by the
relist (what a 410 Gone leads to)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator

import pytest
from kubernetes import client

from feast_lineage.controller import list_watch
from feast_lineage.controller.rest import CoreV1, Rest
from tests.cluster_helpers import wait_until

pytestmark = pytest.mark.cluster

Event = tuple[str | None, str]


class Recorder:
    """The events a watch delivered, as (type, name), and the names of any that carried content."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[Event] = []
        self.with_content: list[str] = []

    def __call__(self, kind: str | None, body: dict[str, object]) -> None:
        meta = body["metadata"]
        assert isinstance(meta, dict)
        with self.lock:
            self.events.append((kind, str(meta["name"])))
            if "data" in body or "binaryData" in body:
                self.with_content.append(str(meta["name"]))

    def seen(self) -> list[Event]:
        with self.lock:
            return list(self.events)


@pytest.fixture
def watched(api: client.ApiClient, namespace: str) -> Iterator[tuple[list_watch.ListWatch, Recorder]]:
    recorder = Recorder()
    call = functools.partial(CoreV1(Rest(api)).list_config_map_metadata, namespace)
    watch = list_watch.ListWatch("test-configmaps", call, recorder, page=2)  # several pages
    yield watch, recorder
    watch.stop()
    watch.join(10)


def config_map(core: client.CoreV1Api, namespace: str, name: str) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": name}, "data": {"features.py": "x" * 1000}})


def test_configmaps_are_listed_in_pages_and_watched_without_their_content(
    api: client.ApiClient, namespace: str, watched: tuple[list_watch.ListWatch, Recorder]
) -> None:
    watch, recorder = watched
    core = client.CoreV1Api(api)
    for index in range(5):
        config_map(core, namespace, f"listed-{index}")

    watch.relist()
    assert sorted(name for kind, name in recorder.seen() if kind is list_watch.LISTED) == sorted(
        [*(f"listed-{index}" for index in range(5)), "kube-root-ca.crt"]
    )

    watch.start()
    config_map(core, namespace, "added")
    core.patch_namespaced_config_map("listed-1", namespace, {"data": {"features.py": "changed"}})
    core.delete_namespaced_config_map("listed-2", namespace)
    expected = [("ADDED", "added"), ("MODIFIED", "listed-1"), ("DELETED", "listed-2")]
    wait_until(lambda: all(event in recorder.seen() for event in expected), 30, "the watch's events")
    assert recorder.with_content == []


def test_a_relist_reports_a_configmap_deleted_while_the_watch_was_away(
    api: client.ApiClient, namespace: str, watched: tuple[list_watch.ListWatch, Recorder]
) -> None:
    watch, recorder = watched
    core = client.CoreV1Api(api)
    for name in ("kept", "gone"):
        config_map(core, namespace, name)
    watch.relist()
    core.delete_namespaced_config_map("gone", namespace)  # no watch running: only a relist can tell

    watch.relist()

    assert ("DELETED", "gone") in recorder.seen()
    assert recorder.with_content == []
