"""Register the pod injection webhook of an operator process on loopback, as an install would."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from feast_lineage.domain.webhook_config import (
    injection_webhook_configuration,
    provenance_webhook_configuration,
    validation_webhook_configuration,
)
from feast_lineage.injection.service import MUTATE_PODS_PATH, MUTATE_RESOURCES_PATH, VALIDATE_RESOURCES_PATH

OPERATOR_NAMESPACE = "feast-lineage-system"
CERT_SECRET = "feast-lineage-webhook-cert"
DEMO_POLICY_ARGS = [
    # The embedded cluster keeps Feast's files on hostPath volumes: an administrator's choice for a
    # demo, never the default.
    *("--runner-volume-type", "configMap", "--runner-volume-type", "secret", "--runner-volume-type", "emptyDir"),
    *("--runner-volume-type", "persistentVolumeClaim", "--runner-volume-type", "hostPath"),
]


def _create_or_replace(read: Any, create: Any, replace: Any, manifest: dict[str, Any]) -> None:
    name = manifest["metadata"]["name"]
    try:
        current = read(name)
        manifest["metadata"]["resourceVersion"] = current.metadata.resource_version
        replace(name, manifest)
    except ApiException as error:
        if error.status != 404:
            raise
        create(manifest)


def register_injection_webhook(
    api: client.ApiClient, port: int, url_port: int | None = None, operator_username: str = "admin"
) -> list[str]:
    """Create (or replace) the webhook configurations calling ``https://127.0.0.1:<port>``; return the
    ``feast-lineage run`` arguments that serve them there. The operator sets their caBundle."""
    core = client.CoreV1Api(api)
    try:
        core.create_namespace({"metadata": {"name": OPERATOR_NAMESPACE}})
    except ApiException as error:
        if error.status != 409:
            raise
    base = f"https://127.0.0.1:{url_port or port}"
    admission = client.AdmissionregistrationV1Api(api)
    _create_or_replace(
        admission.read_mutating_webhook_configuration,
        admission.create_mutating_webhook_configuration,
        admission.replace_mutating_webhook_configuration,
        injection_webhook_configuration({"url": base + MUTATE_PODS_PATH}),
    )
    _create_or_replace(
        admission.read_mutating_webhook_configuration,
        admission.create_mutating_webhook_configuration,
        admission.replace_mutating_webhook_configuration,
        provenance_webhook_configuration({"url": base + MUTATE_RESOURCES_PATH}),
    )
    _create_or_replace(
        admission.read_validating_webhook_configuration,
        admission.create_validating_webhook_configuration,
        admission.replace_validating_webhook_configuration,
        validation_webhook_configuration({"url": base + VALIDATE_RESOURCES_PATH}, operator_username),
    )
    return [
        "--webhook-port",
        str(port),
        "--webhook-host",
        "127.0.0.1",
        "--webhook-cert-secret",
        f"{OPERATOR_NAMESPACE}/{CERT_SECRET}",
        "--webhook-ip",
        "127.0.0.1",
        *DEMO_POLICY_ARGS,
    ]
