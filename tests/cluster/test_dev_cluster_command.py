"""`feast-lineage dev-cluster up/down`: the same environment for people, left running between commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from feast_lineage.devcluster.binaries import ensure_binaries
from feast_lineage.devcluster.controlplane import start_control_plane
from feast_lineage.devcluster.processes import StartupError

pytestmark = pytest.mark.cluster

CLI = str(Path(sys.executable).parent / "feast-lineage")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_prints_where_things_are_and_down_stops_every_process(tmp_path: Path) -> None:
    directory = tmp_path / "dev"
    up = subprocess.run([CLI, "dev-cluster", "up", "--dir", str(directory)], capture_output=True, text=True)
    state = json.loads((directory / "state.json").read_text()) if (directory / "state.json").exists() else {}
    try:
        assert up.returncode == 0, up.stderr
        assert f"export KUBECONFIG={directory / 'kubeconfig'}" in up.stdout
        assert f"export MLFLOW_TRACKING_URI={state['mlflowUrl']}" in up.stdout
        kubectl = Path(ensure_binaries(log=False).kubectl)
        nodes = subprocess.run(
            [str(kubectl), f"--kubeconfig={state['kubeconfig']}", "get", "nodes", "--no-headers"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert nodes.stdout.split()[:2] == ["local-node", "Ready"]
        with urllib.request.urlopen(f"{state['mlflowUrl']}/health", timeout=5) as response:
            assert response.status == 200
    finally:
        down = subprocess.run([CLI, "dev-cluster", "down", "--dir", str(directory)], capture_output=True, text=True)
    assert down.returncode == 0, down.stderr
    assert "stopped: local-node, mlflow, kube-controller-manager, kube-apiserver, etcd" in down.stdout
    assert not [name for name, pid in state["pids"].items() if _alive(pid)]


def test_apiserver_that_exits_fails_start_up_with_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "kube-apiserver"
    broken.write_text("#!/bin/sh\necho 'E1126 flag provided but not defined: -bogus' >&2\nexit 1\n")
    broken.chmod(0o755)
    real = ensure_binaries(log=False)
    binaries = type(real)(
        etcd=real.etcd,
        kube_apiserver=broken,
        kube_controller_manager=real.kube_controller_manager,
        kubectl=real.kubectl,
        helm=real.helm,
    )
    with pytest.raises(StartupError) as raised:
        start_control_plane(binaries, tmp_path / "plane", timeout=60)
    message = str(raised.value)
    assert message.startswith("kube-apiserver exited with code 1 before ready")
    assert "flag provided but not defined" in message
