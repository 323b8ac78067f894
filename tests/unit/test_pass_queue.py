"""The projects' pass queue: asks become passes, failed passes are retried, none is lost."""

from __future__ import annotations

import threading
from collections import Counter

from feast_lineage.controller.backoff import Backoff
from feast_lineage.controller.pass_queue import PassQueue
from tests.cluster_helpers import wait_until


def test_a_failed_pass_is_retried_until_it_succeeds() -> None:
    calls: list[str] = []

    def act(namespace: str, name: str) -> None:
        calls.append(name)
        if len(calls) < 3:
            raise RuntimeError("the API server refused the write")

    queue = PassQueue(act, Backoff(0.01, 0.05), workers=2)
    queue.start()
    try:
        queue.submit("ns", "p")
        wait_until(lambda: len(calls) == 3 and len(queue) == 0, 10, "the third pass to succeed")
    finally:
        queue.stop()
    assert calls == ["p", "p", "p"]


def test_asks_while_waiting_make_one_pass_and_an_ask_during_a_pass_makes_another() -> None:
    started, release = threading.Event(), threading.Event()
    calls: Counter[str] = Counter()

    def act(namespace: str, name: str) -> None:
        calls[name] += 1
        if name == "slow" and calls[name] == 1:
            started.set()
            release.wait(10)

    queue = PassQueue(act, Backoff(0.01, 0.05), workers=1)
    queue.start()
    try:
        queue.submit("ns", "slow")
        assert started.wait(10)
        for _ in range(5):  # while the one worker is busy: "other" waits, asked for five times
            queue.submit("ns", "other")
        queue.submit("ns", "slow")  # a change seen while its pass runs: it must be passed again
        release.set()
        wait_until(lambda: calls["slow"] == 2 and calls["other"] == 1 and len(queue) == 0, 10, "the passes")
    finally:
        queue.stop()
    assert calls == Counter({"slow": 2, "other": 1})


def test_a_new_ask_replaces_a_waiting_retry() -> None:
    calls: list[str] = []
    failing = threading.Event()
    failing.set()

    def act(namespace: str, name: str) -> None:
        calls.append(name)
        if failing.is_set():
            raise RuntimeError("a ConfigMap is missing")

    queue = PassQueue(act, Backoff(60, 60), workers=1)  # the retry would come only a minute later
    queue.start()
    try:
        queue.submit("ns", "p")
        wait_until(lambda: calls == ["p"] and len(queue) == 1, 10, "the first pass to fail")
        failing.clear()
        queue.submit("ns", "p")  # the ConfigMap appeared: its event asks for a pass now
        wait_until(lambda: calls == ["p", "p"] and len(queue) == 0, 10, "the second pass")
    finally:
        queue.stop()
