"""Every permission the operator needs, each with the reason: the one source of its Roles and ClusterRoles.

The chart's ``templates/_rules.tpl`` is generated from the lists below (``feast-lineage chart``), the
install manifest in ``deploy/`` is rendered from the chart, and a test compares the RBAC objects the
chart renders with :func:`rbac_objects` for each mode. No rule uses a wildcard.

Two modes: **cluster-wide** (one ClusterRole holds everything) and **namespaced** (the rules on
namespaced objects go into a Role in each watched namespace; a small ClusterRole keeps only what is
cluster-scoped). Rules on the operator's own namespace (its webhook certificate) are a Role there.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from feast_lineage.api import FEATURE_STORE_PROJECT_PLURAL, GROUP, MATERIALIZATION_JOB_PLURAL

PROJECTS = FEATURE_STORE_PROJECT_PLURAL
RUNS = MATERIALIZATION_JOB_PLURAL


class Names(enum.Enum):
    """``resourceNames`` that depend on the install."""

    WEBHOOK_CONFIGURATION = "webhookConfiguration"
    PROVENANCE_CONFIGURATION = "provenanceConfiguration"
    VALIDATION_CONFIGURATION = "validationConfiguration"
    CERT_SECRET = "certSecret"
    LEASE = "lease"
    """The Lease the replicas elect their leader with."""
    WATCHED_NAMESPACES = "watchedNamespaces"
    """The watched namespaces in namespaced mode; no restriction cluster-wide."""


class Feature(enum.Enum):
    """A rule that only some installs need."""

    WEBHOOK = "webhook"
    """The injection webhook is served."""
    OPERATOR_CERTIFICATES = "operatorCertificates"
    """The webhook is served with a certificate the operator makes itself (not cert-manager's)."""
    LEADER_ELECTION = "leaderElection"
    """Replicas elect a leader with a Lease."""


@dataclass(frozen=True)
class Rule:
    why: str
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    names: Names | None = None
    when: Feature | None = None


WATCHED_RULES = (
    Rule(
        "The operator lists and watches both kinds and patches them with its finalizer (and, once after an "
        "upgrade, takes off the annotations older versions left on projects); the reconcilers read them.",
        (GROUP,),
        (PROJECTS, RUNS),
        ("get", "list", "watch", "patch"),
    ),
    Rule(
        "Status (conditions, last apply, phase, pending audit records) is written whole through the status "
        "subresource (an update at the resourceVersion read; a patch for the fields of one writer).",
        (GROUP,),
        (f"{PROJECTS}/status", f"{RUNS}/status"),
        ("update", "patch"),
    ),
    Rule(
        "A project's materialization schedule creates its MaterializationJobs and prunes their history.",
        (GROUP,),
        (RUNS,),
        ("create", "delete"),
    ),
    Rule(
        "Children carry owner references that block their owner's deletion; where the "
        "OwnerReferencesPermissionEnforcement admission plugin is on, only who may update the owner's "
        "finalizers may set them.",
        (GROUP,),
        (f"{PROJECTS}/finalizers", f"{RUNS}/finalizers"),
        ("update",),
    ),
    Rule(
        "Runner Jobs: one per apply and per run, read and watched for their outcome; old apply Jobs are deleted.",
        ("batch",),
        ("jobs",),
        ("get", "list", "watch", "create", "delete"),
    ),
    Rule(
        "The rendered runner and client configurations are ConfigMaps it writes; a repo ConfigMap is read, "
        "and watched, so a project acts within seconds when the ConfigMap it waits for appears or changes; "
        "immutable snapshots of a repo ConfigMap are made per applied revision and deleted once nothing uses them.",
        ("",),
        ("configmaps",),
        ("get", "list", "watch", "create", "update", "delete"),
    ),
    Rule(
        "Secrets a project references are checked to exist, and Git and MLflow credentials are read; never listed.",
        ("",),
        ("secrets",),
        ("get",),
    ),
    Rule(
        "Runner pods carry the result in their termination message and say why they do not start; labelled "
        "training pods are watched for missed injections and for runs their killed processes left open.",
        ("",),
        ("pods",),
        ("list", "watch"),
    ),
    Rule(
        "Events on condition transitions and on injection warnings.",
        ("",),
        ("events",),
        ("create",),
    ),
)

CLUSTER_RULES = (
    Rule(
        "With a certificate of its own, the operator sets the caBundle of its webhook configuration, and of no other.",
        ("admissionregistration.k8s.io",),
        ("mutatingwebhookconfigurations",),
        ("get", "patch"),
        names=Names.WEBHOOK_CONFIGURATION,
        when=Feature.OPERATOR_CERTIFICATES,
    ),
    Rule(
        "With a certificate of its own, it sets the caBundle of the webhook that records each resource's creator.",
        ("admissionregistration.k8s.io",),
        ("mutatingwebhookconfigurations",),
        ("get", "patch"),
        names=Names.PROVENANCE_CONFIGURATION,
        when=Feature.OPERATOR_CERTIFICATES,
    ),
    Rule(
        "With a certificate of its own, it sets the caBundle of the webhook that validates the resources.",
        ("admissionregistration.k8s.io",),
        ("validatingwebhookconfigurations",),
        ("get", "patch"),
        names=Names.VALIDATION_CONFIGURATION,
        when=Feature.OPERATOR_CERTIFICATES,
    ),
    Rule(
        "A training pod's Pod Security level (its namespace's labels) decides which volumes it may be given.",
        ("",),
        ("namespaces",),
        ("get",),
        names=Names.WATCHED_NAMESPACES,
        when=Feature.WEBHOOK,
    ),
    Rule(
        "The validating webhook (trust model, rule 1) asks the API server whether the requesting user may "
        "themselves create pods, read the Secrets a spec references and use the runner's ServiceAccount.",
        ("authorization.k8s.io",),
        ("subjectaccessreviews",),
        ("create",),
        when=Feature.WEBHOOK,
    ),
)

OWN_NAMESPACE_RULES = (
    Rule(
        "The first replica creates the webhook certificate Secret (a create cannot be limited to one name).",
        ("",),
        ("secrets",),
        ("create",),
        when=Feature.OPERATOR_CERTIFICATES,
    ),
    Rule(
        "Every replica reads the webhook certificate Secret; one renews it 30 days before it expires.",
        ("",),
        ("secrets",),
        ("get", "update"),
        names=Names.CERT_SECRET,
        when=Feature.OPERATOR_CERTIFICATES,
    ),
    Rule(
        "The first replica creates the Lease the replicas elect their leader with (a create cannot be "
        "limited to one name).",
        ("coordination.k8s.io",),
        ("leases",),
        ("create",),
        when=Feature.LEADER_ELECTION,
    ),
    Rule(
        "Every replica reads the Lease; its holder renews it (and hands it back when it stops), another "
        "takes it over once it expires.",
        ("coordination.k8s.io",),
        ("leases",),
        ("get", "update"),
        names=Names.LEASE,
        when=Feature.LEADER_ELECTION,
    ),
)

CLEANUP_WATCHED_RULES = (
    Rule(
        "After uninstall, the operator's finalizer is removed from every project and run, so that none is "
        "left undeletable.",
        (GROUP,),
        (PROJECTS, RUNS),
        ("list", "patch"),
    ),
)

CLEANUP_OWN_NAMESPACE_RULES = (
    Rule(
        "It waits until the operator's pods are gone, so that none puts the finalizer back.",
        ("",),
        ("pods",),
        ("list",),
    ),
    Rule(
        "It deletes the webhook certificate Secret the operator made (Helm did not, so Helm would leave it).",
        ("",),
        ("secrets",),
        ("delete",),
        names=Names.CERT_SECRET,
        when=Feature.OPERATOR_CERTIFICATES,
    ),
    Rule(
        "It deletes the replicas' leader election Lease (made by the operator, so Helm would leave it).",
        ("coordination.k8s.io",),
        ("leases",),
        ("delete",),
        names=Names.LEASE,
        when=Feature.LEADER_ELECTION,
    ),
)

RULE_SETS: dict[str, tuple[Rule, ...]] = {
    "watched": WATCHED_RULES,
    "cluster": CLUSTER_RULES,
    "ownNamespace": OWN_NAMESPACE_RULES,
    "cleanupWatched": CLEANUP_WATCHED_RULES,
    "cleanupOwnNamespace": CLEANUP_OWN_NAMESPACE_RULES,
}


@dataclass(frozen=True)
class RbacParams:
    """What an install decides about RBAC; the chart's values map onto these fields."""

    fullname: str
    namespace: str
    """The operator's own namespace (the release's)."""
    service_account: str
    watch_namespaces: tuple[str, ...] = ()
    """Empty: cluster-wide."""
    webhook: bool = True
    operator_certificates: bool = True
    webhook_configuration: str = ""
    provenance_configuration: str = ""
    validation_configuration: str = ""
    cert_secret: str = ""
    leader_election: bool = True
    lease: str = ""
    cleanup: bool = True
    """The post-delete hook that removes finalizers, with its own ServiceAccount."""

    @property
    def cleanup_service_account(self) -> str:
        return f"{self.fullname}-cleanup"


def _enabled(feature: Feature | None, params: RbacParams) -> bool:
    if feature is None:
        return True
    if feature is Feature.WEBHOOK:
        return params.webhook
    if feature is Feature.LEADER_ELECTION:
        return params.leader_election
    return params.webhook and params.operator_certificates


def _names(names: Names | None, params: RbacParams) -> list[str]:
    if names is Names.WEBHOOK_CONFIGURATION:
        return [params.webhook_configuration]
    if names is Names.PROVENANCE_CONFIGURATION:
        return [params.provenance_configuration]
    if names is Names.VALIDATION_CONFIGURATION:
        return [params.validation_configuration]
    if names is Names.CERT_SECRET:
        return [params.cert_secret]
    if names is Names.LEASE:
        return [params.lease]
    if names is Names.WATCHED_NAMESPACES:
        return list(params.watch_namespaces)
    return []


def policy_rules(rules: Iterable[Rule], params: RbacParams) -> list[dict[str, Any]]:
    """The PolicyRules of ``rules`` that this install needs."""
    rendered = []
    for rule in rules:
        if not _enabled(rule.when, params):
            continue
        policy: dict[str, Any] = {
            "apiGroups": list(rule.api_groups),
            "resources": list(rule.resources),
            "verbs": list(rule.verbs),
        }
        names = _names(rule.names, params)
        if names:
            policy["resourceNames"] = names
        rendered.append(policy)
    return rendered


def _role(kind: str, name: str, namespace: str | None, rules: list[dict[str, Any]]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata, "rules": rules}


def _binding(
    kind: str, name: str, namespace: str | None, role_kind: str, account: str, account_namespace: str
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": account_namespace}],
    }


def _grant(
    name: str,
    account: str,
    params: RbacParams,
    cluster: list[dict[str, Any]],
    watched: list[dict[str, Any]],
    own: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    cluster_rules = cluster + (watched if not params.watch_namespaces else [])
    if cluster_rules:
        objects.append(_role("ClusterRole", name, None, cluster_rules))
        objects.append(_binding("ClusterRoleBinding", name, None, "ClusterRole", account, params.namespace))
    if watched:
        for namespace in params.watch_namespaces:
            objects.append(_role("Role", name, namespace, watched))
            objects.append(_binding("RoleBinding", name, namespace, "Role", account, params.namespace))
    if own:
        own_name = f"{name}-own-namespace"
        objects.append(_role("Role", own_name, params.namespace, own))
        objects.append(_binding("RoleBinding", own_name, params.namespace, "Role", account, params.namespace))
    return objects


def operator_rbac(params: RbacParams) -> list[dict[str, Any]]:
    """The operator's Roles, ClusterRoles and their bindings to its ServiceAccount."""
    return _grant(
        params.fullname,
        params.service_account,
        params,
        policy_rules(CLUSTER_RULES, params),
        policy_rules(WATCHED_RULES, params),
        policy_rules(OWN_NAMESPACE_RULES, params),
    )


def cleanup_rbac(params: RbacParams) -> list[dict[str, Any]]:
    """What the post-delete hook that removes finalizers may do."""
    if not params.cleanup:
        return []
    return _grant(
        params.cleanup_service_account,
        params.cleanup_service_account,
        params,
        [],
        policy_rules(CLEANUP_WATCHED_RULES, params),
        policy_rules(CLEANUP_OWN_NAMESPACE_RULES, params),
    )


def rbac_objects(params: RbacParams) -> list[dict[str, Any]]:
    return operator_rbac(params) + cleanup_rbac(params)
