"""Register the pod injection webhook of an operator process on loopback, as an install would."""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from feast_lineage.domain.webhook_config import injection_webhook_configuration
from feast_lineage.injection.service import MUTATE_PODS_PATH

OPERATOR_NAMESPACE = "feast-lineage-system"
CERT_SECRET = "feast-lineage-webhook-cert"


def register_injection_webhook(api: client.ApiClient, port: int, url_port: int | None = None) -> list[str]:
    """Create (or replace) the MutatingWebhookConfiguration calling ``https://127.0.0.1:<port>``;
    return the ``feast-lineage run`` arguments that serve it there. The operator sets the caBundle."""
    core = client.CoreV1Api(api)
    try:
        core.create_namespace({"metadata": {"name": OPERATOR_NAMESPACE}})
    except ApiException as error:
        if error.status != 409:
            raise
    url = f"https://127.0.0.1:{url_port or port}{MUTATE_PODS_PATH}"
    manifest = injection_webhook_configuration({"url": url})
    admission = client.AdmissionregistrationV1Api(api)
    name = manifest["metadata"]["name"]
    try:
        current = admission.read_mutating_webhook_configuration(name)
        manifest["metadata"]["resourceVersion"] = current.metadata.resource_version
        admission.replace_mutating_webhook_configuration(name, manifest)
    except ApiException as error:
        if error.status != 404:
            raise
        admission.create_mutating_webhook_configuration(manifest)
    return [
        "--webhook-port",
        str(port),
        "--webhook-host",
        "127.0.0.1",
        "--webhook-cert-secret",
        f"{OPERATOR_NAMESPACE}/{CERT_SECRET}",
        "--webhook-ip",
        "127.0.0.1",
    ]
