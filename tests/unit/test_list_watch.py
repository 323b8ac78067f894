"""The list-watch's bookkeeping, without a server: what a relist reports (objects gone in the gap,
one made again under the same name), a continue token that expired, and the watch's own events
moving the version it resumes from. Against the real API server: tests/cluster/test_list_watch.py."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from feast_lineage.controller.list_watch import LISTED, Expired, ListWatch, WatchError, glance, vanished
from feast_lineage.domain.runner_outcome import may_have_ended


def obj(name: str, uid: str | None = None, version: str = "1") -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "uid": uid or f"uid-{name}", "resourceVersion": version}}


@dataclass
class Answer:
    data: bytes


class Pages:
    """A list call answering from a list of pages (each a list of objects), or raising an error."""

    def __init__(self, *answers: list[dict[str, Any]] | ApiException, version: str = "10") -> None:
        self.answers = list(answers)
        self.version = version
        self.asked: list[dict[str, Any]] = []

    def __call__(self, **arguments: Any) -> Answer:
        self.asked.append(arguments)
        answer = self.answers.pop(0)
        if isinstance(answer, ApiException):
            raise answer
        meta = {"resourceVersion": self.version, **({"continue": "more"} if self.answers else {})}
        return Answer(json.dumps({"items": answer, "metadata": meta}).encode())


def recorder() -> tuple[list[tuple[str | None, str]], Any]:
    seen: list[tuple[str | None, str]] = []

    def on_event(kind: str | None, body: dict[str, Any]) -> None:
        seen.append((kind, body["metadata"]["name"]))

    return seen, on_event


def test_the_objects_a_relist_no_longer_holds_are_the_vanished_ones() -> None:
    before = {("ns", "a"): ("1", "5"), ("ns", "b"): ("2", "5"), ("other", "a"): ("3", "6")}
    assert vanished(before, {("ns", "a"): ("1", "7")}) == [(("ns", "b"), "2"), (("other", "a"), "3")]
    assert vanished(before, before) == []


def test_a_paged_relist_reports_each_object_and_those_deleted_in_the_gap() -> None:
    seen, on_event = recorder()
    synced: list[bool] = []
    pages = Pages([obj("a"), obj("b")], [obj("c"), obj("e")])
    watch = ListWatch("test", pages, on_event, label_selector="x=y", page=2, on_synced=lambda: synced.append(True))
    assert watch.relist() == "10" and watch.version == "10" and watch.listed.is_set() and synced == [True]
    assert seen == [(LISTED, "a"), (LISTED, "b"), (LISTED, "c"), (LISTED, "e")]
    assert [a.get("continue") for a in pages.asked] == [None, "more"]
    assert all(a["label_selector"] == "x=y" and a["limit"] == 2 for a in pages.asked)
    # The watch missed that b was deleted, that c was deleted and made again, that d was made and
    # that e changed; a did not change, and is not reported again.
    seen.clear()
    watch.call = Pages([obj("a"), obj("c", uid="new-c"), obj("d"), obj("e", version="12")])
    watch.relist()
    assert seen == [("DELETED", "c"), (LISTED, "c"), (LISTED, "d"), (LISTED, "e"), ("DELETED", "b")]
    assert watch.lists == 2
    seen.clear()
    watch.call = Pages([obj("a"), obj("c", uid="new-c"), obj("d"), obj("e", version="12")])
    watch.relist()
    assert seen == []


def test_an_expired_continue_token_lists_again_from_the_start() -> None:
    seen, on_event = recorder()
    pages = Pages([obj("a")], ApiException(status=410, reason="Gone"), [obj("a")], [obj("b")])
    watch = ListWatch("test", pages, on_event, page=1)
    watch.relist()
    assert [a.get("continue") for a in pages.asked] == [None, "more", None, "more"]
    # a was handed on by the first try: the second, unchanged, is not told again.
    assert seen == [(LISTED, "a"), (LISTED, "b")] and watch.lists == 2
    with pytest.raises(ApiException):  # a first page refused is an error, not an expiry
        ListWatch("test", Pages(ApiException(status=410)), on_event).relist()


def test_watch_events_move_the_version_bookmarks_included_and_410_expires() -> None:
    seen, on_event = recorder()
    watch = ListWatch("test", Pages([obj("a")]), on_event)
    watch.relist()
    watch._dispatch({"type": "ADDED", "object": obj("b", version="11")})
    watch._dispatch({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}})
    assert watch.version == "15" and seen[-1] == ("ADDED", "b")
    watch._dispatch({"type": "DELETED", "object": obj("a", version="16")})
    seen.clear()
    watch.call = Pages([obj("b", version="11")])
    watch.relist()
    assert seen == []  # a's deletion and b were reported by the watch already
    with pytest.raises(Expired):
        watch._dispatch({"type": "ERROR", "object": {"code": 410, "message": "too old resource version"}})
    with pytest.raises(WatchError):
        watch._dispatch({"type": "ERROR", "object": {"code": 500, "message": "internal"}})


def test_an_event_that_fails_to_be_handed_on_is_watched_again() -> None:
    def failing(kind: str | None, body: dict[str, Any]) -> None:
        raise RuntimeError("handler failed")

    watch = ListWatch("test", Pages([]), failing)
    watch.relist()
    with pytest.raises(RuntimeError):
        watch._dispatch({"type": "ADDED", "object": obj("b", version="11")})
    assert watch.version == "10"
    # Nor does a relist (the watch expired meanwhile) take it for known.
    seen, watch.on_event = recorder()
    watch.call = Pages([obj("b", version="11")])
    watch.relist()
    assert seen == [(LISTED, "b")]


def line(kind: str, name: str, version: str, condition: str | None = None, **meta: str) -> str:
    """A watch event's line as the API server writes it: compact, fields in its structs' order."""
    metadata = {"name": name, **meta, "namespace": "ns", "uid": f"uid-{name}", "resourceVersion": version}
    status = {"conditions": [{"type": condition, "status": "True"}]} if condition else {"active": 1}
    job = {"kind": "Job", "apiVersion": "batch/v1", "metadata": metadata, "spec": {}, "status": status}
    return json.dumps({"type": kind, "object": job}, separators=(",", ":"))


class Stream:
    """A watch's answer: the lines, as the API server streams them."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def stream(self, amt: Any = None, decode_content: bool = False) -> Any:
        return iter([(text + "\n").encode() for text in self.lines])

    def release_conn(self) -> None:
        pass


