"""`helm install` as users run it: the release namespace's pods isolated (each its own network namespace
and address on the local node's bridge), the chart's defaults of two replicas and Lease leader election,
and the webhooks reached through the chart's webhook Service (no ``webhook.url``: the API server routes
to the Service's endpoints, the pods' own addresses). Both pods pass their probes, one holds the Lease,
the example project reconciles, a MaterializationJob runs, a labelled pod is injected, `helm test`
passes through the Services. The leader's pod is deleted: the other takes over (it hands the Lease back)
and a new MaterializationJob runs. Then the new leader's container is killed (SIGKILL): the other takes
the Lease over once it expires. Both takeover times are printed. Then `helm upgrade` and `helm uninstall`.

MLflow: the runner Jobs of the example run on the host's network (their namespace is not isolated) and
the operator in its isolated pod, so both are pointed at an MLflow server listening on the node's bridge
address, which host processes and isolated pods both reach (the session's server listens on 127.0.0.1
only). Not enforced for these pods: capabilities and seccomp (see README, "The local cluster").
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from feast_lineage.devcluster.cluster import DevCluster
from feast_lineage.devcluster.mlflow_server import start_mlflow
from feast_lineage.devcluster.node import ISOLATION_ANNOTATION
from feast_lineage.devcluster.pod_network import gateway_of_node
from tests.chart_helpers import CHART
from tests.cluster.operator_checks import assert_nothing_refused, exercise, materialize
from tests.cluster.test_helm_install import Helm, operator_pods, pod_log, uninstall_leaves_nothing
from tests.cluster_helpers import operators_paused, wait_until

pytestmark = pytest.mark.cluster

METRICS_PORT, LIVENESS_PORT = 8080, 8081  # the chart's defaults: every pod has its own address


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


def leader_sample(pod: Any) -> float:
    text = get(f"http://{pod.status.pod_ip}:{METRICS_PORT}/metrics")
    families = text_string_to_metric_families(text)
    return sum(s.value for f in families for s in f.samples if s.name == "feast_lineage_leader")


def lease_holder(api: client.ApiClient, namespace: str, deployment: Any) -> str | None:
    args = deployment.spec.template.spec.containers[0].args
    name = next(a for a in args if a.startswith("--leader-election-lease=")).split("/", 1)[1]
    lease = client.CoordinationV1Api(api).read_namespaced_lease(name, namespace)
    return str(lease.spec.holder_identity) if lease.spec.holder_identity else None


def kill_container(pod_name: str) -> int:
    """SIGKILL the processes of the pod's container (found by the POD_NAME the chart gives it)."""
    killed = 0
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if f"POD_NAME={pod_name}".encode() in environ.read_bytes().split(b"\0"):
                os.kill(int(environ.parent.name), signal.SIGKILL)
                killed += 1
    return killed


