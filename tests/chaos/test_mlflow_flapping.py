"""Chaos: MLflow going down and up every few seconds while applies and materializations run.

Each operation's audit record must end up in MLflow exactly once: logged by the runner, or kept in
status and delivered by the operator later (and a run an interrupted attempt left behind completed,
not duplicated). Short by default (``CHAOS_MLFLOW_OPERATIONS``, 6); a long run is 50.
"""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client

from feast_lineage.devcluster.mlflow_server import MlflowServer, start_mlflow
from feast_lineage.devcluster.processes import free_port
from tests.chaos.test_operator_kills import JobWatch, with_ttl
from tests.cluster.projects import Projects, example_files, ops_runs_with_audit_id, project_manifest, repo_configmap
from tests.cluster.test_materialization import Runs
from tests.cluster_helpers import wait_until
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.chaos


class FlappingMlflow:
    """An MLflow server stopped and started again at random intervals, on one address and one database."""

    def __init__(self, directory: Path, rng: random.Random) -> None:
        self.directory = directory
        self.rng = rng
        self.port = free_port()
        self.server: MlflowServer | None = start_mlflow(directory, port=self.port)
        self.outages = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._flap, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _flap(self) -> None:
        while not self._stop.wait(self.rng.uniform(3, 8)):
            assert self.server is not None
            self.server.stop()
            self.server = None
            self.outages += 1
            self._stop.wait(self.rng.uniform(2, 6))
            self.server = start_mlflow(self.directory, port=self.port)

    def __enter__(self) -> FlappingMlflow:
        self._thread.start()
        return self

    def steady(self) -> None:
        """Stop flapping and stay up."""
        self._stop.set()
        self._thread.join(timeout=120)
        if self.server is None:
            self.server = start_mlflow(self.directory, port=self.port)

    def __exit__(self, *_: object) -> None:
        self.steady()
        if self.server is not None:
            self.server.stop()


def test_mlflow_flapping_delivers_each_audit_record_exactly_once(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    seed = int(os.environ.get("CHAOS_SEED", str(int(time.time()))))
    operations = int(os.environ.get("CHAOS_MLFLOW_OPERATIONS", "6"))
    rng = random.Random(seed)
    print(f"chaos: seed {seed}, {operations} operations with MLflow flapping")
    core, projects, runs = client.CoreV1Api(api), Projects(api, namespace), Runs(api, namespace)
    with FlappingMlflow(tmp_path / "mlflow", rng) as mlflow, JobWatch(api, namespace) as jobs:
        core.create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
        manifest = project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}})
        manifest["spec"]["mlflow"]["trackingUri"] = mlflow.url
        projects.create(manifest)
        projects.wait_condition("drivers", "Ready", timeout=240)
        run_names: list[str] = []
        for index in range(operations):
            if index % 2 == 0:
                core.replace_namespaced_config_map("repo", namespace, repo_configmap("repo", with_ttl(2 + index)))
                projects.wait_condition("drivers", "Ready", timeout=240)
            else:
                name = f"range-{index}"
                day = 2 + index % 6
                runs.create(
                    name, mode="Range", startTime=f"2026-11-0{day}T00:00:00Z", endTime=f"2026-11-0{day + 1}T00:00:00Z"
                )
                run_names.append(name)
                runs.wait_phase(name, "Succeeded", "Failed", timeout=240)
        mlflow.steady()
        outages = mlflow.outages

        def all_delivered() -> bool:
            pending = (projects.get("drivers").get("status") or {}).get("pendingAudit")
            return not pending and not any(runs.status(name).get("pendingAudit") for name in run_names)

        wait_until(all_delivered, 180, "every pending audit record to be delivered")
        wait_until(jobs.caught_up, 60, "the Job watch to have seen every Job as it is now")
        records = {name: ops_runs_with_audit_id(mlflow.url, audit_id) for name, audit_id in jobs.audit_ids.items()}
    print(f"chaos: {operations} operations, {outages} MLflow outages, MLflow records per Job: {records}")
    assert all(runs.status(name).get("phase") == "Succeeded" for name in run_names)
    lost = sorted(name for name, count in records.items() if count == 0)
    doubled = sorted(name for name, count in records.items() if count > 1)
    assert (lost, doubled) == ([], []), f"lost: {lost}, duplicated: {doubled}"
    assert outages > 0, "MLflow never went down: nothing was tested"
