"""Operator overhead of MaterializationJobs against plain Jobs, on the local cluster.

For N in --sizes, creates N MaterializationJobs (each for its own feature view, so
none waits for another) and prints p50/p99 latency from resource creation to Job
creation and to Job completion. Then it creates N plain Jobs running the very same
pod (copied from an operator-made Job) and prints their creation-to-completion
latency: the ratio of the two is the operator's overhead. Finally it prints the
operator's peak memory (VmHWM). The local node runs at most --max-running-pods pods
at once, like a small node; every pod really runs `feast materialize`.

    .venv/bin/python benchmarks/materialization_latency.py --sizes 1 50 200
"""

from __future__ import annotations

import argparse
import copy
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, watch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.cluster.projects import project_manifest  # noqa: E402
from tests.cluster_helpers import OperatorProcess, wait_until  # noqa: E402

from feast_lineage.devcluster.cluster import start_dev_cluster  # noqa: E402
from feast_lineage.devcluster.mlflow_server import start_mlflow  # noqa: E402

GROUP, VERSION = "featurelineage.io", "v1alpha1"
NAMESPACE = "bench"


def feature_repo(views: int) -> dict[str, str]:
    """A repo with ``views`` feature views over the example data, so runs never share a view."""
    source = (REPO_ROOT / "examples/driver-stats/feature_repo/driver_stats.parquet").read_bytes()
    code = f"""from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource
from feast.types import Float32
driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(path="driver_stats.parquet", timestamp_field="event_timestamp", created_timestamp_column="created")
views = [
    FeatureView(name=f"fv_{{i}}", entities=[driver], ttl=timedelta(days=1), source=source,
                schema=[Field(name="conv_rate", dtype=Float32)])
    for i in range({views})
]
for view in views:
    globals()[view.name] = view
"""
    import base64

    return {"features.py": code, "__binary__driver_stats.parquet": base64.b64encode(source).decode()}


class JobClock:
    """Wall-clock times at which Jobs appear and complete, from a watch."""

    def __init__(self, api: client.ApiClient) -> None:
        self.batch = client.BatchV1Api(api)
        self.created: dict[str, float] = {}
        self.completed: dict[str, float] = {}
        self._stop = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self._stream()
            except Exception:  # the watch ends when the cluster stops, or drops; start again
                time.sleep(0.5)

    def _stream(self) -> None:
        if not self._stop.is_set():
            for event in watch.Watch().stream(self.batch.list_namespaced_job, NAMESPACE, timeout_seconds=30):
                job = event["object"]
                now = time.time()
                self.created.setdefault(job.metadata.name, now)
                conditions = job.status.conditions or []
                if any(c.type in ("Complete", "Failed") and c.status == "True" for c in conditions):
                    self.completed.setdefault(job.metadata.name, now)

    def stop(self) -> None:
        self._stop.set()


def percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):7.2f}s  p99 {p99:7.2f}s"


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_materialization_jobs(api: client.ApiClient, clock: JobClock, size: int) -> list[str]:
    custom = client.CustomObjectsApi(api)
    names = [f"mj-{size}-{i}" for i in range(size)]
    created: dict[str, float] = {}
    for i, name in enumerate(names):
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "MaterializationJob",
            "metadata": {"name": name},
            "spec": {
                "projectRef": {"name": "bench"},
                "mode": "Range",
                "startTime": "2026-11-02T00:00:00Z",
                "endTime": "2026-11-03T00:00:00Z",
                "featureViews": [f"fv_{i}"],
            },
        }
        created[name] = time.time()
        custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "materializationjobs", body)
    jobs = {name: f"{name}-materialize" for name in names}
    wait_until(lambda: all(j in clock.completed for j in jobs.values()), 3600, f"{size} MaterializationJobs")
    to_job = [clock.created[jobs[n]] - created[n] for n in names]
    to_done = [clock.completed[jobs[n]] - created[n] for n in names]
    print(
        f"MaterializationJob  N={size:<4} create->Job {percentiles(to_job)}   "
        f"create->Job complete {percentiles(to_done)}"
    )
    failed = [
        n
        for n in names
        if custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "materializationjobs", n)["status"].get(
            "phase"
        )
        != "Succeeded"
    ]
    if failed:
        print(f"({len(failed)} runs did not succeed, e.g. {failed[0]})")
    return [jobs[n] for n in names]


