"""The chart's objects in the local cluster, and kubeconfigs of its ServiceAccounts' tokens."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from tests.chart_helpers import Obj, is_hook

RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def manifests(objects: Iterable[Obj]) -> str:
    return "".join("---\n" + yaml.safe_dump(obj, sort_keys=False) for obj in objects)


def kubectl_run(
    kubectl: Path, kubeconfig: Path, *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(kubectl), f"--kubeconfig={kubeconfig}", *args], capture_output=True, text=True, input=input, timeout=180
    )


def server_side_apply(
    kubectl: Path, kubeconfig: Path, objects: list[Obj], *, dry_run: bool = False, manager: str = "feast-lineage-tests"
) -> subprocess.CompletedProcess[str]:
    args = ["apply", "--server-side", "--force-conflicts", f"--field-manager={manager}", "-f", "-"]
    if dry_run:
        args.append("--dry-run=server")
    return kubectl_run(kubectl, kubeconfig, *args, input=manifests(objects))


def delete(kubectl: Path, kubeconfig: Path, objects: list[Obj], *, wait: bool = True) -> None:
    result = kubectl_run(
        kubectl, kubeconfig, "delete", "--ignore-not-found", f"--wait={str(wait).lower()}", "-f", "-",
        input=manifests(objects),
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(f"kubectl delete failed:\n{result.stderr}")


def live(kubectl: Path, kubeconfig: Path, objects: list[Obj]) -> list[Obj]:
    """The cluster's current version of each object, in the same order."""
    result = kubectl_run(kubectl, kubeconfig, "get", "-o", "json", "-f", "-", input=manifests(objects))
    if result.returncode != 0:
        raise AssertionError(f"kubectl get failed:\n{result.stderr}")
    body = json.loads(result.stdout)
    return list(body["items"]) if body.get("kind") == "List" else [body]


def subset_mismatches(wanted: Any, actual: Any, path: str = "") -> list[str]:
    """Where ``actual`` lacks or differs from what ``wanted`` says (the server may add defaults)."""
    if isinstance(wanted, dict):
        if not isinstance(actual, dict):
            return [f"{path}: {actual!r} is not a mapping"]
        found = []
        for key, value in wanted.items():
            if key not in actual:
                found.append(f"{path}.{key}: missing")
            else:
                found += subset_mismatches(value, actual[key], f"{path}.{key}")
        return found
    if isinstance(wanted, list):
        if not isinstance(actual, list) or len(actual) != len(wanted):
            return [f"{path}: {actual!r} is not {wanted!r}"]
        return [
            m
            for i, (w, a) in enumerate(zip(wanted, actual, strict=True))
            for m in subset_mismatches(w, a, f"{path}[{i}]")
        ]
    return [] if wanted == actual else [f"{path}: {actual!r} is not {wanted!r}"]


def without_hooks(objects: list[Obj]) -> list[Obj]:
    return [obj for obj in objects if not is_hook(obj)]


def token_kubeconfig(
    api: client.ApiClient,
    admin_kubeconfig: Path,
    namespace: str,
    service_account: str,
    path: Path,
    expiration_seconds: int = 24 * 3600,
) -> Path:
    """A kubeconfig authenticating as a ServiceAccount, with a token from the TokenRequest API."""
    request = {"spec": {"expirationSeconds": expiration_seconds}}
    token = client.CoreV1Api(api).create_namespaced_service_account_token(service_account, namespace, request)
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": service_account, "user": {"token": token.status.token}}],
        "contexts": [{"name": service_account, "context": {"cluster": "local", "user": service_account}}],
        "current-context": service_account,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


class ChartRbacInstall:
    """What the chart gives the operator, applied by an administrator: its namespace, ServiceAccount,
    RBAC, runner ServiceAccounts and webhook configuration. The operator itself then runs as a local
    process with the arguments of the chart's Deployment and a token of that ServiceAccount, for tests
    that need processes (several replicas on one host, the uninstall cleanup's steps one by one); the
    session's operator is the chart installed by Helm (tests/operator_pod.py)."""

    KINDS = ("ServiceAccount", *RBAC_KINDS, "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")

    def __init__(
        self, kubectl: Path, admin_kubeconfig: Path, release: str, namespace: str, values: tuple[str, ...]
    ) -> None:
        from tests.chart_helpers import one, render

        self.kubectl = kubectl
        self.admin_kubeconfig = admin_kubeconfig
        self.namespace = namespace
        self.rendered = render(*values, release=release, namespace=namespace)
        self.objects = [obj for obj in without_hooks(self.rendered) if obj["kind"] in self.KINDS]
        deployment = next(
            obj for obj in self.rendered if obj["kind"] == "Deployment" and "mlflow" not in obj["metadata"]["name"]
        )
        pod = deployment["spec"]["template"]["spec"]
        self.service_account: str = pod["serviceAccountName"]
        self.run_args: list[str] = list(pod["containers"][0]["args"])
        webhook = [
            obj
            for obj in self.objects
            if obj["kind"] == "MutatingWebhookConfiguration" and obj["metadata"]["name"].endswith("-injection")
        ]
        self.webhook_configuration = one(webhook, "MutatingWebhookConfiguration")["metadata"]["name"] if webhook else ""

    def apply(self) -> None:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
        result = server_side_apply(self.kubectl, self.admin_kubeconfig, [namespace, *self.objects])
        if result.returncode != 0:
            raise AssertionError(f"applying the chart's RBAC failed:\n{result.stderr}")

    def kubeconfig(self, api: client.ApiClient, path: Path) -> Path:
        return token_kubeconfig(api, self.admin_kubeconfig, self.namespace, self.service_account, path)

    def delete(self) -> None:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
        delete(self.kubectl, self.admin_kubeconfig, [*reversed(self.objects), namespace], wait=False)
