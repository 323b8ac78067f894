"""The admission webhook server over real TLS: a review that makes no request is answered on the
server's event loop, one that may is answered on a thread, and either failing answers 500."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.webhook_tls import post, started_server


def answering(threads: list[str], fail: bool = False) -> Any:
    def review(body: dict[str, Any]) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        if fail:
            raise RuntimeError("review failed")
        return {"kind": "AdmissionReview", "response": {"uid": body["request"]["uid"], "allowed": True}}

    return review


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[http.client.HTTPSConnection, dict[str, list[str]]]]:
    threads: dict[str, list[str]] = {path: [] for path in ("/inline", "/threaded", "/inline-fails")}
    server, port, context = started_server(
        tmp_path,
        {
            "/inline": answering(threads["/inline"]),
            "/threaded": answering(threads["/threaded"]),
            "/inline-fails": answering(threads["/inline-fails"], fail=True),
        },
        inline=frozenset({"/inline", "/inline-fails"}),
    )
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        yield connection, threads
    finally:
        connection.close()
        server.stop()


def test_a_review_that_makes_no_request_is_answered_on_the_event_loop_others_on_a_thread(
    served: tuple[http.client.HTTPSConnection, dict[str, list[str]]],
) -> None:
    connection, threads = served
    for path, uid in (("/inline", "a"), ("/threaded", "b"), ("/inline", "c")):
        status, body = post(connection, path, uid)
        assert status == 200 and json.loads(body)["response"] == {"uid": uid, "allowed": True}
    assert threads["/inline"] == ["injection-webhook", "injection-webhook"]  # the server's loop thread
    assert len(threads["/threaded"]) == 1 and threads["/threaded"][0].startswith("admission")
    # A review that fails on the loop is a 500 (the configuration's failurePolicy decides), and the
    # server serves on.
    assert post(connection, "/inline-fails", "d")[0] == 500
    assert post(connection, "/inline", "e")[0] == 200
