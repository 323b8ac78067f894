"""The apiserver calls a mutating webhook on 127.0.0.1 and the mutation lands: the path pod injection uses."""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from feast_lineage import certificates

pytestmark = pytest.mark.cluster

_PATCH = [{"op": "add", "path": "/metadata/annotations", "value": {"test.featurelineage.io/mutated": "yes"}}]


class _Handler(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.seen.append(review["request"])
        response = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {
                "uid": review["request"]["uid"],
                "allowed": True,
                "patchType": "JSONPatch",
                "patch": base64.b64encode(json.dumps(_PATCH).encode()).decode(),
            },
        }
        body = json.dumps(response).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def webhook_server(tmp_path: Path) -> Iterator[tuple[str, bytes]]:
    """An HTTPS admission webhook on 127.0.0.1 with its own CA; yields (url, caBundle)."""
    ca = certificates.make_ca("test-webhook-ca")
    serving = certificates.issue(ca, "127.0.0.1", ip_addresses=("127.0.0.1",), server=True)
    serving.write(tmp_path / "tls.crt", tmp_path / "tls.key")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/mutate", ca.cert_pem
    finally:
        server.shutdown()


def test_mutating_webhook_on_loopback_mutates_pods(
    api: client.ApiClient, namespace: str, webhook_server: tuple[str, bytes]
) -> None:
    url, ca_bundle = webhook_server
    admission = client.AdmissionregistrationV1Api(api)
    name = f"test-mutator-{namespace}"
    admission.create_mutating_webhook_configuration(
        {
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": "mutate.test.featurelineage.io",
                    "clientConfig": {"url": url, "caBundle": base64.b64encode(ca_bundle).decode()},
                    "rules": [
                        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}
                    ],
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "failurePolicy": "Fail",
                    "timeoutSeconds": 5,
                }
            ],
        }
    )
    try:
        pod = client.CoreV1Api(api).create_namespaced_pod(
            namespace,
            {
                "metadata": {"name": "mutated"},
                "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["true"]}]},
            },
        )
    finally:
        admission.delete_mutating_webhook_configuration(name)
    assert pod.metadata.annotations == {"test.featurelineage.io/mutated": "yes"}
    request = next(r for r in _Handler.seen if r["namespace"] == namespace)
    assert request["kind"]["kind"] == "Pod" and request["operation"] == "CREATE"
