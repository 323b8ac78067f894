"""The operator's list-watch against the real API server: events arrive, filtered by the label
selector; a watch the server ends is resumed from the last resourceVersion without listing again;
and a resourceVersion the server no longer holds (410 Gone) lists again and reports a deletion that
happened while nothing watched. A watch of Jobs does not decode the events that cannot end one."""

from __future__ import annotations

import base64
import copy
import functools
import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from feast_lineage.controller.bounded_client import BoundedApiClient
from feast_lineage.controller.kube import Kube
from feast_lineage.controller.list_watch import LISTED, ListWatch, glance
from feast_lineage.controller.settings import ApiTimeouts
from feast_lineage.devcluster.cluster import DevCluster
from feast_lineage.domain.runner_outcome import job_ended, may_have_ended
from tests.cluster_helpers import wait_until

pytestmark = pytest.mark.cluster

SELECTOR = "list-watch-test=yes"
WATCH_SECONDS = 2
"""The server ends each watch this soon: a few watches pass within a test."""


class Seen:
    """The events handed on, by name: the kinds each object was reported with, in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kinds: dict[str, list[str | None]] = {}

    def __call__(self, kind: str | None, body: dict[str, Any]) -> None:
        with self.lock:
            self.kinds.setdefault(body["metadata"]["name"], []).append(kind)

    def of(self, name: str) -> list[str | None]:
        with self.lock:
            return list(self.kinds.get(name, []))


def config_map(name: str, labelled: bool = True, value: str = "1") -> dict[str, Any]:
    labels = {"list-watch-test": "yes"} if labelled else {}
    return {"metadata": {"name": name, "labels": labels}, "data": {"value": value}}


@pytest.fixture
def watched(api: client.ApiClient, namespace: str) -> Iterator[tuple[ListWatch, Seen]]:
    """A list-watch of the namespace's labelled ConfigMaps with the operator's client, not started."""
    timeouts = ApiTimeouts(watch_seconds=WATCH_SECONDS)
    kube = Kube(BoundedApiClient(copy.deepcopy(api.configuration), timeouts))
    seen = Seen()
    call = functools.partial(kube.core.list_namespaced_config_map, namespace)
    watch = ListWatch("test ConfigMaps", call, seen, label_selector=SELECTOR, timeouts=timeouts, page=2)
    try:
        yield watch, seen
    finally:
        watch.stop()
        watch.join(10)


def test_events_arrive_and_a_watch_the_server_ends_resumes_without_listing_again(
    api: client.ApiClient, namespace: str, watched: tuple[ListWatch, Seen]
) -> None:
    core = client.CoreV1Api(api)
    for name in ("a", "b", "c"):  # two pages
        core.create_namespaced_config_map(namespace, config_map(name))
    watch, seen = watched
    watch.start()
    assert watch.listed.wait(30)
    assert [seen.of(name) for name in ("a", "b", "c")] == [[LISTED]] * 3
    core.create_namespaced_config_map(namespace, config_map("d"))
    core.create_namespaced_config_map(namespace, config_map("unlabelled", labelled=False))
    core.patch_namespaced_config_map("a", namespace, {"data": {"value": "2"}})
    core.delete_namespaced_config_map("b", namespace)
    wait_until(lambda: seen.of("b") == [LISTED, "DELETED"], 30, "b's deletion")
    assert seen.of("d") == ["ADDED"] and seen.of("a") == [LISTED, "MODIFIED"]
    # The server ends each watch after WATCH_SECONDS: several end, none lists again.
    wait_until(lambda: watch.watches >= 4, 60, "the server to end three watches")
    core.patch_namespaced_config_map("c", namespace, {"data": {"value": "2"}})
    wait_until(lambda: seen.of("c") == [LISTED, "MODIFIED"], 30, "c's change after the watches resumed")
    assert watch.lists == 1
    assert seen.of("unlabelled") == []


def compact_etcd(cluster: DevCluster) -> None:
    """Compact etcd's history up to its current revision (etcd's JSON gateway)."""
    base = f"http://127.0.0.1:{cluster.control_plane.etcd_port}/v3/kv"

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(f"{base}/{path}", json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            return dict(json.loads(response.read()))

    revision = post("range", {"key": base64.b64encode(b"/").decode()})["header"]["revision"]
    post("compaction", {"revision": revision, "physical": True})


def test_an_expired_resource_version_lists_again_and_reports_what_changed_in_the_gap(
    api: client.ApiClient, dev_cluster: DevCluster, namespace: str, watched: tuple[ListWatch, Seen]
) -> None:
    core = client.CoreV1Api(api)
    for name in ("kept", "changed-meanwhile", "deleted-meanwhile", "remade-meanwhile"):
        core.create_namespaced_config_map(namespace, config_map(name))
    watch, seen = watched
    watch.relist()
    listed_uid = core.read_namespaced_config_map("remade-meanwhile", namespace).metadata.uid
    # Nothing watches now. Meanwhile one is changed, one deleted, one deleted and made again, one made.
    core.patch_namespaced_config_map("changed-meanwhile", namespace, {"data": {"changed": "yes"}})
    core.delete_namespaced_config_map("deleted-meanwhile", namespace)
    core.delete_namespaced_config_map("remade-meanwhile", namespace)
    core.create_namespaced_config_map(namespace, config_map("remade-meanwhile"))
    core.create_namespaced_config_map(namespace, config_map("made-meanwhile"))
    # And the version the watch would resume from is one the API server no longer holds: etcd
    # compacted its history (the API server does every few minutes), and the API server's watch
    # cache, restarted, starts after it.
    compact_etcd(dev_cluster)
    dev_cluster.control_plane.restart_apiserver()
    watch.start()
    wait_until(lambda: seen.of("deleted-meanwhile") == [LISTED, "DELETED"], 60, "the deletion in the gap")
    assert watch.lists == 2
    # What did not change in the gap is not reported again; what changed is.
    assert seen.of("kept") == [LISTED]
    assert seen.of("changed-meanwhile") == [LISTED, LISTED]
    assert seen.of("remade-meanwhile") == [LISTED, "DELETED", LISTED]
    assert seen.of("made-meanwhile") == [LISTED]
    assert listed_uid != core.read_namespaced_config_map("remade-meanwhile", namespace).metadata.uid
    # And it watches on from the new list.
    core.delete_namespaced_config_map("kept", namespace)
    wait_until(lambda: seen.of("kept") == [LISTED, "DELETED"], 30, "kept's deletion")


def job(name: str, exit_code: int) -> dict[str, Any]:
    """A labelled Job whose one pod exits with ``exit_code`` at once (the local node runs it)."""
    container = {"name": "main", "image": "python:3.11-slim", "command": ["python", "-c", f"exit({exit_code})"]}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"list-watch-test": "yes"}},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [container]}}},
    }


def test_a_job_watch_decodes_only_the_events_that_may_end_a_job_and_misses_no_end(
    api: client.ApiClient, namespace: str
) -> None:
    """The run watch's Job watch: the Job controller's progress is not decoded, its last word is."""
    timeouts = ApiTimeouts(watch_seconds=WATCH_SECONDS)
    kube = Kube(BoundedApiClient(copy.deepcopy(api.configuration), timeouts))
    handed: list[tuple[str | None, str, bool]] = []
    ignored: list[str] = []

    def ignorable(text: str) -> bool:
        if may_have_ended(text):
            return False
        ignored.append(text)
        return True

    watch = ListWatch(
        "test Jobs",
        functools.partial(kube.batch.list_namespaced_job, namespace),
        lambda kind, body: handed.append((kind, body["metadata"]["name"], job_ended(body))),
        label_selector=SELECTOR,
        timeouts=timeouts,
        ignorable=ignorable,
    )
    watch.start()
    try:
        assert watch.listed.wait(30)
        batch = client.BatchV1Api(api)
        batch.create_namespaced_job(namespace, job("completes", 0))
        batch.create_namespaced_job(namespace, job("fails", 1))
        wait_until(
            lambda: {name for _, name, ended in handed if ended} == {"completes", "fails"}, 120, "both Jobs to end"
        )
    finally:
        watch.stop()
        watch.join(10)
    # Each Job's creation and the Job controller's progress came without being decoded, and each
    # such line was read right: its head says what decoding it says, and it did not end a Job.
    assert len(ignored) >= 2
    for text in ignored:
        event = json.loads(text)
        meta = event["object"]["metadata"]
        head = (event["type"], (meta["namespace"], meta["name"]), (meta["uid"], meta["resourceVersion"]))
        assert glance(text) == head and not job_ended(event["object"])
    # What was decoded and handed on is what ended a Job: no line of the API server's was unreadable.
    assert all(ended for kind, _, ended in handed if kind in ("ADDED", "MODIFIED")), handed
