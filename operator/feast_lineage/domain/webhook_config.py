"""The MutatingWebhookConfiguration of the pod injection webhook, rendered once for every install path.

Its ``caBundle`` is never rendered here: cert-manager's CA injector or the operator itself
sets it, so a GitOps tool that applies this manifest never sees it drift.
"""

from __future__ import annotations

from typing import Any

from feast_lineage.domain.labels import LABEL_INJECT

INJECTION_CONFIGURATION = "feast-lineage-injection"
INJECTION_WEBHOOK = "pods.inject.featurelineage.io"
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")


def injection_webhook_configuration(
    client_config: dict[str, Any],
    *,
    name: str = INJECTION_CONFIGURATION,
    timeout_seconds: int = 5,
    failure_policy: str = "Ignore",
    excluded_namespaces: tuple[str, ...] = SYSTEM_NAMESPACES,
    included_namespaces: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``client_config`` is ``{"url": ...}`` or ``{"service": {...}}`` (without caBundle).

    An operator that watches ``included_namespaces`` only is called for pods there and nowhere else.
    """
    namespaces = (
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": list(included_namespaces)}
        if included_namespaces
        else {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": list(excluded_namespaces)}
    )
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "feast-lineage"}},
        "webhooks": [
            {
                "name": INJECTION_WEBHOOK,
                "admissionReviewVersions": ["v1"],
                "clientConfig": client_config,
                # Fail open: a webhook outage must never block pods; the operator reports the misses.
                "failurePolicy": failure_policy,
                "timeoutSeconds": timeout_seconds,
                # Called on dry runs too, which the benchmark relies on: injection has no side effect.
                "sideEffects": "None",
                "reinvocationPolicy": "IfNeeded",
                "matchPolicy": "Equivalent",
                # Only labelled pods ever reach the webhook; system namespaces never do.
                "objectSelector": {"matchExpressions": [{"key": LABEL_INJECT, "operator": "Exists"}]},
                "namespaceSelector": {"matchExpressions": [namespaces]},
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                        "scope": "Namespaced",
                    }
                ],
            }
        ],
    }
