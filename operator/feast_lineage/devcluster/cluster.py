"""The whole local environment: control plane, local node and MLflow server.

Shared by the test suite (one per test session) and by ``feast-lineage dev-cluster
up/down`` (which leaves the processes running and records their PIDs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config

from feast_lineage.devcluster.binaries import Binaries, ensure_binaries
from feast_lineage.devcluster.controlplane import NODE_NAME, ControlPlane, start_control_plane
from feast_lineage.devcluster.mlflow_server import MlflowServer, start_mlflow
from feast_lineage.devcluster.processes import ManagedProcess, StartupError, free_port, stop_pid

STATE_FILE = "state.json"
EXAMPLE_DATA = "example-data"


@dataclass
class DevCluster:
    directory: Path
    binaries: Binaries
    control_plane: ControlPlane
    node: ManagedProcess
    mlflow: MlflowServer | None
    operator: ManagedProcess | None = None
    operator_metrics_port: int | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.control_plane.kubeconfig

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def state(self) -> dict[str, object]:
        pids = {**self.control_plane.pids(), "local-node": self.node.pid}
        if self.mlflow is not None:
            pids["mlflow"] = self.mlflow.process.pid
        if self.operator is not None:
            pids["operator"] = self.operator.pid
        return {
            "kubeconfig": str(self.kubeconfig),
            "server": self.control_plane.server,
            "mlflowUrl": self.mlflow.url if self.mlflow else None,
            "helm": str(self.binaries.helm),
            "kubectl": str(self.binaries.kubectl),
            "operatorMetrics": f"http://127.0.0.1:{self.operator_metrics_port}/metrics" if self.operator else None,
            "pids": pids,
        }

    def stop(self) -> None:
        if self.operator is not None:
            self.operator.stop()
        self.node.stop(grace=5)
        if self.mlflow is not None:
            self.mlflow.stop()
        self.control_plane.stop()


def node_process(kubeconfig: Path, directory: Path, max_running_pods: int = 0) -> ManagedProcess:
    env = dict(os.environ)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return ManagedProcess(
        "local-node",
        [
            sys.executable,
            "-m",
            "feast_lineage.devcluster.node",
            "--kubeconfig",
            str(kubeconfig),
            "--state-dir",
            str(directory / "node"),
            "--name",
            NODE_NAME,
            "--max-running-pods",
            str(max_running_pods),
            # Container logs over HTTPS, with the certificates start_control_plane wrote.
            "--serving-cert",
            str(directory / "pki" / "node.crt"),
            "--serving-key",
            str(directory / "pki" / "node.key"),
            "--client-ca",
            str(directory / "pki" / "ca.crt"),
        ],
        directory / "logs" / "local-node.log",
        env=env,
    )


def _node_ready(api: client.ApiClient) -> bool:
    node = client.CoreV1Api(api).read_node(NODE_NAME)
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def install_crds(binaries: Binaries, kubeconfig: Path) -> None:
    """Apply the CRDs generated from this package's models, and wait until they serve."""
    from feast_lineage.api import generate_crds

    kubectl = [str(binaries.kubectl), f"--kubeconfig={kubeconfig}"]
    manifests = "\n---\n".join(generate_crds().values())
    for action in (
        ["apply", "--server-side", "--force-conflicts", "-f", "-"],
        ["wait", "--for=condition=Established", "--timeout=60s", "-f", "-"],
    ):
        done = subprocess.run([*kubectl, *action], input=manifests, text=True, capture_output=True)
        if done.returncode != 0:
            raise StartupError(f"kubectl {action[0]} of the CRDs failed: {done.stderr.strip()}")


def operator_process(kubeconfig: Path, directory: Path, mlflow_url: str | None) -> tuple[ManagedProcess, int]:
    """The operator, serving the injection webhook on loopback (registered here, caBundle set by it)."""
    from feast_lineage.devcluster.webhook import register_injection_webhook

    metrics_port, liveness_port = free_port(), free_port()
    webhook_args = register_injection_webhook(config.new_client_from_config(config_file=str(kubeconfig)), free_port())
    argv = [
        str(Path(sys.executable).parent / "feast-lineage"),
        "run",
        "--metrics-port",
        str(metrics_port),
        "--liveness-port",
        str(liveness_port),
        *webhook_args,
    ]
    if mlflow_url:
        argv += ["--mlflow-tracking-uri", mlflow_url]
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), NO_PROXY="127.0.0.1,localhost")
    process = ManagedProcess("operator", argv, directory / "logs" / "operator.log", env=env)
    process.wait_ready(lambda: _http_ok(f"http://127.0.0.1:{liveness_port}/healthz"), 60, "live (/healthz)")
    return process, metrics_port


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return int(response.status) == 200


def start_dev_cluster(
    directory: Path,
    with_mlflow: bool = True,
    max_running_pods: int = 0,
    with_operator: bool = False,
    progress: Callable[[str], None] | None = None,
) -> DevCluster:
    """Build what is missing, then start everything; stops what started if any part fails.

    ``progress`` is told each step as it starts and ends (``dev-cluster up`` prints them).
    """
    say = progress or (lambda message: None)
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    # The example keeps Feast's files here: a new cluster must not find an old registry.
    shutil.rmtree(directory / EXAMPLE_DATA, ignore_errors=True)
    binaries = ensure_binaries()
    say(f"starting etcd, kube-apiserver and kube-controller-manager (logs in {directory / 'logs'})")
    plane = start_control_plane(binaries, directory)
    say(f"control plane ready in {plane.start_seconds:.1f}s")
    started: list[ControlPlane | ManagedProcess] = [plane]
    try:
        node = node_process(plane.kubeconfig, directory, max_running_pods)
        started.append(node)
        api = config.new_client_from_config(config_file=str(plane.kubeconfig))
        waited = node.wait_ready(lambda: _node_ready(api), 30, "registered as a Ready Node")
        say(f"local node ready in {waited:.1f}s")
        mlflow = None
        if with_mlflow:
            say("starting the MLflow tracking server")
            mlflow = start_mlflow(directory / "mlflow")
            started.append(mlflow.process)
            say(f"MLflow ready in {mlflow.start_seconds:.1f}s at {mlflow.url}")
        operator, metrics_port = None, None
        if with_operator:
            say("installing the CRDs and starting the operator")
            install_crds(binaries, plane.kubeconfig)
            operator, metrics_port = operator_process(plane.kubeconfig, directory, mlflow.url if mlflow else None)
            say("operator ready")
    except BaseException:
        for component in reversed(started):
            component.stop()
        raise
    cluster = DevCluster(directory, binaries, plane, node, mlflow, operator, metrics_port)
    (directory / STATE_FILE).write_text(json.dumps(cluster.state(), indent=2))
    return cluster


def stop_from_state(directory: Path) -> list[str]:
    """Stop the processes recorded by ``dev-cluster up``; returns the names stopped."""
    state_path = directory / STATE_FILE
    if not state_path.exists():
        return []
    state = json.loads(state_path.read_text())
    order = ["operator", "local-node", "mlflow", "kube-controller-manager", "kube-apiserver", "etcd"]
    stopped = []
    for name in order:
        pid = state["pids"].get(name)
        if pid:
            stop_pid(int(pid))
            stopped.append(name)
    state_path.unlink()
    return stopped
