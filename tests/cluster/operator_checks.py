"""What an operator under test must be able to do, whoever runs it: every kind of write it makes."""

from __future__ import annotations

import datetime
import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client

from feast_lineage.devcluster.cluster import DevCluster
from feast_lineage.devcluster.mlflow_server import MlflowServer
from feast_lineage.domain import labels
from feast_lineage.install.cleanup import FINALIZER
from tests.cluster.projects import (
    EXAMPLE_REPO,
    Projects,
    example_files,
    project_manifest,
    range_run_manifest,
    repo_configmap,
)
from tests.cluster_helpers import OperatorProcess, wait_until
from tests.install_helpers import ChartRbacInstall

GROUP, VERSION = "featurelineage.io", "v1alpha1"
# Refusals as the Kubernetes client and Kopf log them.
REFUSED = re.compile(r"forbidden|\b403\b|Unauthorized", re.IGNORECASE)


def exercise(api: client.ApiClient, namespace: str, tmp_path: Path) -> None:
    """Apply, materialize, inject: every kind of write the operator makes."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(EXAMPLE_REPO / "driver_stats.parquet", data / "driver_stats.parquet")
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
    manifest = project_manifest("drivers", data, {"configMap": {"name": "repo"}})
    manifest["spec"]["runner"]["env"] = [{"name": "DRIVER_STATS_DATA", "value": "/feast-data/driver_stats.parquet"}]
    manifest["spec"]["injection"] = {"volumes": ["feast-data"]}
    projects = Projects(api, namespace)
    projects.create(manifest)
    ready = projects.wait_condition("drivers", "Ready", timeout=300)
    assert FINALIZER in ready["metadata"]["finalizers"]
    assert ready["status"]["lastApply"]["outcome"] == "Succeeded"

    done = materialize(api, namespace, "backfill")
    assert done["phase"] == "Succeeded", done

    pod = {
        "metadata": {"name": "trainer", "labels": {labels.LABEL_INJECT: "drivers"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "train", "image": "none", "command": ["true"]}]},
    }
    admitted = core.create_namespaced_pod(namespace, pod, dry_run="All")
    assert admitted.metadata.annotations[labels.ANNOTATION_INJECTED], "the webhook did not inject the pod"
    assert any(e.name == "FEAST_FS_YAML_FILE_PATH" for e in admitted.spec.containers[0].env)

    events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=drivers").items
    assert events, "the operator recorded no Event"


def materialize(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """A MaterializationJob of project ``drivers`` over the example's days; its status once finished."""
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "materializationjobs", range_run_manifest(name, "drivers")
    )

    def finished() -> dict[str, Any] | None:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "materializationjobs", name)
        status = obj.get("status") or {}
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    return wait_until(finished, 300, f"the MaterializationJob {name} to finish")


def _record(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _namespace_of(record: dict[str, Any]) -> str | None:
    found = record.get("k8s_namespace") or (record.get("object") or {}).get("namespace")
    return str(found) if found else None


def _before(record: dict[str, Any], since: float) -> bool:
    """Whether a log record is stamped before ``since``; a line without a stamp is never before."""
    try:
        return datetime.datetime.fromisoformat(str(record["timestamp"])).timestamp() < since
    except (KeyError, ValueError):
        return False


def assert_nothing_refused(log: str, namespaces: tuple[str, ...] = (), since: float | None = None) -> None:
    """No line of the operator's log says the API server refused it something. With ``namespaces``,
    lines about objects of other namespaces are left out: a cluster-wide operator also meets other
    tests' objects, e.g. in namespaces being deleted, where the API server refuses every write. With
    ``since`` (a time.time()), lines stamped before it are left out: the session's operator also lived
    through other tests, e.g. a kube-apiserver restart, after which the API server refuses a token's
    first requests until its RBAC cache is filled again."""
    refused = []
    for line in log.splitlines():
        if not REFUSED.search(line):
            continue
        record = _record(line)
        if namespaces and _namespace_of(record) not in (None, *namespaces):
            continue
        if since is not None and _before(record, since):
            continue
        refused.append(line)
    assert refused == [], "\n".join(refused[:10])


def start_under_chart_rbac(
    dev_cluster: DevCluster, mlflow: MlflowServer, directory: Path, *values: str
) -> tuple[ChartRbacInstall, OperatorProcess]:
    """The chart's RBAC applied, and the operator as a process with its Deployment's arguments and
    token: for replicas on one host, each with ports of its own (tests/cluster/test_replicas.py)."""
    suffix = uuid.uuid4().hex[:5]
    directory.mkdir(parents=True, exist_ok=True)
    process = OperatorProcess(dev_cluster.kubeconfig, mlflow.url, directory)
    install = ChartRbacInstall(
        dev_cluster.binaries.kubectl,
        dev_cluster.kubeconfig,
        release=f"rbac-{suffix}",
        namespace=f"feast-lineage-rbac-{suffix}",
        values=(
            f"webhook.url=https://127.0.0.1:{process.webhook_port}",
            f"webhook.port={process.webhook_port}",
            f"livenessPort={process.liveness_port}",
            f"metrics.port={process.metrics_port}",
            f"mlflow.trackingUri={mlflow.url}",
            f"resyncSeconds={OperatorProcess.RESYNC_SECONDS}",
            # Test projects keep Feast's files on hostPath volumes: an administrator's choice.
            "policy.runnerVolumeTypes={configMap,secret,emptyDir,persistentVolumeClaim,hostPath}",
            *values,
        ),
    )
    install.apply()
    process.kubeconfig = install.kubeconfig(dev_cluster.api_client(), directory / "operator.kubeconfig")
    process.run_args = install.run_args
    return install, process
