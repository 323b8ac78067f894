"""One HTTP exchange that ends by a deadline and never reads more than a size cap.

A socket timeout bounds each read, not the request: a server that trickles a byte at a time
(headers or body) keeps every read short and the request alive forever, and one that streams
without end fills memory. Here a watchdog shuts the socket down at the deadline, whatever the
exchange is doing (connecting, TLS, headers, body), and the body is read in pieces up to a cap.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
"""MLflow's answers to the calls audit delivery makes are kilobytes; a search of 10 runs stays far below."""
_PIECE = 64 * 1024


class ExchangeTimeout(TimeoutError):
    """No complete answer by the deadline."""


class ResponseTooLarge(Exception):
    """The answer is larger than the cap: read no further."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


def exchange(
    method: str,
    url: str,
    *,
    data: bytes | None,
    headers: Mapping[str, str],
    read_timeout: float,
    deadline: float,
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ssl_context: ssl.SSLContext | None = None,
) -> Reply:
    """``method url`` with ``data``; ends by ``deadline`` (a ``time.monotonic()`` instant).

    Raises :class:`ExchangeTimeout`, :class:`ResponseTooLarge`, ``OSError`` (connection
    failures) or ``http.client.HTTPException`` (a malformed answer).
    """
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ExchangeTimeout("no time left")
    parts = urllib.parse.urlsplit(url)
    timeout = min(read_timeout, remaining)
    connection, target = _connection(parts, timeout, ssl_context)
    expired = threading.Event()

    def abort() -> None:
        expired.set()
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked in another thread

    watchdog = threading.Timer(remaining, abort)
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request(method, target, body=data, headers=dict(headers))
        response = connection.getresponse()
        length = response.getheader("Content-Length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            raise ResponseTooLarge(f"answer of {int(length)} bytes exceeds the {max_bytes}-byte cap")
        pieces: list[bytes] = []
        size = 0
        while True:
            piece = response.read1(_PIECE)
            if not piece:
                break
            size += len(piece)
            if size > max_bytes:
                raise ResponseTooLarge(f"answer exceeds the {max_bytes}-byte cap")
            pieces.append(piece)
        if expired.is_set():
            # The shutdown can look like a clean end of the body: never take a cut answer for a whole one.
            raise ExchangeTimeout("deadline reached while reading the answer")
        return Reply(response.status, b"".join(pieces))
    except (OSError, http.client.HTTPException) as error:
        if expired.is_set():
            raise ExchangeTimeout(f"no complete answer within {remaining:.1f}s") from error
        raise
    finally:
        watchdog.cancel()
        connection.close()


def _connection(
    parts: urllib.parse.SplitResult, timeout: float, ssl_context: ssl.SSLContext | None
) -> tuple[http.client.HTTPConnection, str]:
    """A connection to the server, or through the proxy the environment names (HTTP(S)_PROXY,
    NO_PROXY, as urllib reads them), and the request target to send on it."""
    host, port = parts.hostname or "", parts.port
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        via = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parts.scheme == "https":
            tunnel = http.client.HTTPSConnection(via.hostname or "", via.port, timeout=timeout, context=ssl_context)
            tunnel.set_tunnel(host, port)
            return tunnel, target
        return http.client.HTTPConnection(via.hostname or "", via.port, timeout=timeout), parts.geturl()
    if parts.scheme == "https":
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl_context), target
    return http.client.HTTPConnection(host, port, timeout=timeout), target
