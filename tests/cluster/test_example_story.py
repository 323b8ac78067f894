"""`make example` end to end, as a new user runs it: its own cluster, the example, and the story it
tells at the end checked against what the cluster and MLflow hold; run again; a failing step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.cluster

RUN_SH = REPO_ROOT / "examples" / "driver-stats" / "run.sh"
NS = "driver-stats"


@dataclass
class Example:
    dev_dir: Path
    env: dict[str, str]
    first: subprocess.CompletedProcess[str]

    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.dev_dir / "state.json").read_text()))

    def run(self, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(RUN_SH)], env={**self.env, **env}, capture_output=True, text=True, timeout=900
        )

    def kubectl(self, *args: str) -> str:
        state = self.state()
        done = subprocess.run(
            [state["kubectl"], f"--kubeconfig={state['kubeconfig']}", "-n", NS, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return dict(json.loads(self.kubectl("get", kind, name, "-o", "json")))


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    root = tmp_path_factory.mktemp("example")
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "KUBECONFIG")}
    env.update(
        DEV_DIR=str(root / "dev"),
        VENV=str(Path(sys.executable).parent.parent),
        EXAMPLE_DATA_DIR=str(root / "data"),
    )
    first = subprocess.run(["bash", str(RUN_SH)], env=env, capture_output=True, text=True, timeout=1800)
    try:
        yield Example(root / "dev", env, first)
    finally:
        subprocess.run(
            [str(Path(sys.executable).parent / "feast-lineage"), "dev-cluster", "down", "--dir", str(root / "dev")],
            env=env,
            capture_output=True,
            timeout=120,
        )


def _section(output: str, command: str) -> str:
    """What one `feast-lineage lineage` command printed inside the example's output."""
    after = output.split(f"$ feast-lineage lineage {command}\n", 1)[1]
    return after.split("\n$ ", 1)[0].split("\nMLflow UI:", 1)[0]


def test_the_example_tells_the_story_the_cluster_and_mlflow_hold(example: Example) -> None:
    out = example.first.stdout
    assert example.first.returncode == 0, example.first.stdout[-3000:] + example.first.stderr[-3000:]
    # Progress for each long step, the cluster's components included.
    for line in (
        "==> local cluster",
        "control plane ready in",
        "local node ready in",
        "MLflow ready in",
        "operator ready",
        "==> apply the driver-stats project",
        "==> backfill a week",
        "==> train a model",
        "==> what happened",
    ):
        assert line in out, line

    state = example.state()
    mlflow_url = state["mlflowUrl"]
    project = example.get("fsp", "driver-stats")["status"]
    backfill = example.get("mj", "driver-stats-backfill-2026-11-02")["status"]
    mlflow = MlflowClient(tracking_uri=mlflow_url)
    (version,) = mlflow.search_model_versions("name = 'driver-activity'")
    assert version.run_id is not None
    run = mlflow.get_run(version.run_id)

    history = _section(out, "history driver-stats -n driver-stats").splitlines()
    apply_line = next(line for line in history if " apply " in line)
    assert project["lastApply"]["revision"] in apply_line and project["lastApply"]["mlflow"]["runId"] in apply_line
    assert "+driver_hourly_stats" in apply_line  # a fresh registry: the first apply created the views
    materialize_line = next(line for line in history if " materialize " in line)
    window = f"[{backfill['window']['start']}, {backfill['window']['end']})"
    assert window in materialize_line and backfill["mlflow"]["runId"] in materialize_line

    model = _section(out, "model driver-activity/latest -n driver-stats")
    assert f"MODEL VERSION     driver-activity/{version.version}, READY" in model
    assert f"FEATURE SERVICE   {version.tags['feast.feature_service']} (from the model version tag)" in model
    assert f"TRAINING RUN      {run.info.run_id} driver-activity-training, FINISHED" in model
    assert f"APPLY             {project['lastApply']['revision']}" in model
    for ref in run.data.tags["feast.feature_refs"].split(","):
        view, feature = ref.split(":")
        assert any(line.startswith(view) and feature in line for line in model.splitlines()), ref
    assert "by driver-stats-backfill-2026-11-02" in model
    assert f"MLflow UI:        {mlflow_url}" in out
    assert "make dev-down" in out


def test_running_it_again_changes_nothing(example: Example) -> None:
    again = example.run()
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "already running" in again.stdout
    mlflow = MlflowClient(tracking_uri=example.state()["mlflowUrl"])
    assert len(mlflow.search_model_versions("name = 'driver-activity'")) == 1
    experiment = mlflow.get_experiment_by_name("driver_stats")
    assert experiment is not None and len(mlflow.search_runs([experiment.experiment_id])) == 1
    assert len(example.kubectl("get", "jobs", "-l", "featurelineage.io/operation=apply", "-o", "name").split()) == 1


def test_a_failing_step_names_itself_its_cause_and_its_log(example: Example) -> None:
    example.kubectl("delete", "job", "driver-activity-training", "--cascade=foreground", "--wait=true")
    failed = example.run(EXAMPLE_TIMEOUT="1")
    assert failed.returncode == 1
    assert "FAILED: train a model in a Job labelled featurelineage.io/inject: driver-stats" in failed.stderr
    assert "cause: the training Job did not complete" in failed.stderr
    assert "log:   kubectl logs -n driver-stats job/driver-activity-training" in failed.stderr
    assert "==> what happened" not in failed.stdout
