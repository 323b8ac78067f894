"""The operator as the chart installs it: `helm install`, the Deployment's pod on the local node under
the chart's ServiceAccount (the node gives it a token from the TokenRequest API), so the chart's RBAC is
all it has.

:class:`ChartOperator` is the session's operator. Its pod runs on the host's network (its namespace
has no isolation label): it reaches the session's MLflow server and the tests' Git servers on
127.0.0.1, and the API server calls its webhooks at ``webhook.url`` on 127.0.0.1. Pods on the host
share its ports, so there is one replica. The isolated form (two replicas, each its own address, the
webhooks through their Service) is tests/cluster/test_helm_pods.py.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubernetes import client

from feast_lineage.devcluster.cluster import DevCluster
from feast_lineage.devcluster.processes import free_port
from tests.chart_helpers import CHART
from tests.cluster_helpers import AUDIT_RETRY_SECONDS, RESYNC_SECONDS, running_operators, wait_until
from tests.install_helpers import token_kubeconfig

# A pod's start on a machine busy with other test runs takes from seconds to minutes.
POD_TIMEOUT = 300


class Helm:
    def __init__(self, cluster: DevCluster, namespace: str) -> None:
        self.namespace = namespace
        self.argv = [str(cluster.binaries.helm), f"--kubeconfig={cluster.kubeconfig}", "--namespace", namespace]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*self.argv, *args], capture_output=True, text=True, timeout=900)
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result


def operator_pods(core: client.CoreV1Api, namespace: str, release: str) -> list[Any]:
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=operator"
    return [pod for pod in core.list_namespaced_pod(namespace, label_selector=selector).items]


def pod_directory(cluster: DevCluster, pod: Any) -> Path:
    """Where the local node keeps a pod's files and its containers' output."""
    meta = pod.metadata
    return cluster.directory / "node" / "pods" / f"{meta.namespace}_{meta.name}_{meta.uid[:8]}"


def pod_log(cluster: DevCluster, pod: Any) -> str:
    """The operator container's output, every start of it (the node writes a line before each), kept
    after the pod is deleted."""
    path = pod_directory(cluster, pod) / "operator.log"
    assert path.exists(), f"the local node kept no operator log for pod {pod.metadata.namespace}/{pod.metadata.name}"
    return path.read_text(errors="replace")


def container_pids(pod_name: str) -> list[int]:
    """The processes of the pod's operator container, found by the POD_NAME the chart gives it."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if f"POD_NAME={pod_name}".encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
    return found


