"""A runner's world on local files: a ConfigMap-like repo dir, a rendered feature_store.yaml, a workspace."""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feast_lineage import contract
from feast_lineage.runner.entrypoint import run_operation

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_REPO = REPO_ROOT / "examples" / "driver-stats" / "feature_repo"
PROJECT = "driver_stats"
PROVENANCE = {"k8s.namespace": "team-a", "k8s.job.name": "driver-stats-apply-1", "featurelineage.trigger": "gitops"}


def render_config(path: Path, data: Path, online_store_type: str = "sqlite") -> None:
    """feature_store.yaml as the operator renders it: absolute paths, Feast's own MLflow logging off."""
    path.write_text(
        f"""project: {PROJECT}
provider: local
registry:
  registry_type: file
  path: {data / "registry.db"}
online_store:
  type: {online_store_type}
  path: {data / "online_store.db"}
offline_store:
  type: file
entity_key_serialization_version: 3
mlflow:
  enabled: false
"""
    )


@dataclass
class RunnerWorld:
    root: Path
    tracking_uri: str | None
    env_overrides: dict[str, str] = field(default_factory=dict)

    @property
    def repo_dir(self) -> Path:
        return self.root / "configmap"

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    @property
    def checked_out(self) -> Path:
        return self.workspace / "repo"

    @property
    def result_path(self) -> Path:
        return self.root / "termination-log"

    def env(self, operation: str, **extra: str) -> dict[str, str]:
        env = {
            contract.ENV_OPERATION: operation,
            contract.ENV_CONFIG_PATH: str(self.root / "config" / "feature_store.yaml"),
            contract.ENV_WORKSPACE: str(self.workspace),
            contract.ENV_RESULT_PATH: str(self.result_path),
            contract.ENV_REPO_KIND: "configMap",
            contract.ENV_REPO_DIR: str(self.repo_dir),
            contract.ENV_PROVENANCE: json.dumps(PROVENANCE),
            contract.ENV_AUDIT_ID: uuid.uuid4().hex,
            contract.ENV_LOG_OPERATIONS: "true" if self.tracking_uri else "false",
            contract.ENV_OPS_EXPERIMENT: f"{PROJECT}-feast-ops",
            contract.MLFLOW_ENV_TIMEOUT: "5",
            contract.MLFLOW_ENV_MAX_RETRIES: "0",
        }
        if self.tracking_uri:
            env[contract.MLFLOW_ENV_TRACKING_URI] = self.tracking_uri
        env.update(self.env_overrides)
        env.update(extra)
        return env

    def run(self, operation: str, **extra: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Run in this process (Feast is imported once); returns exit code, result and the env used."""
        env = self.env(operation, **extra)
        code = run_operation(operation, env)
        result = json.loads(self.result_path.read_text())
        assert len(self.result_path.read_bytes()) <= contract.TERMINATION_MESSAGE_LIMIT
        return code, result, env


def make_world(root: Path, tracking_uri: str | None, online_store_type: str = "sqlite") -> RunnerWorld:
    shutil.copytree(EXAMPLE_REPO, root / "configmap", ignore=shutil.ignore_patterns("__pycache__", "data"))
    (root / "config").mkdir()
    (root / "data").mkdir()
    render_config(root / "config" / "feature_store.yaml", root / "data", online_store_type)
    return RunnerWorld(root=root, tracking_uri=tracking_uri)


def rename_trips_feature(source: str, old: str, new: str) -> str:
    """features.py of the example with a feature of driver_daily_trips renamed (the service
    driver_activity_v1 includes that view whole, so it changes with it)."""
    head, view, rest = source.partition('name="driver_daily_trips"')
    definition, service, tail = rest.partition("driver_activity_v1 =")
    assert definition.count(f'Field(name="{old}"') == 1, f"driver_daily_trips has no feature {old}"
    return head + view + definition.replace(f'Field(name="{old}"', f'Field(name="{new}"') + service + tail
