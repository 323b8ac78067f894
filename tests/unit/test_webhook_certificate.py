"""The operator's own webhook certificate for the names a chart install gives it."""

from __future__ import annotations

import json
from typing import Any, cast

from cryptography import x509
from kubernetes.client.exceptions import ApiException

from feast_lineage.controller.rest import CoreV1
from feast_lineage.injection.tls import SecretCertificates


class _Response:
    """A raw response, as the operator's client returns it: the JSON body in ``data``."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps({**body, "metadata": {**body["metadata"], "resourceVersion": "1"}}).encode()


class FakeCore:
    """Just the Secret calls SecretCertificates makes."""

    def __init__(self) -> None:
        self.secret: dict[str, Any] | None = None

    def read_namespaced_secret(self, name: str, namespace: str, **_: Any) -> _Response:
        if self.secret is None:
            raise ApiException(status=404)
        return _Response(self.secret)

    def create_namespaced_secret(self, namespace: str, body: dict[str, Any]) -> None:
        self.secret = body

    def replace_namespaced_secret(self, name: str, namespace: str, body: dict[str, Any]) -> None:
        self.secret = body


def test_a_service_name_longer_than_a_common_name_allows_is_still_served() -> None:
    long_name = "rbac-0a1b2-feast-lineage-operator-webhook.feast-lineage-rbac-0a1b2.svc"
    assert len(long_name) > 64
    names = (long_name, f"{long_name}.cluster.local")
    material = SecretCertificates(cast(CoreV1, FakeCore()), "ns", "cert", names, ("127.0.0.1",)).load()
    certificate = x509.load_pem_x509_certificate(material.cert_pem)
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == list(names)
    assert material.ca_pem is not None


def test_a_renewal_keeps_trusting_the_certificate_other_replicas_still_serve() -> None:
    core = FakeCore()
    before = SecretCertificates(cast(CoreV1, core), "ns", "cert", ("old.ns.svc",), ()).load()
    # Another replica renews it (here: for a name the old certificate lacks); this one still serves `before`.
    after = SecretCertificates(cast(CoreV1, core), "ns", "cert", ("old.ns.svc", "new.ns.svc"), ()).load()
    assert after.cert_pem != before.cert_pem and after.ca_pem is not None and before.ca_pem is not None
    new_ca, previous_ca = x509.load_pem_x509_certificates(after.ca_pem)
    x509.load_pem_x509_certificate(after.cert_pem).verify_directly_issued_by(new_ca)
    x509.load_pem_x509_certificate(before.cert_pem).verify_directly_issued_by(previous_ca)
    # The bundle does not grow: a second renewal keeps only the CA before it.
    again = SecretCertificates(cast(CoreV1, core), "ns", "cert", ("third.ns.svc",), ()).load()
    assert again.ca_pem is not None and len(x509.load_pem_x509_certificates(again.ca_pem)) == 2
    assert x509.load_pem_x509_certificates(again.ca_pem)[1] == new_ca
