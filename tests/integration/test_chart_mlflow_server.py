"""The chart's MLflow server, run with the chart's own arguments (paths moved off the volume): it serves
its Service's names and refuses any other Host header (MLflow's DNS-rebinding protection).

The local cluster has no storage provisioner, so the server does not run there as a pod with its
PersistentVolumeClaim; its arguments are what can be checked, and are checked here with real MLflow.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from feast_lineage.devcluster.mlflow_server import mlflow_executable
from feast_lineage.devcluster.processes import ManagedProcess, free_port
from tests.chart_helpers import NAMESPACE, one, render

NAME = "fl-feast-lineage-operator-mlflow"


def chart_args(directory: Path, port: int) -> list[str]:
    deployment = one(
        render("mlflow.server.enabled=true", "mlflow.server.allowedHosts={mlflow.example.internal}"), "Deployment", NAME
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["mlflow"]
    moved = {"/mlflow": str(directory)}
    args = []
    for arg in container["args"]:
        if arg.startswith("--port="):
            arg = f"--port={port}"
        elif arg.startswith("--host="):
            arg = "--host=127.0.0.1"
        for old, new in moved.items():
            arg = arg.replace(old, new)
        args.append(arg)
    return args


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    directory = tmp_path_factory.mktemp("chart-mlflow")
    port = free_port()
    process = ManagedProcess("mlflow", [mlflow_executable(), *chart_args(directory, port)], directory / "mlflow.log")
    try:
        process.wait_ready(lambda: status(port, "localhost") == 200, 120, "healthy")
        yield port
    finally:
        process.stop()


def status(port: int, host: str, path: str = "/health") -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host})
        return connection.getresponse().status
    finally:
        connection.close()


def test_it_answers_its_service_names(server: int) -> None:
    path = "/api/2.0/mlflow/experiments/search?max_results=1"
    for host in (f"{NAME}.{NAMESPACE}.svc:5000", f"{NAME}:5000", "mlflow.example.internal", "localhost:8080"):
        assert status(server, host, path) == 200, host


def test_it_refuses_other_host_headers(server: int) -> None:
    path = "/api/2.0/mlflow/experiments/search?max_results=1"
    assert status(server, "attacker.example.com", path) == 403
    assert status(server, f"{NAME}.other-namespace.svc:5000", path) == 403


def test_it_serves_artifacts(server: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    body = json.dumps({"name": "chart-check"})
    connection.request(
        "POST", "/api/2.0/mlflow/experiments/create", body, {"Host": f"{NAME}:5000", "Content-Type": "application/json"}
    )
    created = json.loads(connection.getresponse().read())
    connection.request(
        "GET",
        f"/api/2.0/mlflow/experiments/get?experiment_id={created['experiment_id']}",
        headers={"Host": f"{NAME}:5000"},
    )
    experiment = json.loads(connection.getresponse().read())["experiment"]
    assert experiment["artifact_location"].startswith("mlflow-artifacts:"), experiment
