"""The admission webhook server over real TLS: a review that makes no request is answered on the
server's event loop, one that may is answered on a thread, and either failing answers 500."""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from feast_lineage.certificates import issue, make_ca
from feast_lineage.devcluster.processes import free_port
from feast_lineage.injection.server import WebhookServer
from feast_lineage.injection.tls import ServingMaterial


class Material:
    def __init__(self, material: ServingMaterial) -> None:
        self.material = material

    def load(self) -> ServingMaterial:
        return self.material


def answering(threads: list[str], fail: bool = False) -> Any:
    def review(body: dict[str, Any]) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        if fail:
            raise RuntimeError("review failed")
        return {"kind": "AdmissionReview", "response": {"uid": body["request"]["uid"], "allowed": True}}

    return review


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[http.client.HTTPSConnection, dict[str, list[str]]]]:
    ca = make_ca("webhook-test-ca")
    leaf = issue(ca, "127.0.0.1", ip_addresses=("127.0.0.1",), server=True)
    threads: dict[str, list[str]] = {path: [] for path in ("/inline", "/threaded", "/inline-fails")}
    port = free_port()
    server = WebhookServer(
        "127.0.0.1",
        port,
        Material(ServingMaterial(leaf.cert_pem, leaf.key_pem, ca.cert_pem)),
        {
            "/inline": answering(threads["/inline"]),
            "/threaded": answering(threads["/threaded"]),
            "/inline-fails": answering(threads["/inline-fails"], fail=True),
        },
        inline=frozenset({"/inline", "/inline-fails"}),
    )
    server.start()
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    connection = http.client.HTTPSConnection(
        "127.0.0.1", port, context=ssl.create_default_context(cafile=str(tmp_path / "ca.pem")), timeout=10
    )
    try:
        yield connection, threads
    finally:
        connection.close()
        server.stop()


def post(connection: http.client.HTTPSConnection, path: str, uid: str) -> tuple[int, bytes]:
    body = json.dumps({"kind": "AdmissionReview", "request": {"uid": uid}})
    connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read()


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
