"""A runner whose environment holds secrets never writes them: not to its output, its termination
message or MLflow, whichever way they are echoed (run as the Job's container runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from feast_lineage import contract
from feast_lineage.devcluster.mlflow_server import MlflowServer
from tests.canary import leaks, new_canary
from tests.integration.runner_setup import PROJECT, RunnerWorld, make_world

PRINTS_ITS_ENVIRONMENT = """
import json, logging, os, sys, urllib.parse
secrets = {k: v for k, v in os.environ.items() if k in ("STORE_PASSWORD", "MLFLOW_TRACKING_TOKEN")}
print("environment:", dict(os.environ))
print(json.dumps(secrets), file=sys.stderr)
os.write(2, ("raw fd: " + urllib.parse.urlencode(secrets) + "\\n").encode())
logging.getLogger("repo").warning("logged %s", secrets)
raise RuntimeError("refusing to run with " + os.environ["STORE_PASSWORD"])
"""


def _run_cli(world: RunnerWorld, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "feast-lineage"), "runner", "apply"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _mlflow_texts(tracking_uri: str) -> str:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(f"{PROJECT}-feast-ops")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    assert runs
    return json.dumps([{"tags": run.data.tags, "params": run.data.params, "name": run.info.run_name} for run in runs])


@pytest.fixture
def canary() -> str:
    return new_canary()


def _secret_env(canary: str) -> dict[str, str]:
    return {
        "STORE_PASSWORD": canary,
        "STORE_TYPE": canary,
        contract.MLFLOW_ENV_TOKEN: canary,
        contract.ENV_GIT_PASSWORD: canary,
        contract.ENV_SECRET_NAMES: "STORE_PASSWORD,STORE_TYPE",
        # A busy machine must not turn the MLflow check into a delivery failure.
        contract.MLFLOW_ENV_TIMEOUT: "60",
    }


def _assert_no_leak(canary: str, completed: subprocess.CompletedProcess[str], world: RunnerWorld) -> dict[str, Any]:
    for name, text in (
        ("stdout", completed.stdout),
        ("stderr", completed.stderr),
        ("termination message", world.result_path.read_text()),
    ):
        assert leaks(text, canary) == [], f"{name}: {text[-3000:]}"
    assert world.tracking_uri is not None
    assert leaks(_mlflow_texts(world.tracking_uri), canary) == []
    return dict(json.loads(world.result_path.read_text()))


def test_a_store_type_from_a_secret_is_not_echoed(tmp_path: Path, mlflow_server: MlflowServer, canary: str) -> None:
    # Feast names the unknown type it read: after ${STORE_TYPE} expansion, that is the secret.
    world = make_world(tmp_path, mlflow_server.url, online_store_type="${STORE_TYPE}")
    completed = _run_cli(world, world.env("apply", **_secret_env(canary)))
    assert completed.returncode == 1
    result = _assert_no_leak(canary, completed, world)
    assert "mlflow" in result, result
    assert result["error"].startswith("feature_store.yaml is invalid: unknown online store type '***'"), result


def test_a_repo_that_prints_its_environment_leaks_nothing(
    tmp_path: Path, mlflow_server: MlflowServer, canary: str
) -> None:
    world = make_world(tmp_path, mlflow_server.url)
    (world.repo_dir / "zz_prints_env.py").write_text(PRINTS_ITS_ENVIRONMENT)
    completed = _run_cli(world, world.env("apply", **_secret_env(canary)))
    assert completed.returncode == 1
    # It printed, and the printing reached the log: redacted, not dropped.
    assert "environment:" in completed.stdout + completed.stderr
    assert "raw fd: " in completed.stderr and "***" in completed.stderr
    result = _assert_no_leak(canary, completed, world)
    assert "refusing to run with ***" in result["error"], result
    assert result["mlflow"]["experiment"] == f"{PROJECT}-feast-ops"


def test_a_tracking_uri_with_user_info_is_a_clear_error_after_the_apply(tmp_path: Path, canary: str) -> None:
    # As a user would write it: the password percent-encoded.
    world = make_world(tmp_path, f"http://alice:{quote(canary, safe='')}@127.0.0.1:5000")
    completed = _run_cli(world, world.env("apply"))
    assert completed.returncode == 0, completed.stderr[-2000:]
    for text in (completed.stdout, completed.stderr, world.result_path.read_text()):
        assert leaks(text, canary) == []
    result = json.loads(world.result_path.read_text())
    assert result["ok"] is True and "user info" in result["mlflowError"], result
