"""The chart installed as users run it: its release namespace isolated on the local node (each pod its
own network namespace and address on the node's bridge), two replicas electing a leader on a Lease.

MLflow: runner Jobs run on the host's network (their namespace is not isolated) and the operator in its
isolated pod, so both are pointed at an MLflow server listening on the node's bridge address, which
host processes and isolated pods both reach (the session's server listens on 127.0.0.1 only).
"""

from __future__ import annotations

import contextlib
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from feast_lineage.devcluster.cluster import DevCluster
from feast_lineage.devcluster.mlflow_server import MlflowServer, start_mlflow
from feast_lineage.devcluster.node import ISOLATION_ANNOTATION
from feast_lineage.devcluster.pod_network import gateway_of_node
from tests.chart_helpers import CHART
from tests.operator_pod import Helm, operator_pods

METRICS_PORT, LIVENESS_PORT = 8080, 8081  # the chart's defaults: every pod has its own address


@dataclass
class PodsRelease:
    """A release installed by :func:`installed_as_pods`."""

    helm: Helm
    name: str
    namespace: str
    fullname: str
    mlflow: MlflowServer
    installed: subprocess.CompletedProcess[str]
    """What `helm install` printed (NOTES.txt)."""


@contextlib.contextmanager
def installed_as_pods(
    dev_cluster: DevCluster, api: client.ApiClient, watched: str, directory: Path, *values: str
) -> Iterator[PodsRelease]:
    """`helm install --wait` of the chart (two replicas by default) into a new isolated namespace,
    watching ``watched``, with an MLflow server on the node's bridge address; everything is removed
    afterwards. ``values`` are more `--set` values."""
    gateway = gateway_of_node(dev_cluster.node.pid)
    assert gateway, "the local node runs no pod network (it needs root, iproute2 and nsenter)"
    suffix = uuid.uuid4().hex[:5]
    name, namespace = f"pods-{suffix}", f"feast-lineage-pods-{suffix}"
    helm = Helm(dev_cluster, namespace)
    core = client.CoreV1Api(api)
    mlflow = start_mlflow(directory / "mlflow", host=gateway)
    settings = [
        "crds.enabled=false",  # the session's CRDs are there already, owned by no release
        f"watchNamespaces={{{watched}}}",
        f"mlflow.trackingUri={mlflow.url}",
        "resyncSeconds=3",
        # Test projects keep Feast's files on hostPath volumes: an administrator's choice.
        "policy.runnerVolumeTypes={configMap,secret,emptyDir,persistentVolumeClaim,hostPath}",
        *values,
    ]
    sets = [arg for value in settings for arg in ("--set", value)]
    core.create_namespace({"metadata": {"name": namespace, "labels": {ISOLATION_ANNOTATION: "pod"}}})
    try:
        installed = helm("install", name, str(CHART), "--wait", "--timeout", "5m", *sets)
        yield PodsRelease(helm, name, namespace, f"{name}-feast-lineage-operator", mlflow, installed)
    finally:
        helm("uninstall", name, "--ignore-not-found", "--wait", check=False)
        core.delete_namespace(namespace)
        mlflow.stop()


def ready_pods(core: client.CoreV1Api, namespace: str, release: str, count: int) -> list[Any] | None:
    """``count`` operator pods, each Ready (its readiness probe passed) at an address of its own."""
    pods = [p for p in operator_pods(core, namespace, release) if not p.metadata.deletion_timestamp]
    ready = [
        p
        for p in pods
        if p.status.pod_ip and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]
    return ready if len(pods) == count and len(ready) == count else None


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def pod_sample(pod: Any, name: str) -> float:
    """The sum of the samples named ``name`` on the pod's metrics endpoint (0 when it has none)."""
    families = text_string_to_metric_families(get(f"http://{pod.status.pod_ip}:{METRICS_PORT}/metrics"))
    return sum(s.value for f in families for s in f.samples if s.name == name)


def leader_sample(pod: Any) -> float:
    return pod_sample(pod, "feast_lineage_leader")


def lease_identity(api: client.ApiClient, namespace: str, deployment: Any) -> str | None:
    """Who holds the Lease: ``<pod name>_<suffix of its current process>``."""
    args = deployment.spec.template.spec.containers[0].args
    name = next(a for a in args if a.startswith("--leader-election-lease=")).split("/", 1)[1]
    lease = client.CoordinationV1Api(api).read_namespaced_lease(name, namespace)
    return str(lease.spec.holder_identity) if lease.spec.holder_identity else None


def lease_holder(api: client.ApiClient, namespace: str, deployment: Any) -> str | None:
    """The pod whose process holds the Lease."""
    identity = lease_identity(api, namespace, deployment)
    return identity.partition("_")[0] if identity else None