def kill_container(pod_name: str) -> list[int]:
    """SIGKILL the processes of the pod's container, as a crash or the OOM killer ends them."""
    killed = []
    for pid in container_pids(pod_name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _restarts(pod: Any) -> int:
    return sum(status.restart_count for status in pod.status.container_statuses or [])


class ChartOperator:
    """The session's operator: the chart installed with `helm install`, one replica on the host's network.

    ``stop()`` scales the Deployment to zero and waits until its pod is gone (the pod is sent SIGTERM,
    as kubelet does); ``start()`` scales it to one and waits until the pod is Ready; ``kill()``
    SIGKILLs the container, which the local node restarts in the same pod, as kubelet restarts a
    crashed container. The configuration the tests need (resync, audit retry, ports, the runner
    volume types) comes through the chart's values.
    """

    RESYNC_SECONDS = RESYNC_SECONDS
    AUDIT_RETRY_SECONDS = AUDIT_RETRY_SECONDS

    def __init__(
        self,
        cluster: DevCluster,
        mlflow_url: str,
        directory: Path,
        release: str = "feast-lineage",
        namespace: str = "feast-lineage-tests",
        extra_values: tuple[str, ...] = (),
    ) -> None:
        self.cluster = cluster
        self.api = cluster.api_client()
        self.core, self.apps = client.CoreV1Api(self.api), client.AppsV1Api(self.api)
        self.directory = directory
        self.release, self.namespace = release, namespace
        # Names as in the local cluster: the webhook configuration is feast-lineage-injection.
        self.deployment = release
        self.metrics_port, self.liveness_port, self.webhook_port = free_port(), free_port(), free_port()
        self.values = (
            f"fullnameOverride={self.deployment}",
            "crds.enabled=false",  # the session's CRDs are there already, owned by no release
            # Pods on the host share its ports: one replica, and webhooks at an address on loopback.
            "replicaCount=1",
            f"webhook.url=https://127.0.0.1:{self.webhook_port}",
            f"webhook.port={self.webhook_port}",
            f"livenessPort={self.liveness_port}",
            f"metrics.port={self.metrics_port}",
            f"mlflow.trackingUri={mlflow_url}",
            f"resyncSeconds={RESYNC_SECONDS}",
            f"auditRetrySeconds={AUDIT_RETRY_SECONDS}",
            # A line per pass: what tests wait for before saying nothing happened (wait_for_passes).
            "logLevel=debug",
            # Test projects keep Feast's files on hostPath volumes: an administrator's choice.
            "policy.runnerVolumeTypes={configMap,secret,emptyDir,persistentVolumeClaim,hostPath}",
            *extra_values,
        )
        self.helm = Helm(cluster, namespace)
        self.kubeconfig = directory / "operator.kubeconfig"
        """A token of the operator's ServiceAccount, for acting as the operator would."""
        self.starts = 0
        self._restarts_at_least = 0

    @property
    def log_path(self) -> Path:
        """A copy of :meth:`log`, written when the operator stops and at the end of the session."""
        return self.directory / "operator.log"

    def install(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        sets = [arg for value in self.values for arg in ("--set", value)]
        self.helm(
            "install", self.release, str(CHART), "--create-namespace", "--wait", "--timeout", f"{POD_TIMEOUT}s", *sets
        )
        token_kubeconfig(self.api, self.cluster.kubeconfig, self.namespace, self.deployment, self.kubeconfig)
        self.start()

    def uninstall(self) -> None:
        """Stop the operator, keep its log, and remove the release (without its cleanup hook: the
        cluster goes with the session)."""
        with contextlib.suppress(Exception):
            self.stop()
        self.save_log()
        self.helm("uninstall", self.release, "--no-hooks", "--wait", "--timeout", "120s", check=False)
        with contextlib.suppress(client.exceptions.ApiException):
            self.core.delete_namespace(self.namespace)

    def pod(self) -> Any | None:
        pods = [p for p in operator_pods(self.core, self.namespace, self.release) if not p.metadata.deletion_timestamp]
        assert len(pods) <= 1, [p.metadata.name for p in pods]
        return pods[0] if pods else None

    def args(self) -> list[str]:
        """The operator's arguments, as the chart's Deployment gives them."""
        deployment = self.apps.read_namespaced_deployment(self.deployment, self.namespace)
        return list(deployment.spec.template.spec.containers[0].args)

    def alive(self) -> bool:
        """The Deployment wants its pod (it was not stopped), whether or not it is up at this moment."""
        scale = self.apps.read_namespaced_deployment_scale(self.deployment, self.namespace)
        return bool(scale.spec.replicas)

    def start(self) -> None:
        """Scale to one replica (if stopped) and wait until its pod is Ready and answers /healthz; after
        :meth:`kill`, until the container was restarted."""
        self.starts += 1
        if not self.alive():
            self._scale(1)
        running_operators.add(self)

        def ready() -> Any:
            pod = self.pod()
            if pod is None or not _ready(pod) or _restarts(pod) < self._restarts_at_least:
                return None
            return pod

        pod = wait_until(ready, POD_TIMEOUT, f"the operator's pod to be Ready (log in {self.directory})")
        self._restarts_at_least = _restarts(pod)
        wait_until(self._live, 60, "the operator's /healthz")

    def stop(self) -> None:
        """Scale to zero and wait until the pod is gone (SIGTERM first: a leader hands its Lease back)."""
        running_operators.discard(self)
        self._scale(0)
        wait_until(
            lambda: not operator_pods(self.core, self.namespace, self.release), POD_TIMEOUT, "the operator's pod to go"
        )
        self._restarts_at_least = 0
        self.save_log()

    def kill(self) -> datetime.datetime:
        """SIGKILL the container's processes, as a crash ends them; returns when (to the second, rounded
        down, as the API server's times are). The local node restarts the container after its backoff."""
        pod = self.pod()
        assert pod is not None, "no operator pod to kill"
        self._restarts_at_least = _restarts(pod) + 1
        killed_at = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        killed = kill_container(pod.metadata.name)
        assert killed, f"no process of {pod.metadata.name} found"
        wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in killed), 30, "the killed processes to end")
        return killed_at

    def restarts(self) -> int:
        """How often the node restarted the current pod's container."""
        pod = self.pod()
        return _restarts(pod) if pod is not None else 0

    def pid(self) -> int:
        """The operator's own process (``feast-lineage run``), not its children (git)."""
        pod = self.pod()
        assert pod is not None, "no operator pod"
        pids = container_pids(pod.metadata.name)

        def parent(pid: int) -> int:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])

        [main] = [pid for pid in pids if parent(pid) not in pids]
        return main

    @contextlib.contextmanager
    def reconfigured(self, *values: str) -> Iterator[None]:
        """The operator upgraded with other values (`helm upgrade`) for the block, then as before.

        It is stopped first: a rolling update would start the new pod beside the old one, and on the
        host's network the new one could not listen on the same ports.
        """
        self.stop()
        try:
            self._upgrade(*values)
            self.start()
            yield
        finally:
            self.stop()
            self._upgrade(*self.values)
            self.start()

    def log(self) -> str:
        """Everything the operator printed in this session, every pod and start of it, oldest first."""
        pods = (self.cluster.directory / "node" / "pods").glob(f"{self.namespace}_{self.deployment}-*/pod.json")
        started = sorted(pods, key=lambda path: path.stat().st_mtime)  # the node writes pod.json as it starts a pod
        logs = [path.parent / "operator.log" for path in started]
        return "".join(path.read_text(errors="replace") for path in logs if path.exists())

    def save_log(self) -> None:
        self.log_path.write_text(self.log())

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def _live(self) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2) as response:
            return int(response.status) == 200

    def _scale(self, replicas: int) -> None:
        self.apps.patch_namespaced_deployment_scale(self.deployment, self.namespace, {"spec": {"replicas": replicas}})

    def _upgrade(self, *values: str) -> None:
        sets = [arg for value in values for arg in ("--set", value)]
        self.helm(
            "upgrade", self.release, str(CHART), "--reuse-values", "--wait", "--timeout", f"{POD_TIMEOUT}s", *sets
        )
