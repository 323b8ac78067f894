"""A webhook server over real TLS on loopback, for the tests of how it answers and how it stops."""

from __future__ import annotations

import http.client
import json
import ssl
from pathlib import Path

from feast_lineage.certificates import issue, make_ca
from feast_lineage.devcluster.processes import free_port
from feast_lineage.injection.server import Review, WebhookServer
from feast_lineage.injection.tls import ServingMaterial


class Material:
    def __init__(self, material: ServingMaterial) -> None:
        self.material = material

    def load(self) -> ServingMaterial:
        return self.material


def started_server(
    tmp_path: Path, routes: dict[str, Review], inline: frozenset[str]
) -> tuple[WebhookServer, int, ssl.SSLContext]:
    """A started server with a certificate of a new CA for 127.0.0.1; its port, and a client context
    that trusts that CA."""
    ca = make_ca("webhook-test-ca")
    leaf = issue(ca, "127.0.0.1", ip_addresses=("127.0.0.1",), server=True)
    port = free_port()
    server = WebhookServer(
        "127.0.0.1", port, Material(ServingMaterial(leaf.cert_pem, leaf.key_pem, ca.cert_pem)), routes, inline=inline
    )
    server.start()
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    return server, port, ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))


def post(connection: http.client.HTTPSConnection, path: str, uid: str) -> tuple[int, bytes]:
    body = json.dumps({"kind": "AdmissionReview", "request": {"uid": uid}})
    connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read()