def test_glance_reads_type_key_and_identity_from_the_head_of_an_event_line() -> None:
    assert glance(line("ADDED", "a", "7")) == ("ADDED", ("ns", "a"), ("uid-a", "7"))
    assert glance(line("MODIFIED", "b", "8", generateName="b-")) == ("MODIFIED", ("ns", "b"), ("uid-b", "8"))
    # Anything else is decoded: other event types, other layouts, strings with escapes.
    assert glance(line("DELETED", "a", "9")) is None
    assert glance(json.dumps({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}})) is None
    assert glance(json.dumps(json.loads(line("ADDED", "a", "7")))) is None  # spaces after separators
    assert glance(line("ADDED", "a", "7").replace('"kind":"Job",', "")) is None
    assert glance(line("ADDED", 'a\\"b', "7")) is None


def test_an_ignorable_event_is_not_handed_on_but_keeps_the_watch_in_place() -> None:
    seen, on_event = recorder()
    ignorable = lambda text: not may_have_ended(text)  # noqa: E731  # as the run watch's Job watch
    watch = ListWatch("test", Pages([]), on_event, ignorable=ignorable)
    watch.relist()
    lines = [
        line("ADDED", "a", "11"),  # not decoded
        line("MODIFIED", "b", "12", condition="Suspended"),  # not decoded
        line("MODIFIED", "a", "13", condition="Complete"),
        line("ADDED", "c", "14").replace('"kind":"Job",', ""),  # an unexpected layout: decoded
        line("MODIFIED", "b", "15", condition="Failed"),
        line("MODIFIED", "d", "16"),  # not decoded
    ]
    watch.call = lambda **arguments: Stream(lines)
    assert watch.watch() == 6
    assert seen == [("MODIFIED", "a"), ("ADDED", "c"), ("MODIFIED", "b")]
    assert watch.ignored == 3 and watch.version == "16"
    # The events not decoded are known as the watch left them: a relist finds nothing new in them.
    seen.clear()
    watch.call = Pages([obj("a", version="13"), obj("b", version="15"), obj("c", version="14"), obj("d", version="16")])
    watch.relist()
    assert seen == []
