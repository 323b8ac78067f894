"""Every failure of the HTTP exchange with a tracking server is a clear DeliveryError, never a crash.

Each case is a loopback server that answers every connection with the same broken bytes.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from feast_lineage.audit import DeliveryError, deliver
from tests.integration.mlflow_checks import new_record


def _serve(answer: bytes) -> Iterator[str]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stopped = threading.Event()

    def loop() -> None:
        while not stopped.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(2)
                try:
                    connection.recv(65536)  # the request
                    connection.sendall(answer)
                except OSError:
                    pass

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stopped.set()
        listener.close()
        thread.join(5)


BROKEN_ANSWERS = {
    # The body ends before its Content-Length: http.client.IncompleteRead.
    "incomplete-read": b'HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{"experiment":',
    # The connection closes without a status line: http.client.RemoteDisconnected.
    "remote-disconnected": b"",
    # Not HTTP at all: http.client.BadStatusLine.
    "bad-status-line": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    # A header longer than http.client accepts: http.client.LineTooLong.
    "line-too-long": b"HTTP/1.1 200 OK\r\nX-Filler: " + b"x" * 70000 + b"\r\n\r\n",
    # Too many headers: http.client.HTTPException.
    "too-many-headers": b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(150)) + b"\r\n",
    # A body that is not UTF-8 JSON.
    "not-utf8": b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n\xff\xfe\xfd\xfc",
}


@pytest.fixture(params=sorted(BROKEN_ANSWERS))
def broken_server(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from _serve(BROKEN_ANSWERS[request.param])


def test_a_broken_answer_is_a_one_line_delivery_error(broken_server: str) -> None:
    with pytest.raises(DeliveryError) as raised:
        deliver(new_record(), broken_server, timeout=2, max_retries=1)
    message = str(raised.value)
    assert "\n" not in message and len(message) <= 300
    assert broken_server in message or "MLflow" in message


@pytest.mark.parametrize(
    "uri",
    [
        "https://alice:hunter2-canary@mlflow.example",
        "http://alice:hunter2-canary@127.0.0.1:5000/",
        "http://hunter2-canary@127.0.0.1:5000",
    ],
)
def test_a_tracking_uri_with_user_info_is_refused_without_repeating_it(uri: str) -> None:
    with pytest.raises(DeliveryError, match="user info") as raised:
        deliver(new_record(), uri, timeout=1, max_retries=0)
    assert "hunter2-canary" not in str(raised.value)


@pytest.mark.parametrize("uri", ["http://127.0.0.1:99999", "http://[::1", "http://127.0.0.1:port"])
def test_an_unparsable_tracking_uri_is_a_delivery_error(uri: str) -> None:
    with pytest.raises(DeliveryError, match="not a valid URL"):
        deliver(new_record(), uri, timeout=1, max_retries=0)
