"""Session-wide fixtures: one real control plane, local node and MLflow server per test run."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from feast_lineage.devcluster.cluster import DevCluster, start_dev_cluster
from feast_lineage.devcluster.mlflow_server import MlflowServer, start_mlflow
from feast_lineage.devcluster.processes import free_port
from tests.cluster_helpers import wait_until
from tests.operator_pod import ChartOperator

REPO_ROOT = Path(__file__).resolve().parent.parent


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # A terminated test run still stops what it started: SIGTERM unwinds like Ctrl-C, so the
    # session fixtures stop the control plane, node, MLflow and operator.
    signal.signal(signal.SIGTERM, _interrupt)


@pytest.fixture(scope="session")
def dev_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """Build (if needed) and start the control plane and the local node; stop both at the end.

    A missing prerequisite fails here with the component's log tail; it is never skipped.
    """
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    cluster = start_dev_cluster(tmp_path_factory.mktemp("dev-cluster"), with_mlflow=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real `mlflow server` (SQLite, served artifacts) shared by the whole run."""
    # Its start takes from seconds to minutes on a machine busy with other test runs.
    server = start_mlflow(tmp_path_factory.mktemp("mlflow"), timeout=300)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def api(dev_cluster: DevCluster) -> client.ApiClient:
    return dev_cluster.api_client()


@pytest.fixture(scope="session")
def crds_installed(dev_cluster: DevCluster) -> None:
    """The CRDs from crds/, applied server-side and Established."""
    kubectl = Kubectl(dev_cluster.binaries.kubectl, dev_cluster.kubeconfig)
    crds = str(REPO_ROOT / "crds")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", crds)

    # `kubectl wait` fails outright on a CRD whose status has no conditions yet, right after the apply.
    def established() -> bool:
        return kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", crds, check=False).returncode == 0

    wait_until(established, 120, "the CRDs to be Established")
    # The published OpenAPI (kubectl explain, client-side validation) follows a moment later.
    for plural in ("featurestoreprojects", "materializationjobs"):

        def explained(resource: str = plural) -> bool:
            return kubectl("explain", resource, check=False).returncode == 0

        wait_until(explained, 60, f"OpenAPI of {plural}")


@pytest.fixture(scope="session")
def operator(
    dev_cluster: DevCluster, crds_installed: None, mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChartOperator]:
    """The operator installed by the chart (`helm install`): its Deployment's pod on the local node,
    watching every namespace, with nothing but the chart's RBAC (the pod runs with a token of the
    chart's ServiceAccount). One replica on the host's network, so it reaches the session's MLflow
    server and the tests' Git servers on loopback (see tests/operator_pod.py).

    No test needs it to have more. Its log is kept in the session's operator directory.
    """
    session = ChartOperator(dev_cluster, mlflow_server.url, tmp_path_factory.mktemp("operator"))
    try:
        session.install()
        yield session
    finally:
        session.uninstall()


@pytest.fixture
def namespace(request: pytest.FixtureRequest, api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace per test, with its default ServiceAccount in place."""
    base = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:5]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    wait_until(
        lambda: any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items),
        timeout=30,
        what=f"default ServiceAccount in {name}",
    )
    yield name
    core.delete_namespace(name)


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[str]:
    """A real `git daemon` on loopback serving the bare repositories under tmp_path/served: git://."""
    root = tmp_path / "served"
    root.mkdir(exist_ok=True)
    port = free_port()
    daemon = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            f"--base-path={root}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(root),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"git://127.0.0.1:{port}"

    def serving() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    try:
        wait_until(serving, 10, "git daemon to listen")
        yield url
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


@pytest.fixture
def kubectl(dev_cluster: DevCluster) -> Kubectl:
    return Kubectl(dev_cluster.binaries.kubectl, dev_cluster.kubeconfig)


class Kubectl:
    """Runs the real kubectl (built at the server's version) against the test cluster."""

    def __init__(self, executable: Path, kubeconfig: Path) -> None:
        self.executable = executable
        self.kubeconfig = kubeconfig

    def __call__(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.executable), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            input=input,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result
