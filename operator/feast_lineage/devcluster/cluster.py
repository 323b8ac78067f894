"""The whole local environment: control plane, local node and MLflow server.

Shared by the test suite (one per test session) and by ``feast-lineage dev-cluster
up/down`` (which leaves the processes running and records their PIDs).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config

from feast_lineage.devcluster.binaries import Binaries, ensure_binaries
from feast_lineage.devcluster.controlplane import ControlPlane, start_control_plane
from feast_lineage.devcluster.mlflow_server import MlflowServer, start_mlflow
from feast_lineage.devcluster.processes import ManagedProcess, stop_pid

NODE_NAME = "local-node"
STATE_FILE = "state.json"


@dataclass
class DevCluster:
    directory: Path
    binaries: Binaries
    control_plane: ControlPlane
    node: ManagedProcess
    mlflow: MlflowServer | None

    @property
    def kubeconfig(self) -> Path:
        return self.control_plane.kubeconfig

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def state(self) -> dict[str, object]:
        pids = {**self.control_plane.pids(), "local-node": self.node.pid}
        if self.mlflow is not None:
            pids["mlflow"] = self.mlflow.process.pid
        return {
            "kubeconfig": str(self.kubeconfig),
            "server": self.control_plane.server,
            "mlflowUrl": self.mlflow.url if self.mlflow else None,
            "helm": str(self.binaries.helm),
            "pids": pids,
        }

    def stop(self) -> None:
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
        ],
        directory / "logs" / "local-node.log",
        env=env,
    )


def _node_ready(api: client.ApiClient) -> bool:
    node = client.CoreV1Api(api).read_node(NODE_NAME)
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def start_dev_cluster(directory: Path, with_mlflow: bool = True, max_running_pods: int = 0) -> DevCluster:
    """Build what is missing, then start everything; stops what started if any part fails."""
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    binaries = ensure_binaries()
    plane = start_control_plane(binaries, directory)
    started: list[ControlPlane | ManagedProcess] = [plane]
    try:
        node = node_process(plane.kubeconfig, directory, max_running_pods)
        started.append(node)
        api = config.new_client_from_config(config_file=str(plane.kubeconfig))
        node.wait_ready(lambda: _node_ready(api), 30, "registered as a Ready Node")
        mlflow = start_mlflow(directory / "mlflow") if with_mlflow else None
    except BaseException:
        for component in reversed(started):
            component.stop()
        raise
    cluster = DevCluster(directory, binaries, plane, node, mlflow)
    (directory / STATE_FILE).write_text(json.dumps(cluster.state(), indent=2))
    return cluster


def stop_from_state(directory: Path) -> list[str]:
    """Stop the processes recorded by ``dev-cluster up``; returns the names stopped."""
    state_path = directory / STATE_FILE
    if not state_path.exists():
        return []
    state = json.loads(state_path.read_text())
    order = ["local-node", "mlflow", "kube-controller-manager", "kube-apiserver", "etcd"]
    stopped = []
    for name in order:
        pid = state["pids"].get(name)
        if pid:
            stop_pid(int(pid))
            stopped.append(name)
    state_path.unlink()
    return stopped
