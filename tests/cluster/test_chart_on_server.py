"""The chart and the plain manifest, checked by the real API server: server-side dry runs and a real apply."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from feast_lineage.devcluster.cluster import DevCluster
from tests.chart_helpers import CI_VALUES, MANIFEST, documents, render
from tests.cluster_helpers import wait_until
from tests.conftest import REPO_ROOT
from tests.install_helpers import delete, live, server_side_apply, subset_mismatches

pytestmark = pytest.mark.cluster

DRY_RUN_NAMESPACE = "feast-lineage-dry-run"
# Namespaces the ci/ values name (watched namespaces, runner ServiceAccounts).
CI_NAMESPACES = ("team-a", "team-b", "ml-training")

# The parts of cert-manager's and the Prometheus operator's schemas that the chart uses, written from
# their API references: enough for the API server to check the shape of these objects in a dry run
# (unknown fields are rejected), not the projects' own CRDs.
_STRING = {"type": "string"}
_STRINGS = {"type": "array", "items": _STRING}
_LABELS = {"type": "object", "additionalProperties": _STRING}
DURATION = "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
THIRD_PARTY_CRDS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("cert-manager.io", "Certificate", "certificates"): {
        "type": "object",
        "required": ["secretName", "issuerRef"],
        "properties": {
            "secretName": _STRING,
            "dnsNames": _STRINGS,
            "duration": _STRING,
            "renewBefore": _STRING,
            "privateKey": {
                "type": "object",
                "properties": {
                    "algorithm": {"type": "string", "enum": ["RSA", "ECDSA", "Ed25519"]},
                    "size": {"type": "integer"},
                    "rotationPolicy": {"type": "string", "enum": ["Never", "Always"]},
                },
            },
            "issuerRef": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": _STRING, "kind": _STRING, "group": _STRING},
            },
        },
    },
    ("cert-manager.io", "Issuer", "issuers"): {
        "type": "object",
        "properties": {
            "selfSigned": {"type": "object", "properties": {"crlDistributionPoints": _STRINGS}},
            "ca": {"type": "object", "required": ["secretName"], "properties": {"secretName": _STRING}},
        },
    },
    ("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"): {
        "type": "object",
        "required": ["selector"],
        "properties": {
            "selector": {"type": "object", "properties": {"matchLabels": _LABELS}},
            "namespaceSelector": {"type": "object", "properties": {"matchNames": _STRINGS, "any": {"type": "boolean"}}},
            "endpoints": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "port": _STRING,
                        "path": _STRING,
                        "interval": {
                            "type": "string",
                            "pattern": DURATION,
                        },
                        "scheme": _STRING,
                    },
                },
            },
        },
    },
}


def third_party_crd(group: str, kind: str, plural: str, spec_schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "required": ["spec"], "properties": {"spec": spec_schema}}
                    },
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def dry_run_cluster(dev_cluster: DevCluster, crds_installed: None) -> Iterator[DevCluster]:
    """The namespaces the ci values name, and the CRDs of the third-party kinds the chart may render."""
    kubectl, kubeconfig = dev_cluster.binaries.kubectl, dev_cluster.kubeconfig
    crds = [third_party_crd(*key, schema) for key, schema in THIRD_PARTY_CRDS.items()]
    result = server_side_apply(kubectl, kubeconfig, crds)
    assert result.returncode == 0, result.stderr
    core = client.CoreV1Api(dev_cluster.api_client())
    created = []
    for name in (DRY_RUN_NAMESPACE, *CI_NAMESPACES):
        try:
            core.create_namespace({"metadata": {"name": name}})
            created.append(name)
        except ApiException as error:
            if error.status != 409:
                raise
    for group, _, plural in THIRD_PARTY_CRDS:
        name = f"{plural}.{group}"
        wait_until(functools.partial(established, dev_cluster, name), 60, f"{name} Established")
    yield dev_cluster
    for name in created:
        core.delete_namespace(name)


def established(cluster: DevCluster, name: str) -> bool:
    api = client.ApiextensionsV1Api(cluster.api_client())
    crd = api.read_custom_resource_definition(name)
    return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda p: "defaults" if p is None else p.stem)
def test_every_rendered_object_passes_a_server_side_dry_run(dry_run_cluster: DevCluster, values: Path | None) -> None:
    objects = render(values_file=values, namespace=DRY_RUN_NAMESPACE)
    result = server_side_apply(
        dry_run_cluster.binaries.kubectl, dry_run_cluster.kubeconfig, objects, dry_run=True, manager="helm-dry-run"
    )
    assert result.returncode == 0, result.stderr
    accepted = [line for line in result.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == len(objects), result.stdout


def test_the_server_rejects_what_the_schema_cannot_see(dry_run_cluster: DevCluster) -> None:
    """The dry run is a real check: a pod-level field the chart passes through unchecked is refused."""
    objects = render("tolerations[0].operator=Sometimes", namespace=DRY_RUN_NAMESPACE)
    result = server_side_apply(
        dry_run_cluster.binaries.kubectl, dry_run_cluster.kubeconfig, objects, dry_run=True, manager="helm-dry-run"
    )
    assert result.returncode != 0
    assert 'Unsupported value: "Sometimes"' in result.stderr, result.stderr


def test_plain_manifest_applies_server_side_to_the_chart_objects(dev_cluster: DevCluster, crds_installed: None) -> None:
    """kubectl apply --server-side -f crds/ -f deploy/...: every object as rendered (plus server defaults).

    A ResourceQuota of zero pods in the operator's namespace keeps the Deployment's pod from running
    beside the operator the other tests use; the Deployment itself is applied as is.
    """
    kubectl, kubeconfig = dev_cluster.binaries.kubectl, dev_cluster.kubeconfig
    objects = documents(MANIFEST.read_text())
    namespace = objects[0]["metadata"]["name"]
    core = client.CoreV1Api(dev_cluster.api_client())
    try:
        core.create_namespace({"metadata": {"name": namespace}})
    except ApiException as error:
        if error.status != 409:
            raise
    quota = {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}}
    core.create_namespaced_resource_quota(namespace, quota)
    try:
        for path in (REPO_ROOT / "crds", MANIFEST):
            result = server_side_apply(kubectl, kubeconfig, documents_of(path), manager="kubectl")
            assert result.returncode == 0, result.stderr
        current = live(kubectl, kubeconfig, objects)
        assert [(o["kind"], o["metadata"]["name"]) for o in current] == [
            (o["kind"], o["metadata"]["name"]) for o in objects
        ]
        for wanted, actual in zip(objects, current, strict=True):
            assert subset_mismatches(wanted, actual) == [], wanted["metadata"]["name"]
        # Applied again, nothing changes: the manifest is what the server keeps. Controllers keep
        # writing the status of a Deployment or a budget (the quota refusing its pods): not compared.
        again = server_side_apply(kubectl, kubeconfig, objects, manager="kubectl")
        assert again.returncode == 0, again.stderr
        versions = [applied_version(o) for o in live(kubectl, kubeconfig, objects)]
        assert versions == [applied_version(o) for o in current]
    finally:
        delete(kubectl, kubeconfig, list(reversed(objects)), wait=False)


def applied_version(obj: dict[str, Any]) -> dict[str, Any]:
    """The object but what its controllers write: its status, the status writers' managed fields, and
    the resourceVersion that these writes change."""
    metadata = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    metadata["managedFields"] = [f for f in metadata.get("managedFields", []) if f.get("subresource") != "status"]
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": metadata}


def documents_of(path: Path) -> list[dict[str, Any]]:
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    return [doc for file in files for doc in documents(file.read_text())]


RESTRICTED_NAMESPACE = "feast-lineage-restricted"


def pod_templates(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every pod the chart makes: of its Deployments, Jobs and Pods, as (name, pod manifest)."""
    pods = []
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            template = obj["spec"]["template"]
            pods.append((obj["metadata"]["name"], {"metadata": dict(template["metadata"]), "spec": template["spec"]}))
        elif obj["kind"] == "Pod":
            pods.append((obj["metadata"]["name"], {"metadata": {}, "spec": obj["spec"]}))
    return pods


