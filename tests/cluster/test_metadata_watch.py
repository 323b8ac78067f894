"""The operator's metadata-only list-watch of ConfigMaps, against the real API server: a paged list
and a watch that carry no content, and a relist (what a 410 Gone on the watch leads to) that reports
what changed while the watch was away, and only that. (This API server serves paged lists and
watches from its cache, which a compaction of etcd does not expire: the 410 itself is
``tests/unit/test_metadata_watch.py``'s.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from kubernetes import client

from feast_lineage.controller import metadata_watch
from feast_lineage.controller.rest import Rest
from tests.cluster_helpers import wait_until

pytestmark = pytest.mark.cluster

Event = tuple[str | None, str]


class Recorder:
    """The events a watch delivered, as (type, name), and whether any carried content."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[Event] = []
        self.with_content: list[str] = []

    def __call__(self, kind: str | None, body: dict[str, object]) -> None:
        meta = body["metadata"]
        assert isinstance(meta, dict)
        with self.lock:
            self.events.append((kind, str(meta["name"])))
            if set(body) - {"metadata"} or "managedFields" in meta:
                self.with_content.append(str(meta["name"]))

    def seen(self) -> list[Event]:
        with self.lock:
            return list(self.events)


@pytest.fixture
def watched(api: client.ApiClient, namespace: str) -> Iterator[tuple[metadata_watch.MetadataWatch, Recorder]]:
    recorder = Recorder()
    watch = metadata_watch.MetadataWatch(
        Rest(api),
        f"/api/v1/namespaces/{namespace}/configmaps",
        recorder,
        watch_seconds=30,
        retry_seconds=0.5,
        name="test",
    )
    yield watch, recorder
    watch.stop()
    watch.join(10)


def config_map(core: client.CoreV1Api, namespace: str, name: str) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": name}, "data": {"features.py": "x" * 1000}})


def test_a_paged_list_then_a_watch_report_every_configmap_without_its_content(
    api: client.ApiClient,
    namespace: str,
    watched: tuple[metadata_watch.MetadataWatch, Recorder],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metadata_watch, "PAGE", 2)  # several pages
    watch, recorder = watched
    core = client.CoreV1Api(api)
    for index in range(5):
        config_map(core, namespace, f"listed-{index}")

    assert watch.list_once() == 6  # and the namespace's kube-root-ca.crt
    assert sorted(name for kind, name in recorder.seen() if kind is None) == sorted(
        [*(f"listed-{index}" for index in range(5)), "kube-root-ca.crt"]
    )

    watch.start()
    config_map(core, namespace, "added")
    core.patch_namespaced_config_map("listed-1", namespace, {"data": {"features.py": "changed"}})
    core.delete_namespaced_config_map("listed-2", namespace)
    expected = [("ADDED", "added"), ("MODIFIED", "listed-1"), ("DELETED", "listed-2")]
    wait_until(lambda: all(event in recorder.seen() for event in expected), 30, "the watch's events")
    assert recorder.with_content == []


def test_a_relist_reports_only_what_changed_while_the_watch_was_away(
    api: client.ApiClient, namespace: str, watched: tuple[metadata_watch.MetadataWatch, Recorder]
) -> None:
    watch, recorder = watched
    core = client.CoreV1Api(api)
    for name in ("kept", "changed", "gone"):
        config_map(core, namespace, name)
    watch.list_once()
    listed = len(recorder.seen())
    # While the watch is away: one new, one changed, one deleted, one untouched.
    config_map(core, namespace, "new")
    core.patch_namespaced_config_map("changed", namespace, {"data": {"features.py": "changed"}})
    core.delete_namespaced_config_map("gone", namespace)
    watch.version = ""  # what a 410 Gone leaves: list again

    watch.start()
    expected = [("ADDED", "new"), ("MODIFIED", "changed"), ("DELETED", "gone")]
    wait_until(lambda: all(event in recorder.seen() for event in expected), 30, "the relist's events")
    assert sorted(recorder.seen()[listed:]) == sorted(expected)  # nothing for kept, nor kube-root-ca.crt
    # And it watches on from the relist.
    core.delete_namespaced_config_map("kept", namespace)
    wait_until(lambda: ("DELETED", "kept") in recorder.seen(), 30, "a deletion after the relist")
    assert recorder.with_content == []