def test_helm_install_isolated_two_replicas_webhooks_through_the_service_leader_deleted_takes_over(
    dev_cluster: DevCluster,
    api: client.ApiClient,
    crds_installed: None,
    namespace: str,
    tmp_path: Path,
) -> None:
    gateway = gateway_of_node(dev_cluster.node.pid)
    assert gateway, "the local node runs no pod network (it needs root, iproute2 and nsenter)"
    suffix = uuid.uuid4().hex[:5]
    release, release_namespace = f"pods-{suffix}", f"feast-lineage-pods-{suffix}"
    fullname = f"{release}-feast-lineage-operator"
    helm = Helm(dev_cluster, release_namespace)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    mlflow = start_mlflow(tmp_path / "mlflow", host=gateway)
    values = [
        "crds.enabled=false",  # the session's CRDs are there already, owned by no release
        f"watchNamespaces={{{namespace}}}",
        f"mlflow.trackingUri={mlflow.url}",
        "resyncSeconds=3",
        # Test projects keep Feast's files on hostPath volumes: an administrator's choice.
        "policy.runnerVolumeTypes={configMap,secret,emptyDir,persistentVolumeClaim,hostPath}",
    ]
    sets = [arg for value in values for arg in ("--set", value)]
    release_ns = {"metadata": {"name": release_namespace, "labels": {ISOLATION_ANNOTATION: "pod"}}}
    core.create_namespace(release_ns)
    with operators_paused(api):
        try:
            installed = helm("install", release, str(CHART), "--wait", "--timeout", "5m", *sets)
            assert f"watching {namespace}." in installed.stdout  # NOTES.txt
            pods = wait_until(lambda: ready_pods(core, release_namespace, release, 2), 180, "two Ready operator pods")
            addresses = {p.status.pod_ip for p in pods}
            assert len(addresses) == 2 and not any(a.startswith("127.") for a in addresses), addresses
            assert all(p.spec.service_account_name == fullname for p in pods)
            for pod in pods:
                assert get(f"http://{pod.status.pod_ip}:{LIVENESS_PORT}/healthz")  # what the probes call
            deployment = apps.read_namespaced_deployment(fullname, release_namespace)
            assert deployment.spec.replicas == 2

            names = {p.metadata.name for p in pods}
            holder = wait_until(lambda: lease_holder(api, release_namespace, deployment), 60, "a Lease holder")
            assert holder in names
            wait_until(lambda: sorted(leader_sample(p) for p in pods) == [0, 1], 60, "exactly one replica leading")

            # The webhooks through their Service: the apply's validation and the labelled pod's injection.
            exercise(api, namespace, tmp_path)

            tested = helm("test", release, "--timeout", "3m")
            assert "Phase:          Succeeded" in tested.stdout, tested.stdout
            outputs = (dev_cluster.directory / "node" / "pods").glob(f"{release_namespace}_{fullname}-test_*/test.log")
            output = "".join(path.read_text() for path in outputs)
            assert "metrics: ok" in output and "webhook: ok" in output, output

            # The leader's pod deleted (SIGTERM: it hands the Lease back): the other leads.
            leader = next(p for p in pods if p.metadata.name == holder)
            other = next(p for p in pods if p.metadata.name != holder)
            started = time.monotonic()
            core.delete_namespaced_pod(holder, release_namespace)
            wait_until(
                lambda: lease_holder(api, release_namespace, deployment) == other.metadata.name,
                120,
                "the other replica to take the Lease over",
            )
            takeover = time.monotonic() - started
            wait_until(lambda: leader_sample(other) == 1, 60, "the other replica to lead")
            print(f"leader pod deleted: the other replica held the Lease after {takeover:.1f}s")
            done = materialize(api, namespace, "after-takeover")
            assert done["phase"] == "Succeeded", done
            for pod in (leader, other):
                assert_nothing_refused(pod_log(dev_cluster, pod))
            # The Deployment replaces the deleted pod.
            pods = wait_until(lambda: ready_pods(core, release_namespace, release, 2), 180, "two Ready pods again")

            # The leader's container killed (SIGKILL, as a crash ends it): the other waits out the Lease.
            survivor = next(p for p in pods if p.metadata.name != other.metadata.name)
            started = time.monotonic()
            assert kill_container(other.metadata.name) > 0
            wait_until(
                lambda: lease_holder(api, release_namespace, deployment) == survivor.metadata.name,
                120,
                "the other replica to take the expired Lease over",
            )
            takeover = time.monotonic() - started
            print(f"leader's container killed: the other replica held the Lease after {takeover:.1f}s (lease 15s)")
            wait_until(lambda: leader_sample(survivor) == 1, 60, "the other replica to lead")
            # The killed container is restarted in its pod, which is Ready again as a follower.
            wait_until(lambda: ready_pods(core, release_namespace, release, 2), 180, "two Ready pods after the kill")

            # A changed value rolls both pods (surge one, none unavailable) and they carry on.
            helm(
                "upgrade", release, str(CHART), "--reuse-values", "--set", "logJson=false", "--wait", "--timeout", "5m"
            )

            def upgraded() -> list[Any] | None:
                found = ready_pods(core, release_namespace, release, 2)
                if not found or any("--log-json" in p.spec.containers[0].args for p in found):
                    return None
                return found

            wait_until(upgraded, 180, "two upgraded Ready operator pods")

            uninstall_leaves_nothing(helm, api, release, namespace)
        finally:
            helm("uninstall", release, "--ignore-not-found", "--wait", check=False)
            core.delete_namespace(release_namespace)
            mlflow.stop()
