"""The local node's container-log endpoint: which bytes it serves, and to whom (real TLS, no cluster)."""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from feast_lineage import certificates
from feast_lineage.devcluster import node_logs
from feast_lineage.devcluster.node_logs import Start


def test_the_last_start_and_the_one_before() -> None:
    starts = [Start(0, 10), Start(30, 42)]
    assert node_logs.start_range(starts, 50, previous=False) == (42, 50)
    assert node_logs.start_range(starts, 50, previous=True) == (10, 30)
    assert node_logs.start_range(starts[:1], 50, previous=True) is None
    assert node_logs.start_range([], 0, previous=False) is None


def test_tail_then_limit() -> None:
    data = b"one\ntwo\nthree\n"
    assert node_logs.select(data, None, None) == data
    assert node_logs.select(data, 2, None) == b"two\nthree\n"
    assert node_logs.select(data, 0, None) == b""
    assert node_logs.select(data, 2, 5) == b"two\nt"
    assert node_logs.select(b"no newline", 1, None) == b"no newline"


def test_only_the_api_server_or_an_admin_is_served() -> None:
    def subject(cn: str, *orgs: str) -> dict[str, object]:
        return {"subject": ((("commonName", cn),), *((("organizationName", org),) for org in orgs))}

    assert node_logs.allowed_client(subject("kube-apiserver-kubelet-client"))
    assert node_logs.allowed_client(subject("admin", "system:masters"))
    assert not node_logs.allowed_client(subject("system:serviceaccount:x:y", "system:serviceaccounts"))
    assert not node_logs.allowed_client(None)


@dataclass
class Endpoint:
    port: int
    pods: Path
    pki: Path
    running: set[tuple[str, str, str]]

    def get(self, path: str, client: str = "apiserver") -> tuple[int, bytes]:
        context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        context.load_cert_chain(str(self.pki / f"{client}.crt"), str(self.pki / f"{client}.key"))
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def container(self, namespace: str, pod: str, uid: str, name: str) -> Path:
        directory = self.pods / f"{namespace}_{pod}_{uid}"
        directory.mkdir(parents=True, exist_ok=True)
        return directory / f"{name}.log"


def start(log: Path, output: bytes) -> None:
    """What the node does for one start of a container: the header line, then the output."""
    header = b"--- 2026-11-27T10:00:00Z python run.py\n"
    offset = log.stat().st_size if log.exists() else 0
    node_logs.record_start(log, offset, offset + len(header))
    with log.open("ab") as out:
        out.write(header + output)


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[Endpoint]:
    pki = tmp_path / "pki"
    pki.mkdir()
    ca = certificates.make_ca("test-ca")
    ca.write(pki / "ca.crt", pki / "ca.key")
    certificates.issue(ca, "node", ip_addresses=("127.0.0.1",), server=True).write(pki / "node.crt", pki / "node.key")
    certificates.issue(ca, "kube-apiserver-kubelet-client", client=True).write(
        pki / "apiserver.crt", pki / "apiserver.key"
    )
    certificates.issue(ca, "someone", organizations=("developers",), client=True).write(
        pki / "someone.crt", pki / "someone.key"
    )
    other = certificates.make_ca("other-ca")
    certificates.issue(other, "kube-apiserver-kubelet-client", client=True).write(
        pki / "forged.crt", pki / "forged.key"
    )
    running: set[tuple[str, str, str]] = set()
    server = node_logs.LogServer(
        tmp_path / "pods",
        lambda ns, pod, container: (ns, pod, container) in running,
        cert=pki / "node.crt",
        key=pki / "node.key",
        client_ca=pki / "ca.crt",
    )
    server.start()
    try:
        yield Endpoint(server.port, tmp_path / "pods", pki, running)
    finally:
        server.stop()


def test_a_finished_containers_output_without_the_nodes_headers(endpoint: Endpoint) -> None:
    log = endpoint.container("ns", "train-x", "aaaa1111", "train")
    start(log, b"first try\nboom\n")
    start(log, b'second try\n{"ok": true}\n')
    assert endpoint.get("/containerLogs/ns/train-x/train") == (200, b'second try\n{"ok": true}\n')
    assert endpoint.get("/containerLogs/ns/train-x/train?previous=true") == (200, b"first try\nboom\n")
    assert endpoint.get("/containerLogs/ns/train-x/train?tailLines=1") == (200, b'{"ok": true}\n')
    assert endpoint.get("/containerLogs/ns/train-x/train?limitBytes=6") == (200, b"second")
    # A pod recreated under the same name: its own, newer directory.
    time.sleep(0.01)
    start(endpoint.container("ns", "train-x", "bbbb2222", "train"), b"the new pod\n")
    assert endpoint.get("/containerLogs/ns/train-x/train") == (200, b"the new pod\n")


def test_what_is_not_there(endpoint: Endpoint) -> None:
    code, body = endpoint.get("/containerLogs/ns/nothing/c")
    assert code == 404 and b"never run on this node" in body
    endpoint.container("ns", "waiting", "cccc", "main")
    code, body = endpoint.get("/containerLogs/ns/waiting/main")
    assert code == 400 and body == b'container "main" in pod "waiting" is waiting to start'
    start(endpoint.container("ns", "once", "dddd", "main"), b"x\n")
    code, body = endpoint.get("/containerLogs/ns/once/main?previous=true")
    assert code == 400 and b"previous terminated container" in body
    assert endpoint.get("/containerLogs/ns/once/main?tailLines=x")[0] == 400
    assert endpoint.get("/exec/ns/once/main")[0] == 404
    assert endpoint.get("/healthz") == (200, b"ok")


def test_clients_other_than_the_api_server_are_refused(endpoint: Endpoint) -> None:
    start(endpoint.container("ns", "secret", "eeee", "main"), b"token=abc\n")
    assert endpoint.get("/containerLogs/ns/secret/main", client="someone")[0] == 403
    with pytest.raises(ssl.SSLError):
        endpoint.get("/containerLogs/ns/secret/main", client="forged")
    context = ssl.create_default_context(cafile=str(endpoint.pki / "ca.crt"))
    connection = http.client.HTTPSConnection("127.0.0.1", endpoint.port, context=context, timeout=10)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        connection.request("GET", "/containerLogs/ns/secret/main")
        connection.getresponse().read()


def test_follow_streams_until_the_container_ends(endpoint: Endpoint) -> None:
    log = endpoint.container("ns", "slow", "ffff", "main")
    start(log, b"one\n")
    endpoint.running.add(("ns", "slow", "main"))

    def finish() -> None:
        time.sleep(0.5)
        with log.open("ab") as out:
            out.write(b"two\n")
        time.sleep(0.5)
        with log.open("ab") as out:
            out.write(b"three\n")
        endpoint.running.discard(("ns", "slow", "main"))

    threading.Thread(target=finish).start()
    started = time.monotonic()
    code, body = endpoint.get("/containerLogs/ns/slow/main?follow=true")
    assert (code, body) == (200, b"one\ntwo\nthree\n")
    assert time.monotonic() - started >= 0.9
    assert json.loads(log.with_name("main.log.runs").read_text().splitlines()[0])["header"] == 0