@pytest.fixture(scope="module")
def restricted_namespace(dev_cluster: DevCluster) -> Iterator[str]:
    core = client.CoreV1Api(dev_cluster.api_client())
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    core.create_namespace({"metadata": {"name": RESTRICTED_NAMESPACE, "labels": labels}})
    wait_until(
        lambda: any(
            sa.metadata.name == "default" for sa in core.list_namespaced_service_account(RESTRICTED_NAMESPACE).items
        ),
        30,
        "the default ServiceAccount",
    )
    yield RESTRICTED_NAMESPACE
    core.delete_namespace(RESTRICTED_NAMESPACE)


def admit(api: client.ApiClient, namespace: str, name: str, pod: dict[str, Any]) -> None:
    body = {
        "metadata": {**pod["metadata"], "name": name[:63]},
        # Its ServiceAccount is another object of the chart; the Pod Security check does not depend on it.
        "spec": {**pod["spec"], "serviceAccountName": "default"},
    }
    client.CoreV1Api(api).create_namespaced_pod(namespace, body, dry_run="All")


def test_every_pod_of_the_chart_is_admitted_by_pod_security_restricted(
    dev_cluster: DevCluster, restricted_namespace: str
) -> None:
    """The API server's Pod Security admission at `restricted` judges the pods' security contexts."""
    api = dev_cluster.api_client()
    objects = render("mlflow.server.enabled=true", namespace=restricted_namespace)
    pods = pod_templates(objects)
    assert sorted(kind for kind in (name.rsplit("-", 1)[-1] for name, _ in pods)) == [
        "cleanup", "mlflow", "operator", "test"
    ]  # fmt: skip
    for name, pod in pods:
        admit(api, restricted_namespace, name, pod)


def test_pod_security_restricted_would_refuse_a_weaker_context(
    dev_cluster: DevCluster, restricted_namespace: str
) -> None:
    api = dev_cluster.api_client()
    name, pod = pod_templates(render(namespace=restricted_namespace))[0]
    pod["spec"]["containers"][0]["securityContext"] = {"runAsNonRoot": True}
    with pytest.raises(ApiException) as refused:
        admit(api, restricted_namespace, name, pod)
    assert refused.value.status == 403 and "violates PodSecurity" in str(refused.value.body), refused.value.body