def run_plain_jobs(api: client.ApiClient, clock: JobClock, template: dict[str, Any], size: int) -> None:
    batch = client.BatchV1Api(api)
    created: dict[str, float] = {}
    names = [f"plain-{size}-{i}" for i in range(size)]
    for i, name in enumerate(names):
        job = copy.deepcopy(template)
        job["metadata"] = {"name": name}
        pod = job["spec"]["template"]
        pod["metadata"] = {"labels": {"bench": "plain"}}
        for env in pod["spec"]["containers"][0]["env"]:
            if env["name"] == "FEAST_LINEAGE_FEATURE_VIEWS":
                env["value"] = f"fv_{i}"
            if env["name"] == "FEAST_LINEAGE_AUDIT_ID":
                env["value"] = f"plain-{size}-{i}"
        job["spec"].pop("selector", None)
        created[name] = time.time()
        batch.create_namespaced_job(NAMESPACE, job)
    wait_until(lambda: all(n in clock.completed for n in names), 3600, f"{size} plain Jobs")
    to_done = [clock.completed[n] - created[n] for n in names]
    print(f"plain Job           N={size:<4} {'':38}   create->Job complete {percentiles(to_done)}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)  # unwind, so the finally below stops every process
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument("--max-running-pods", type=int, default=4)
    args = parser.parse_args()
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    # Runs of one batch use distinct views, so none waits for another; batches run one after another.
    views = max(args.sizes)
    with tempfile.TemporaryDirectory(prefix="feast-lineage-bench-") as tmp:
        directory = Path(tmp)
        cluster = start_dev_cluster(directory / "cluster", with_mlflow=False, max_running_pods=args.max_running_pods)
        mlflow = start_mlflow(directory / "mlflow")
        # The operator's default resync (tests use a short one, which would add load here).
        operator = OperatorProcess(cluster.kubeconfig, mlflow.url, directory / "operator", resync_seconds=60)
        try:
            import subprocess

            subprocess.run(
                [
                    str(cluster.binaries.kubectl),
                    f"--kubeconfig={cluster.kubeconfig}",
                    "apply",
                    "--server-side",
                    "-f",
                    str(REPO_ROOT / "crds"),
                ],
                check=True,
                capture_output=True,
            )
            subprocess.run(
                [
                    str(cluster.binaries.kubectl),
                    f"--kubeconfig={cluster.kubeconfig}",
                    "wait",
                    "--for=condition=Established",
                    "-f",
                    str(REPO_ROOT / "crds"),
                ],
                check=True,
                capture_output=True,
            )
            operator.start()
            api = cluster.api_client()
            core = client.CoreV1Api(api)
            core.create_namespace({"metadata": {"name": NAMESPACE}})
            wait_until(lambda: core.list_namespaced_service_account(NAMESPACE).items, 30, "default ServiceAccount")
            files = feature_repo(views)
            core.create_namespaced_config_map(
                NAMESPACE,
                {
                    "metadata": {"name": "repo"},
                    "data": {"features.py": files["features.py"]},
                    "binaryData": {"driver_stats.parquet": files["__binary__driver_stats.parquet"]},
                },
            )
            manifest = project_manifest("bench", directory / "data", {"configMap": {"name": "repo"}})
            manifest["spec"]["mlflow"] = {"logOperations": True, "requestTimeoutSeconds": 5, "maxRetries": 0}
            # A SQL registry takes concurrent runs; a file registry is rewritten whole by each run, so
            # the operator lets one run at a time touch it, which would measure queueing, not overhead.
            manifest["spec"]["featureStore"]["registry"] = {
                "registryType": "sql",
                "path": "sqlite:////feast-data/registry.db",
            }
            client.CustomObjectsApi(api).create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, "featurestoreprojects", manifest
            )
            wait_until(
                lambda: any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in (
                        client.CustomObjectsApi(api)
                        .get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "featurestoreprojects", "bench")
                        .get("status")
                        or {}
                    ).get("conditions", [])
                ),
                600,
                "the benchmark project to be applied",
            )
            clock = JobClock(api)
            print(f"operator RSS after apply: VmHWM {vm_hwm_mib(operator.process.pid):.0f} MiB")  # type: ignore[union-attr]
            print(f"local node runs at most {args.max_running_pods} pods at once; each runs feast materialize")
            for size in args.sizes:
                jobs = run_materialization_jobs(api, clock, size)
                template = client.BatchV1Api(api).read_namespaced_job(jobs[0], NAMESPACE)
                template_dict = api.sanitize_for_serialization(template)
                template_dict["spec"]["template"]["metadata"].pop("labels", None)
                for key in ("selector", "manualSelector"):
                    template_dict["spec"].pop(key, None)
                template_dict.pop("status", None)
                run_plain_jobs(api, clock, template_dict, size)
            print(f"operator peak memory (VmHWM): {vm_hwm_mib(operator.process.pid):.0f} MiB")  # type: ignore[union-attr]
            clock.stop()
        finally:
            operator.stop()
            mlflow.stop()
            cluster.stop()


if __name__ == "__main__":
    main()
