"""Container logs served by the local node as a kubelet serves them, so ``kubectl logs`` works.

The API server answers ``GET /api/v1/namespaces/NS/pods/POD/log`` by calling the node's kubelet
endpoint (``status.daemonEndpoints.kubeletEndpoint.Port`` on its InternalIP) at
``/containerLogs/NS/POD/CONTAINER``, over HTTPS: it checks the node's serving certificate against
``--kubelet-certificate-authority`` and presents ``--kubelet-client-certificate``. The node checks
that client certificate against the cluster CA and serves only the API server (and cluster admins).

Each container's output is one file per container (``<container>.log``), every start appended
after a ``--- <time> <argv>`` line; ``<container>.log.runs`` records, one JSON line per start,
where that line and the start's output begin, so a start's output can be cut out exactly.
Supported: ``follow``, ``previous``, ``tailLines``, ``limitBytes``. Not supported (the output
carries no per-line times): ``timestamps``, ``sinceSeconds``, ``sinceTime``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger("local-node.logs")

RUNS_SUFFIX = ".runs"
API_SERVER_CLIENT_CN = "kube-apiserver-kubelet-client"
"""Common name of the API server's kubelet client certificate."""
ADMIN_GROUP = "system:masters"
_PATH = re.compile(r"^/containerLogs/(?P<namespace>[^/]+)/(?P<pod>[^/]+)/(?P<container>[^/]+)$")
_FOLLOW_POLL_SECONDS = 0.2


# -- where a start's output is (pure) --------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    header: int
    """Offset of the ``---`` line of this start."""
    output: int
    """Offset of the first byte the container wrote."""


def record_start(log_path: Path, header_offset: int, output_offset: int) -> None:
    """Called by the node before each start of a container."""
    with (log_path.parent / (log_path.name + RUNS_SUFFIX)).open("a") as runs:
        runs.write(json.dumps({"header": header_offset, "output": output_offset}) + "\n")


def read_starts(log_path: Path) -> list[Start]:
    path = log_path.parent / (log_path.name + RUNS_SUFFIX)
    if not path.exists():
        return []
    starts = []
    for line in path.read_text().splitlines():
        try:
            item = json.loads(line)
            starts.append(Start(int(item["header"]), int(item["output"])))
        except (ValueError, KeyError, TypeError):
            continue
    return starts


def start_range(starts: list[Start], size: int, previous: bool) -> tuple[int, int] | None:
    """Byte range of the last start's output, or of the one before it; None if there is none."""
    if previous:
        if len(starts) < 2:
            return None
        return starts[-2].output, starts[-1].header
    if not starts:
        return None
    return starts[-1].output, size


def select(data: bytes, tail_lines: int | None, limit_bytes: int | None) -> bytes:
    """The last ``tail_lines`` lines of ``data``, then at most its first ``limit_bytes`` bytes."""
    if tail_lines is not None:
        if tail_lines <= 0:
            data = b""
        else:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-tail_lines:])
    if limit_bytes is not None and limit_bytes >= 0:
        data = data[:limit_bytes]
    return data


def _int(query: Mapping[str, list[str]], name: str) -> int | None:
    values = query.get(name)
    if not values or values[0] == "":
        return None
    return int(values[0])


def _flag(query: Mapping[str, list[str]], name: str) -> bool:
    return (query.get(name) or ["false"])[0].lower() in ("true", "1")


def allowed_client(peer_cert: Mapping[str, Any] | None) -> bool:
    """The API server's kubelet client, or a cluster admin (the CA has already vouched for it)."""
    if not peer_cert:
        return False
    names = [value for rdn in peer_cert.get("subject", ()) for key, value in rdn if key == "commonName"]
    groups = [value for rdn in peer_cert.get("subject", ()) for key, value in rdn if key == "organizationName"]
    return API_SERVER_CLIENT_CN in names or ADMIN_GROUP in groups


# -- the HTTPS endpoint ----------------------------------------------------------------------------


class LogServer:
    """Serves ``/containerLogs/NS/POD/CONTAINER`` and ``/healthz`` on ``host:port`` (0: a free one)."""

    def __init__(
        self,
        pods_dir: Path,
        is_running: Callable[[str, str, str], bool],
        *,
        cert: Path,
        key: Path,
        client_ca: Path,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(cert), str(key))
        context.load_verify_locations(str(client_ca))
        context.verify_mode = ssl.CERT_REQUIRED
        handler = _handler(pods_dir, is_running)
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, name="kubelet-logs", daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def pod_dir(pods_dir: Path, namespace: str, pod: str) -> Path | None:
    """The node's directory of the newest pod of that name (a recreated pod gets a new one)."""
    found = [path for path in pods_dir.glob(f"{namespace}_{pod}_*") if path.is_dir()]
    return max(found, key=lambda path: path.stat().st_mtime) if found else None


def _handler(pods_dir: Path, is_running: Callable[[str, str, str], bool]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        def do_GET(self) -> None:
            if not allowed_client(self.connection.getpeercert()):
                self._text(403, "Forbidden: only the API server reads container logs here")
                return
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/healthz":
                self._text(200, "ok")
                return
            match = _PATH.match(url.path)
            if match is None:
                self._text(404, f"the local node serves container logs only, not {url.path}")
                return
            namespace, pod, container = (urllib.parse.unquote(match[k]) for k in ("namespace", "pod", "container"))
            try:
                query = urllib.parse.parse_qs(url.query)
                tail_lines, limit_bytes = _int(query, "tailLines"), _int(query, "limitBytes")
            except ValueError:
                self._text(400, "tailLines and limitBytes must be integers")
                return
            directory = pod_dir(pods_dir, namespace, pod)
            if directory is None:
                self._text(404, f'pod "{pod}" in namespace "{namespace}" has never run on this node')
                return
            log_path = directory / f"{container}.log"
            starts = read_starts(log_path)
            size = log_path.stat().st_size if log_path.exists() else 0
            span = start_range(starts, size, _flag(query, "previous"))
            if span is None:
                if _flag(query, "previous"):
                    self._text(400, f'previous terminated container "{container}" in pod "{pod}" not found')
                else:
                    self._text(400, f'container "{container}" in pod "{pod}" is waiting to start')
                return
            if _flag(query, "follow") and not _flag(query, "previous"):
                # The reader may stop following at any time.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._follow(log_path, namespace, pod, container, span[0], tail_lines, limit_bytes)
                return
            with log_path.open("rb") as output:
                output.seek(span[0])
                data = output.read(span[1] - span[0])
            self._send(200, select(data, tail_lines, limit_bytes))

        def _follow(
            self,
            log_path: Path,
            namespace: str,
            pod: str,
            container: str,
            offset: int,
            tail_lines: int | None,
            limit_bytes: int | None,
        ) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            with log_path.open("rb") as output:
                output.seek(offset)
                first = select(output.read(), tail_lines, None)
                sent = 0
                chunk = first
                while True:
                    if limit_bytes is not None:
                        chunk = chunk[: max(0, limit_bytes - sent)]
                    if chunk:
                        self._chunk(chunk)
                        sent += len(chunk)
                    if limit_bytes is not None and sent >= limit_bytes:
                        break
                    running = is_running(namespace, pod, container)
                    chunk = output.read()
                    if not chunk and not running:
                        break
                    if not chunk:
                        time.sleep(_FOLLOW_POLL_SECONDS)
            self._chunk(b"")

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _send(self, code: int, data: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _text(self, code: int, message: str) -> None:
            self._send(code, message.encode())

    return Handler
