"""A real MLflow tracking server on loopback: SQLite backend, served artifacts."""

from __future__ import annotations

import shutil
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from feast_lineage.devcluster.processes import ManagedProcess, free_port


@dataclass
class MlflowServer:
    process: ManagedProcess
    port: int
    directory: Path
    start_seconds: float
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.process.stop()


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
        return int(response.status) == 200


def mlflow_executable() -> str:
    beside_python = Path(sys.executable).parent / "mlflow"
    found = str(beside_python) if beside_python.exists() else shutil.which("mlflow")
    if not found:
        raise FileNotFoundError("the `mlflow` command is not installed in this environment")
    return found


def start_mlflow(
    directory: Path, port: int | None = None, timeout: float = 240.0, host: str = "127.0.0.1"
) -> MlflowServer:
    """Start ``mlflow server`` and wait until /health answers (at most ``timeout`` seconds: on a
    machine shared by many test runs its imports alone have taken over 90 s).

    Passing the ``port`` of a stopped server restarts it on the same address and data. ``host`` is
    the address it listens on: the node's bridge address serves host-network and isolated pods alike.
    """
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    process = ManagedProcess(
        "mlflow",
        [
            mlflow_executable(),
            "server",
            "--host",
            host,
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{directory / 'mlflow.db'}",
            "--artifacts-destination",
            str(directory / "artifacts"),
            "--serve-artifacts",
            "--workers",
            "1",
        ],
        directory / "mlflow.log",
    )
    url = f"http://{host}:{port}"
    try:
        waited = process.wait_ready(lambda: _healthy(url), timeout, "healthy (/health)")
    except BaseException:
        process.stop()
        raise
    return MlflowServer(process=process, port=port, directory=directory, start_seconds=waited, host=host)
