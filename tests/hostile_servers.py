"""Small loopback HTTP servers that misbehave on purpose: they trickle, stream without end, or sit
in front of a real server and lose answers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

Behaviour = Callable[[socket.socket, bytes], None]


@dataclass
class Served:
    url: str
    sent_bytes: list[int] = field(default_factory=list)
    """Bytes each connection sent before the client went away."""


def _read_request(conn: socket.socket) -> bytes:
    """The request's head and body (by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return data
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        piece = conn.recv(65536)
        if not piece:
            break
        body += piece
    return head + b"\r\n\r\n" + body


@contextmanager
def serving(behaviour: Callable[[socket.socket, bytes], int]) -> Iterator[Served]:
    """A server calling ``behaviour(connection, request)`` for each connection; it returns the bytes sent."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    served = Served(f"http://127.0.0.1:{listener.getsockname()[1]}")
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            try:
                request = _read_request(conn)
                served.sent_bytes.append(behaviour(conn, request))
            except OSError:
                pass

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        stop.set()
        listener.close()


def _trickle(conn: socket.socket, head: bytes, byte: bytes) -> int:
    conn.sendall(head)
    sent = 0
    while True:
        conn.sendall(byte)
        sent += 1
        time.sleep(0.2)


def trickle_headers(conn: socket.socket, request: bytes) -> int:
    """A status line, then one byte of an endless header every 0.2 s: every read is short, the answer never ends."""
    return _trickle(conn, b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a")


def trickle_body(conn: socket.socket, request: bytes) -> int:
    """A valid head announcing a small JSON body, then one byte of it every 0.2 s, never finishing."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
    return _trickle(conn, head, b" ")


GIB = 1024**3


def stream_gibibyte(conn: socket.socket, request: bytes) -> int:
    """A chunked answer of 1 GiB, as fast as the client takes it."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b" " * (1024 * 1024)
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    try:
        while sent < GIB:
            conn.sendall(framed)
            sent += len(chunk)
        conn.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the client went away: what it was sent until then is the figure
    return sent


def forward(upstream_port: int, request: bytes) -> bytes:
    """``request`` sent to the real server on ``upstream_port``; its whole answer (the connection closed)."""
    head, _, body = request.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith((b"connection:", b"host:"))]
    lines.insert(1, f"Host: 127.0.0.1:{upstream_port}".encode())
    lines.append(b"Connection: close")
    with socket.create_connection(("127.0.0.1", upstream_port), timeout=30) as upstream:
        upstream.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        answer = b""
        while piece := upstream.recv(65536):
            answer += piece
    return answer


class DropFirstAnswer:
    """A proxy in front of a real server that forwards everything, but for the first request whose
    path contains ``path`` it closes the connection instead of passing the answer on."""

    def __init__(self, upstream_port: int, path: bytes) -> None:
        self.upstream_port = upstream_port
        self.path = path
        self.dropped = 0
        self.forwarded: list[bytes] = []
        self._lock = threading.Lock()

    def __call__(self, conn: socket.socket, request: bytes) -> int:
        answer = forward(self.upstream_port, request)
        request_line = request.split(b"\r\n", 1)[0]
        with self._lock:
            self.forwarded.append(request_line)
            drop = self.path in request_line and self.dropped == 0
            if drop:
                self.dropped += 1
        if drop:
            return 0  # the server did the work; the client never hears of it
        conn.sendall(answer)
        return len(answer)


class Gate:
    """A proxy in front of a real server that, while closed, hangs up on every request unanswered
    (MLflow down, as the client sees it) and, once opened, forwards everything."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.opened = threading.Event()
        self.refused = 0

    def __call__(self, conn: socket.socket, request: bytes) -> int:
        if not self.opened.is_set():
            self.refused += 1
            return 0
        answer = forward(self.upstream_port, request)
        conn.sendall(answer)
        return len(answer)
