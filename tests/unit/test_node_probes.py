"""The local node's probes against real listeners and processes on this machine."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest

from feast_lineage.devcluster.probes import ContainerProbes, ProbeContext, run_probe
from tests.cluster_helpers import wait_until


class _Status(http.server.BaseHTTPRequestHandler):
    code = 200

    def do_GET(self) -> None:
        self.send_response(int(self.path.strip("/") or self.code))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Status)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()


@pytest.fixture
def process() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(["sleep", "60"])
    yield child
    child.kill()
    child.wait()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _context(pid: int = 0, **ports: int) -> ProbeContext:
    return ProbeContext("127.0.0.1", pid, {"PATH": "/usr/bin:/bin"}, ports)


def test_http_probe_passes_on_2xx_3xx_and_fails_otherwise(http_port: int) -> None:
    assert run_probe({"httpGet": {"path": "/204", "port": http_port}}, _context()) == (True, "")
    assert run_probe({"httpGet": {"path": "/302", "port": "web"}}, _context(web=http_port))[0]
    ok, message = run_probe({"httpGet": {"path": "/500", "port": http_port}}, _context())
    assert not ok and message == "HTTP probe failed with statuscode: 500"
    ok, message = run_probe({"httpGet": {"path": "/", "port": _closed_port()}}, _context())
    assert not ok and "Connection refused" in message


def test_tcp_probe_connects(http_port: int) -> None:
    assert run_probe({"tcpSocket": {"port": http_port}}, _context())[0]
    assert not run_probe({"tcpSocket": {"port": _closed_port()}}, _context())[0]


def test_exec_probe_runs_in_the_processes_namespaces(process: subprocess.Popen[bytes]) -> None:
    assert run_probe({"exec": {"command": ["true"]}}, _context(process.pid)) == (True, "")
    ok, message = run_probe({"exec": {"command": ["sh", "-c", "echo nope; exit 3"]}}, _context(process.pid))
    assert not ok and "exited with 3" in message and "nope" in message


def test_liveness_fails_after_its_threshold_and_readiness_follows_its_probe(http_port: int) -> None:
    readiness: list[bool] = []
    unhealthy: list[str] = []
    container = {
        "name": "main",
        "readinessProbe": {"httpGet": {"path": "/200", "port": http_port}, "periodSeconds": 0.05},
        "livenessProbe": {"tcpSocket": {"port": _closed_port()}, "periodSeconds": 0.05, "failureThreshold": 3},
    }
    probes = ContainerProbes(
        container, _context(), readiness.append, lambda kind, message: unhealthy.append(kind), lambda r, m: None
    )
    probes.start()
    wait_until(lambda: unhealthy and readiness, 10, "the liveness probe to give up, the readiness probe to pass")
    probes.stop()
    assert unhealthy == ["Liveness"]
    assert readiness == [True]
