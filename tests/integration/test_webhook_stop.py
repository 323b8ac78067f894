"""How the admission webhook server stops, over real TLS: it answers on through the drain period,
finishes a review under way, closes idle connections properly, and then refuses new ones."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from feast_lineage.injection import server as server_module
from feast_lineage.injection.server import WebhookServer
from tests.cluster_helpers import wait_until
from tests.integration.webhook_tls import post, started_server


@dataclass
class Served:
    server: WebhookServer
    port: int
    context: ssl.SSLContext
    release: threading.Event
    """Set to let the ``/blocking`` review answer."""
    blocking: threading.Event
    """Set once a ``/blocking`` review is under way."""

    def connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=10)


DRAIN = 3.0


def allowed(body: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "AdmissionReview", "response": {"uid": body["request"]["uid"], "allowed": True}}


def serve(tmp_path: Path) -> Served:
    release, blocking = threading.Event(), threading.Event()

    def blocked(body: dict[str, Any]) -> dict[str, Any]:
        blocking.set()
        assert release.wait(60)
        return allowed(body)

    server, port, context = started_server(
        tmp_path, {"/answer": allowed, "/blocking": blocked}, inline=frozenset({"/answer"})
    )
    return Served(server, port, context, release, blocking)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    served = serve(tmp_path)
    try:
        yield served
    finally:
        served.release.set()
        served.server.stop()


def stopping(server: WebhookServer, drain_seconds: float) -> threading.Thread:
    """The stop begun here (its drain counts from now), and ``server.stop(drain_seconds)`` run on a
    thread of its own, as the operator's main thread runs it."""
    server.begin_stop()
    thread = threading.Thread(target=server.stop, args=(drain_seconds,), name="stopping")
    thread.start()
    return thread


def refused(served: Served) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", served.port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


class RawConnection:
    """HTTP/1.1 over TLS by hand, to see what the server does with the connection after an answer."""

    def __init__(self, served: Served) -> None:
        raw = socket.create_connection(("127.0.0.1", served.port), timeout=10)
        # A FIN without a TLS close_notify is then an error, not the end of the stream.
        self.sock = served.context.wrap_socket(raw, server_hostname="127.0.0.1", suppress_ragged_eofs=False)
        self.buffer = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def post(self, uid: str) -> dict[str, str]:
        """One review; the answer's headers (lower-cased names)."""
        body = json.dumps({"kind": "AdmissionReview", "request": {"uid": uid}}).encode()
        head = "POST /answer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        self.sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(), "the server closed the connection before answering"
        head_bytes, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status, *lines = head_bytes.decode().split("\r\n")
        assert status.startswith("HTTP/1.1 200"), status
        headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
        while len(self.buffer) < int(headers["content-length"]):
            assert self._fill(), "the server closed the connection in the middle of an answer"
        answer, self.buffer = (
            self.buffer[: int(headers["content-length"])],
            self.buffer[int(headers["content-length"]) :],
        )
        assert json.loads(answer)["response"]["uid"] == uid
        return headers

    def closed_by_server(self) -> bool:
        """The server ended the connection with a TLS close_notify and a FIN, not a reset: the client
        sees the end of the stream, so a client that pools connections drops it instead of writing
        into it. Fails (a timeout) when the server keeps the connection open."""
        try:
            return not self._fill() and not self.buffer
        except ssl.SSLZeroReturnError:
            return not self.buffer

    def close(self) -> None:
        self.sock.close()


def test_a_stopping_server_answers_through_the_drain_closing_each_connection_after_its_answer(
    served: Served,
) -> None:
    kept = RawConnection(served)
    assert kept.post("before").get("connection") != "close"  # kept alive while serving
    began = time.monotonic()
    thread = stopping(served.server, drain_seconds=DRAIN)
    # The connection the API server already had, and new ones it opens to a replica it still lists
    # among the Service's endpoints: answered, and each closed after its answer.
    connections = [kept, RawConnection(served), RawConnection(served)]
    for n, connection in enumerate(connections):
        assert connection.post(f"during-{n}").get("connection") == "close"
        assert connection.closed_by_server()
        connection.close()
    # Still answering a second before the drain ends.
    threading.Event().wait(max(0.0, began + DRAIN - 1.0 - time.monotonic()))
    late = RawConnection(served)
    assert late.post("late").get("connection") == "close"
    late.close()
    assert thread.is_alive(), "the server stopped before the drain period ended"
    thread.join(30)
    assert not thread.is_alive() and time.monotonic() - began >= DRAIN
    assert refused(served)


