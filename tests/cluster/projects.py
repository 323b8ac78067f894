"""Building and watching FeatureStoreProjects in cluster tests."""

from __future__ import annotations

import base64
import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

from kubernetes import client

from feast_lineage.api import FEATURE_STORE_PROJECT_PLURAL, GROUP, VERSION
from tests.cluster_helpers import wait_until
from tests.conftest import REPO_ROOT
from tests.integration.mlflow_checks import runs_with_audit_id

EXAMPLE_REPO = REPO_ROOT / "examples" / "driver-stats" / "feature_repo"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def git_repo(tmp_path: Path) -> tuple[Path, Path]:
    """A bare repository, served by the ``git_server`` fixture as ``<url>/server.git``, and a work
    tree that pushes to it."""
    (tmp_path / "served").mkdir(exist_ok=True)
    bare, work = tmp_path / "served" / "server.git", tmp_path / "work"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(tmp_path, "clone", "-q", str(bare), str(work))
    shutil.copytree(EXAMPLE_REPO, work / "features", ignore=shutil.ignore_patterns("__pycache__"))
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "driver features")
    git(work, "push", "-q", "origin", "main")
    return bare, work


def example_files() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in EXAMPLE_REPO.iterdir() if p.is_file()}


def slow_example_files(seconds: int) -> dict[str, bytes]:
    """The example repo, taking ``seconds`` to import: an apply of it is surely under way for a while."""
    files = example_files()
    files["features.py"] = f"import time\n\ntime.sleep({seconds})\n".encode() + files["features.py"]
    return files


def generated_files(views: int, services: int = 0) -> dict[str, bytes]:
    """A repo with ``views`` feature views ``fv_<i>`` over the example data (so runs need not share a
    view) and ``services`` feature services ``fs_<i>`` of a few views each."""
    code = f"""from datetime import timedelta
from feast import Entity, FeatureService, FeatureView, Field, FileSource
from feast.types import Float32
driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(path="driver_stats.parquet", timestamp_field="event_timestamp", created_timestamp_column="created")
views = [
    FeatureView(name=f"fv_{{i}}", entities=[driver], ttl=timedelta(days=1), source=source,
                schema=[Field(name="conv_rate", dtype=Float32)])
    for i in range({views})
]
services = [FeatureService(name=f"fs_{{i}}", features=views[i % len(views):][:3]) for i in range({services})]
for item in [*views, *services]:
    globals()[item.name] = item
"""
    return {"features.py": code.encode(), "driver_stats.parquet": (EXAMPLE_REPO / "driver_stats.parquet").read_bytes()}


def repo_configmap(name: str, files: dict[str, bytes]) -> dict[str, Any]:
    data, binary = {}, {}
    for key, content in files.items():
        try:
            data[key] = content.decode()
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(content).decode()
    return {"metadata": {"name": name}, "data": data, "binaryData": binary}


def project_manifest(name: str, data_dir: Path, repo: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """The example project with its registry and online store on a hostPath under ``data_dir``."""
    manifest: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FeatureStoreProject",
        "metadata": {"name": name},
        "spec": {
            "project": "driver_stats",
            "repo": repo,
            "featureStore": {
                "registry": {"path": "/feast-data/registry.db"},
                "onlineStore": {"type": "sqlite", "settings": {"path": "/feast-data/online_store.db"}},
                "offlineStore": {"type": "file"},
            },
            "mlflow": {"logOperations": True, "requestTimeoutSeconds": 3, "maxRetries": 0},
            "runner": {
                "volumes": [{"name": "feast-data", "hostPath": {"path": str(data_dir), "type": "DirectoryOrCreate"}}],
                "volumeMounts": [{"name": "feast-data", "mountPath": "/feast-data"}],
            },
        },
    }
    for key, value in spec.items():
        manifest["spec"][key] = copy.deepcopy(value)
    return manifest


