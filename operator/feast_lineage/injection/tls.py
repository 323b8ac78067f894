"""The webhook's serving certificate: from files (cert-manager) or made by the operator in one Secret.

With files, cert-manager issues and rotates the certificate and its CA injector fills the
``caBundle``. Without, the operator keeps a CA and a serving certificate in one Secret:
the first replica to create it wins (a create is atomic; the others read theirs), renewal
replaces it only at the resourceVersion that was read, and every replica patches the same
``caBundle`` from that one Secret, so replicas never fight over it. A renewal makes a new CA but
keeps the previous one in the bundle: the other replicas serve the previous certificate until
they next read the Secret, and the API server must still trust it meanwhile.
"""

from __future__ import annotations

import base64
import datetime
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kubernetes.client.exceptions import ApiException

from feast_lineage import certificates
from feast_lineage.controller.kube import read
from feast_lineage.controller.rest import AdmissionRegistrationV1, CoreV1

log = logging.getLogger(__name__)

RENEW_BEFORE = datetime.timedelta(days=30)
CA_KEY, CERT_KEY, KEY_KEY = "ca.crt", "tls.crt", "tls.key"


@dataclass(frozen=True)
class ServingMaterial:
    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes | None
    """The CA to publish as caBundle; None when someone else (cert-manager) publishes it."""


class CertificateSource(Protocol):
    def load(self) -> ServingMaterial: ...


class FileCertificates:
    """tls.crt / tls.key (and ca.crt, if present) in a directory, as a mounted cert-manager Secret has them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def load(self) -> ServingMaterial:
        return ServingMaterial(
            (self.directory / CERT_KEY).read_bytes(),
            (self.directory / KEY_KEY).read_bytes(),
            None,  # cert-manager's CA injector owns the caBundle
        )


def _expires_soon(cert_pem: bytes, now: datetime.datetime) -> bool:
    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.not_valid_after_utc - now < RENEW_BEFORE


def _newest_valid(bundle: bytes) -> bytes:
    """The first (newest) CA of a bundle while it is still valid, as PEM; else nothing."""
    try:
        cas = x509.load_pem_x509_certificates(bundle)
    except ValueError:
        return b""
    if not cas or cas[0].not_valid_after_utc <= datetime.datetime.now(datetime.UTC):
        return b""
    return cas[0].public_bytes(serialization.Encoding.PEM)


def _covers(cert_pem: bytes, dns_names: tuple[str, ...], ip_addresses: tuple[str, ...]) -> bool:
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    names = set(sans.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return set(dns_names) <= names and set(ip_addresses) <= ips


class SecretCertificates:
    """A CA and serving certificate the operator makes and keeps in one Secret."""

    def __init__(
        self, core: CoreV1, namespace: str, name: str, dns_names: tuple[str, ...], ips: tuple[str, ...]
    ) -> None:
        self.core = core
        self.namespace = namespace
        self.name = name
        self.dns_names = dns_names
        self.ips = ips

    def _new_data(self, previous_bundle: bytes = b"") -> dict[str, str]:
        ca = certificates.make_ca("feast-lineage-webhook-ca")
        # The names are in the SANs; a common name may have 64 characters at most, a Service's DNS name more.
        common_name = next((name for name in self.dns_names if len(name) <= 64), "feast-lineage-webhook")
        leaf = certificates.issue(
            ca,
            common_name,
            dns_names=self.dns_names,
            ip_addresses=self.ips,
            server=True,
        )
        return {
            CA_KEY: base64.b64encode(ca.cert_pem + _newest_valid(previous_bundle)).decode(),
            CERT_KEY: base64.b64encode(leaf.cert_pem).decode(),
            KEY_KEY: base64.b64encode(leaf.key_pem).decode(),
        }

    def _read(self) -> dict[str, Any] | None:
        secret = read(self.core.read_namespaced_secret, self.name, self.namespace)
        if secret is None:
            return None
        return {"data": dict(secret.get("data") or {}), "resourceVersion": secret["metadata"]["resourceVersion"]}

    def load(self) -> ServingMaterial:
        for _ in range(3):
            current = self._read()
            if current is None:
                body = {
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "type": "kubernetes.io/tls",
                    "data": self._new_data(),
                }
                try:
                    self.core.create_namespaced_secret(self.namespace, body)
                    log.info("created webhook certificate Secret %s/%s", self.namespace, self.name)
                except ApiException as error:
                    if error.status != 409:  # another replica made it first: use theirs
                        raise
                continue
            data = current["data"]
            cert_pem = base64.b64decode(data.get(CERT_KEY, ""))
            now = datetime.datetime.now(datetime.UTC)
            if (
                not all(data.get(k) for k in (CA_KEY, CERT_KEY, KEY_KEY))
                or _expires_soon(cert_pem, now)
                or not _covers(cert_pem, self.dns_names, self.ips)
            ):
                body = {
                    "metadata": {
                        "name": self.name,
                        "namespace": self.namespace,
                        "resourceVersion": current["resourceVersion"],
                    },
                    "type": "kubernetes.io/tls",
                    "data": self._new_data(base64.b64decode(data.get(CA_KEY, ""))),
                }
                try:
                    self.core.replace_namespaced_secret(self.name, self.namespace, body)
                    log.info("renewed webhook certificate Secret %s/%s", self.namespace, self.name)
                except ApiException as error:
                    if error.status != 409:  # renewed by another replica meanwhile: read again
                        raise
                continue
            return ServingMaterial(cert_pem, base64.b64decode(data[KEY_KEY]), base64.b64decode(data[CA_KEY]))
        raise RuntimeError(f"could not settle the webhook certificate Secret {self.namespace}/{self.name}")


def write_key_pair(material: ServingMaterial) -> tuple[Path, Path]:
    """Files for ``SSLContext.load_cert_chain`` (which reads only files), private to this process."""
    directory = Path(tempfile.mkdtemp(prefix="feast-lineage-webhook-"))
    cert_path, key_path = directory / CERT_KEY, directory / KEY_KEY
    cert_path.write_bytes(material.cert_pem)
    key_path.touch(mode=0o600)
    key_path.write_bytes(material.key_pem)
    return cert_path, key_path


def patch_ca_bundles(
    admission: AdmissionRegistrationV1, ca_pem: bytes, mutating: tuple[str, ...], validating: tuple[str, ...]
) -> None:
    """Set ``caBundle`` of every webhook in the named configurations; a no-op when already set."""
    bundle = base64.b64encode(ca_pem).decode()
    for kinds, names in (
        ((admission.read_mutating_webhook_configuration, admission.patch_mutating_webhook_configuration), mutating),
        (
            (admission.read_validating_webhook_configuration, admission.patch_validating_webhook_configuration),
            validating,
        ),
    ):
        get, patch = kinds
        for name in names:
            configuration = read(get, name)
            if configuration is None:
                log.warning("webhook configuration %s not found; its caBundle cannot be set", name)
                continue
            ops = [
                {
                    "op": "replace" if webhook.get("clientConfig", {}).get("caBundle") else "add",
                    "path": f"/webhooks/{index}/clientConfig/caBundle",
                    "value": bundle,
                }
                for index, webhook in enumerate(configuration.get("webhooks") or [])
                if webhook.get("clientConfig", {}).get("caBundle") != bundle
            ]
            if ops:
                patch(name, ops)
                log.info("set caBundle of webhook configuration %s", name)