def test_a_review_under_way_when_the_drain_ends_is_answered_before_the_server_stops(served: Served) -> None:
    connection = served.connect()
    answers: list[tuple[int, bytes]] = []
    request = threading.Thread(target=lambda: answers.append(post(connection, "/blocking", "under-way")))
    request.start()
    assert served.blocking.wait(10), "the review never started"
    thread = stopping(served.server, drain_seconds=0.0)
    # The listener closes at once (no drain), the review under way holds the stop.
    wait_until(lambda: refused(served), 10, "the listener to close")
    assert thread.is_alive() and not answers
    served.release.set()
    request.join(15)
    thread.join(30)
    connection.close()
    assert answers and answers[0][0] == 200, answers
    assert json.loads(answers[0][1])["response"]["uid"] == "under-way"
    assert not thread.is_alive()


def test_an_idle_kept_alive_connection_is_closed_cleanly_when_the_server_stops(served: Served) -> None:
    connection = RawConnection(served)
    assert connection.post("kept").get("connection") != "close"  # the connection stays open (HTTP/1.1)
    thread = stopping(served.server, drain_seconds=0.0)
    thread.join(30)
    assert not thread.is_alive()
    assert connection.closed_by_server()
    connection.close()


def test_a_review_that_never_ends_holds_the_stop_for_finish_seconds_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "FINISH_SECONDS", 1.0)
    served = serve(tmp_path)
    try:
        connection = served.connect()
        outcome: list[object] = []

        def ask() -> None:
            try:
                outcome.append(post(connection, "/blocking", "endless"))
            except (ConnectionError, http.client.HTTPException) as error:
                outcome.append(error)

        request = threading.Thread(target=ask, daemon=True)
        request.start()
        assert served.blocking.wait(10), "the review never started"
        began = time.monotonic()
        thread = stopping(served.server, drain_seconds=0.0)
        thread.join(30)
        assert not thread.is_alive(), "the stop waited on a review that never ends"
        assert not served.release.is_set()  # the review was still under way when the stop gave up on it
        assert 1.0 <= time.monotonic() - began < 1.0 + 5.0 + 5.0
        request.join(10)
        # The client is told: its connection ends without an answer (the API server then applies the
        # configuration's failurePolicy), rather than waiting out its own timeout.
        assert outcome and isinstance(outcome[0], ConnectionError | http.client.HTTPException), outcome
        connection.close()
    finally:
        served.release.set()
        served.server.stop()


def test_two_stops_at_once_both_return_once_the_review_under_way_is_answered(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    connection = served.connect()
    answers: list[tuple[int, bytes]] = []
    request = threading.Thread(target=lambda: answers.append(post(connection, "/blocking", "under-way")))
    request.start()
    assert served.blocking.wait(10), "the review never started"
    # The operator's own stop, and a second one (a test's, a cleanup's) at the same moment.
    threads = [stopping(served.server, drain_seconds=0.0), stopping(served.server, drain_seconds=0.0)]
    wait_until(lambda: refused(served), 10, "the listener to close")
    assert all(thread.is_alive() for thread in threads) and not answers
    served.release.set()
    for thread in threads:
        thread.join(server_module.FINISH_SECONDS)
    request.join(10)
    connection.close()
    assert not any(thread.is_alive() for thread in threads)
    assert answers and answers[0][0] == 200, answers
    assert "did not close cleanly" not in caplog.text


def test_a_stopping_server_closes_the_connection_after_its_own_error_answers_too(served: Served) -> None:
    served.server.begin_stop()
    connection = served.connect()
    connection.request("GET", "/no-such-page")  # aiohttp's own 404 (405 here: only POST is routed)
    response = connection.getresponse()
    response.read()
    assert response.status in (404, 405) and response.getheader("Connection") == "close"
    connection.close()
