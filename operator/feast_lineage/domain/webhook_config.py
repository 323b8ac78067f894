"""The MutatingWebhookConfiguration of the pod injection webhook, rendered once for every install path.

Its ``caBundle`` is never rendered here: cert-manager's CA injector or the operator itself
sets it, so a GitOps tool that applies this manifest never sees it drift.
"""

from __future__ import annotations

from typing import Any

from feast_lineage.domain.labels import LABEL_INJECT, LABEL_SETTLED

INJECTION_CONFIGURATION = "feast-lineage-injection"
VALIDATION_CONFIGURATION = "feast-lineage-validation"
VALIDATION_WEBHOOK = "resources.validate.featurelineage.io"
PROVENANCE_CONFIGURATION = "feast-lineage-provenance"
PROVENANCE_WEBHOOK = "creator.featurelineage.io"
PROVENANCE_OR_SPEC_CHANGE = (
    "request.operation == 'CREATE' || object.spec != oldObject.spec || "
    "('annotations' in object.metadata ? object.metadata.annotations : {}) != "
    "('annotations' in oldObject.metadata ? oldObject.metadata.annotations : {}) || "
    "('ownerReferences' in object.metadata ? object.metadata.ownerReferences : []) != "
    "('ownerReferences' in oldObject.metadata ? oldObject.metadata.ownerReferences : []) || "
    # A run's settled label, added: it takes the run out of the operator's watch.
    f"('labels' in object.metadata && '{LABEL_SETTLED}' in object.metadata.labels && "
    f"!('labels' in oldObject.metadata && '{LABEL_SETTLED}' in oldObject.metadata.labels))"
)
_RESOURCE_RULE = {
    "apiGroups": ["featurelineage.io"],
    "apiVersions": ["*"],
    "resources": ["featurestoreprojects", "materializationjobs"],
    "scope": "Namespaced",
}
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


def validation_webhook_configuration(
    client_config: dict[str, Any],
    operator_username: str,
    *,
    name: str = VALIDATION_CONFIGURATION,
    timeout_seconds: int = 10,
) -> dict[str, Any]:
    """The ValidatingWebhookConfiguration guarding both kinds: creates and spec changes by anyone
    but the operator itself; deletions never depend on it."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "feast-lineage"}},
        "webhooks": [
            {
                "name": VALIDATION_WEBHOOK,
                "admissionReviewVersions": ["v1"],
                "clientConfig": client_config,
                # Fail closed: it guards privilege, so an outage must not let a request through.
                "failurePolicy": "Fail",
                "timeoutSeconds": timeout_seconds,
                "sideEffects": "None",
                "matchPolicy": "Equivalent",
                "matchConditions": [
                    {"name": "not-the-operator", "expression": f"request.userInfo.username != '{operator_username}'"},
                    {
                        # Provenance lives in metadata too (creator, a run's schedule marks): creates,
                        # spec, annotation and owner changes and a run's settled label added are
                        # checked; finalizers never wait on it.
                        "name": "spec-or-provenance-may-change",
                        "expression": PROVENANCE_OR_SPEC_CHANGE,
                    },
                ],
                "rules": [{"operations": ["CREATE", "UPDATE"], **_RESOURCE_RULE}],
            }
        ],
    }


def provenance_webhook_configuration(
    client_config: dict[str, Any], *, name: str = PROVENANCE_CONFIGURATION, timeout_seconds: int = 5
) -> dict[str, Any]:
    """The MutatingWebhookConfiguration that records who created each resource, and puts the run
    finalizer on each MaterializationJob as it is created. It fails open: the validating webhook
    (which fails closed) refuses a creator the request could have forged, the operator reports a
    creator it did not record as self-reported, and adds a finalizer that is missing itself."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "feast-lineage"}},
        "webhooks": [
            {
                "name": PROVENANCE_WEBHOOK,
                "admissionReviewVersions": ["v1"],
                "clientConfig": client_config,
                "failurePolicy": "Ignore",
                "timeoutSeconds": timeout_seconds,
                "sideEffects": "None",
                "reinvocationPolicy": "Never",
                "matchPolicy": "Equivalent",
                "rules": [{"operations": ["CREATE"], **_RESOURCE_RULE}],
            }
        ],
    }