class Projects:
    """FeatureStoreProject reads for one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace

    def create(self, manifest: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, FEATURE_STORE_PROJECT_PLURAL, manifest
        )

    def get(self, name: str) -> dict[str, Any]:
        obj = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, FEATURE_STORE_PROJECT_PLURAL, name
        )
        return dict(obj)

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, FEATURE_STORE_PROJECT_PLURAL, name, {"spec": spec}
        )

    def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        for condition in (self.get(name).get("status") or {}).get("conditions") or []:
            if condition["type"] == kind:
                return dict(condition)
        return None

    def wait_condition(
        self, name: str, kind: str, status: str = "True", reason: str | None = None, timeout: float = 120
    ) -> dict[str, Any]:
        def matches() -> dict[str, Any] | None:
            condition = self.condition(name, kind)
            if condition and condition["status"] == status and (reason is None or condition["reason"] == reason):
                return self.get(name)
            return None

        try:
            return wait_until(matches, timeout, f"{kind}={status} ({reason or 'any reason'}) on {name}")
        except AssertionError as error:
            current = (self.get(name).get("status") or {}).get("conditions") or []
            summary = "; ".join(f"{c['type']}={c['status']} {c['reason']}: {c['message']}" for c in current)
            raise AssertionError(f"{error}; conditions now: {summary or 'none'}") from None

    def wait_ready_at_generation(self, name: str, timeout: float = 180) -> dict[str, Any]:
        """The project once Ready for its current generation (the status and its Ready condition both
        observed it): a Ready condition left from an earlier generation does not count."""

        def ready() -> dict[str, Any] | None:
            project = self.get(name)
            generation, status = project["metadata"]["generation"], project.get("status") or {}
            conditions = [c for c in status.get("conditions") or [] if c["type"] == "Ready" and c["status"] == "True"]
            current = status.get("observedGeneration") == generation
            return project if current and any(c.get("observedGeneration") == generation for c in conditions) else None

        return wait_until(ready, timeout, f"{name} Ready at its current generation")

    def wait_audit_delivered(self, name: str, timeout: float = 120) -> dict[str, Any]:
        """The project's status once its last apply's audit record is in MLflow and none is pending."""

        def delivered() -> dict[str, Any] | None:
            status: dict[str, Any] = self.get(name)["status"]
            return status if not status.get("pendingAudit") and status["lastApply"].get("mlflow") else None

        return wait_until(delivered, timeout, f"the audit record of {name}'s apply in MLflow")

    def apply_jobs(self, name: str) -> list[str]:
        jobs = self.batch.list_namespaced_job(
            self.namespace, label_selector=f"featurelineage.io/project={name},featurelineage.io/operation=apply"
        ).items
        return sorted(job.metadata.name for job in jobs)

    def events(self, name: str) -> list[tuple[str, str]]:
        events = self.core.list_namespaced_event(self.namespace, field_selector=f"involvedObject.name={name}").items
        return [(event.reason, event.message) for event in events]


def ops_runs(url: str, audit_id: str) -> list[Any]:
    """The runs of the example's ops experiment that carry the audit record ``audit_id``."""
    return runs_with_audit_id(url, "driver_stats-feast-ops", audit_id)


def ops_runs_with_audit_id(url: str, audit_id: str) -> int:
    """How many runs of the ops experiment carry the audit record ``audit_id``: one, once delivered."""
    return len(ops_runs(url, audit_id))


def range_run_manifest(
    name: str, project: str, end: str = "2026-11-05T00:00:00Z", views: list[str] | None = None
) -> dict[str, Any]:
    """A MaterializationJob of the example's data window, from 2026-11-02 to ``end`` (the 5th)."""
    spec: dict[str, Any] = {"projectRef": {"name": project}, "mode": "Range", "startTime": "2026-11-02T00:00:00Z"}
    spec["endTime"] = end
    if views is not None:
        spec["featureViews"] = views
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MaterializationJob", "metadata": {"name": name}, "spec": spec}
