"""Operator overhead of MaterializationJobs against plain Jobs, on the local cluster.

For N in --sizes, creates N MaterializationJobs (each for its own feature view, so
none waits for another) and prints p50/p99 latency from resource creation to Job
creation and to Job completion. Then it creates N plain Jobs running the very same
pod (copied from an operator-made Job) and prints their creation-to-completion
latency: the ratio of the two is the operator's overhead. Finally it prints the
operator's peak memory (VmHWM). The local node runs at most --max-running-pods pods
at once, like a small node; every pod really runs `feast materialize`.

With --isolated the local node is stopped once the project is applied, so runner pods stay
Pending and only the operator works: it prints resource -> Job latency, the operator's CPU
seconds and peak memory, and the API requests it made per run, next to the targets.

    .venv/bin/python benchmarks/materialization_latency.py --sizes 1 50 200
    .venv/bin/python benchmarks/materialization_latency.py --isolated --sizes 1 50 200

With --webhooks the operator also serves its admission webhooks (registered as an install registers
them): every run's create then passes its validating and mutating webhooks, and every runner pod
its injection webhook, in the operator's process, as in a real install.
"""

from __future__ import annotations

import argparse
import copy
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, watch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.cluster.projects import (  # noqa: E402
    generated_files,
    project_manifest,
    range_run_manifest,
    repo_configmap,
)
from tests.cluster_helpers import OperatorProcess, wait_until  # noqa: E402

from benchmarks.operator_probe import cpu_seconds, load, p50_p99, proc_status_mib, request_counts  # noqa: E402
from feast_lineage.devcluster.cluster import start_dev_cluster  # noqa: E402
from feast_lineage.devcluster.mlflow_server import start_mlflow  # noqa: E402
from feast_lineage.devcluster.processes import free_port  # noqa: E402
from feast_lineage.devcluster.webhook import register_injection_webhook  # noqa: E402

GROUP, VERSION = "featurelineage.io", "v1alpha1"
NAMESPACE = "bench"
# Resource -> Job created, p99, in isolated mode (issue 16's targets).
TARGET_P99_SECONDS = {50: 0.1, 200: 1.0}
RUNNER_VOLUME_TYPES = ("configMap", "secret", "emptyDir", "hostPath")


class JobClock:
    """Wall-clock times at which Jobs appear and complete, and runs start, from watches."""

    def __init__(self, api: client.ApiClient) -> None:
        self.batch = client.BatchV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.created: dict[str, float] = {}
        self.completed: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self._stop = threading.Event()
        threading.Thread(target=self._watch, args=(self._jobs,), daemon=True).start()
        threading.Thread(target=self._watch, args=(self._runs,), daemon=True).start()

    def _watch(self, stream: Any) -> None:
        while not self._stop.is_set():
            try:
                stream()
            except Exception:  # the watch ends when the cluster stops, or drops; start again
                time.sleep(0.5)

    def _jobs(self) -> None:
        for event in watch.Watch().stream(self.batch.list_namespaced_job, NAMESPACE, timeout_seconds=300):
            job = event["object"]
            now = time.time()
            self.created.setdefault(job.metadata.name, now)
            conditions = job.status.conditions or []
            if any(c.type in ("Complete", "Failed") and c.status == "True" for c in conditions):
                self.completed.setdefault(job.metadata.name, now)

    def _runs(self) -> None:
        stream = watch.Watch().stream(
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            NAMESPACE,
            "materializationjobs",
            timeout_seconds=300,
        )
        for event in stream:
            run = event["object"]
            if (run.get("status") or {}).get("phase") == "Running":
                self.running.setdefault(run["metadata"]["name"], time.time())

    def stop(self) -> None:
        self._stop.set()


def create_runs(api: client.ApiClient, size: int) -> dict[str, float]:
    """N MaterializationJobs, each for its own feature view; when each was created."""
    custom = client.CustomObjectsApi(api)
    created: dict[str, float] = {}
    for i in range(size):
        name = f"mj-{size}-{i}"
        created[name] = time.time()
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            NAMESPACE,
            "materializationjobs",
            range_run_manifest(name, "bench", end="2026-11-03T00:00:00Z", views=[f"fv_{i}"]),
        )
    return created


def isolated_batch(api: client.ApiClient, clock: JobClock, pid: int, size: int) -> None:
    """N runs whose pods never start: the latency, CPU and requests are the operator's alone."""
    custom = client.CustomObjectsApi(api)
    cpu, requests = cpu_seconds(pid), request_counts(api)
    created = create_runs(api, size)
    jobs = {name: f"{name}-materialize" for name in created}
    wait_until(lambda: all(j in clock.created for j in jobs.values()), 600, f"{size} Jobs")
    # Each run's pass ends with its status write: wait for the last one before reading the counters.
    wait_until(lambda: all(n in clock.running for n in created), 600, "every run Running")
    spent, after = cpu_seconds(pid) - cpu, request_counts(api)
    to_job = [clock.created[jobs[n]] - created[n] for n in created]
    target = TARGET_P99_SECONDS.get(size)
    print(
        f"isolated N={size:<4} resource->Job {p50_p99(to_job, 0.001, 'ms')}"
        + (f"  (target p99 <= {target * 1000:.0f} ms)" if target else "")
        + f"  created within {max(created.values()) - min(created.values()):.2f} s"
    )
    own = size  # the benchmark's own creates
    print(
        f"           operator CPU {spent:.2f} s ({spent / size * 1000:.1f} ms/run)  "
        f"peak RSS {proc_status_mib(pid, 'VmHWM'):.0f} MiB  "
        f"API requests/run {(after.operator - requests.operator - own) / size:.1f}"
    )
    print(f"           requests by kind (every client, controller-manager too): {after.busiest_since(requests)}")
    custom.delete_collection_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "materializationjobs")
    wait_until(
        lambda: not custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "materializationjobs")["items"],
        600,
        "the batch's runs to be deleted",
    )


def run_materialization_jobs(api: client.ApiClient, clock: JobClock, size: int) -> list[str]:
    custom = client.CustomObjectsApi(api)
    created = create_runs(api, size)
    names = list(created)
    jobs = {name: f"{name}-materialize" for name in names}
    wait_until(lambda: all(j in clock.completed for j in jobs.values()), 3600, f"{size} MaterializationJobs")
    to_job = [clock.created[jobs[n]] - created[n] for n in names]
    to_done = [clock.completed[jobs[n]] - created[n] for n in names]
    print(f"MaterializationJob  N={size:<4} create->Job {p50_p99(to_job)}   create->Job complete {p50_p99(to_done)}")
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
    print(f"plain Job           N={size:<4} {'':38}   create->Job complete {p50_p99(to_done)}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)  # unwind, so the finally below stops every process
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument("--max-running-pods", type=int, default=4)
    parser.add_argument("--isolated", action="store_true", help="stop the node after the apply: the operator alone")
    parser.add_argument("--webhooks", action="store_true", help="the operator serves its admission webhooks too")
    args = parser.parse_args()
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    # Runs of one batch use distinct views, so none waits for another; batches run one after another.
    views = max(args.sizes)
    with tempfile.TemporaryDirectory(prefix="feast-lineage-bench-") as tmp:
        directory = Path(tmp)
        cluster = start_dev_cluster(directory / "cluster", with_mlflow=False, max_running_pods=args.max_running_pods)
        mlflow = start_mlflow(directory / "mlflow", timeout=600)  # a loaded machine starts it slowly
        # The operator's default resync (tests use a short one, which would add load here).
        operator = OperatorProcess(cluster.kubeconfig, mlflow.url, directory / "operator", resync_seconds=60)
        # The project keeps Feast's files on a hostPath volume: an administrator's choice.
        operator.extra_args = [f"--runner-volume-type={kind}" for kind in RUNNER_VOLUME_TYPES]
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
            api = cluster.api_client()
            if args.webhooks:
                operator.webhook_args = register_injection_webhook(api, free_port())
                print("webhooks: the operator serves its validating, provenance and injection webhooks")
            operator.start()
            core = client.CoreV1Api(api)
            core.create_namespace({"metadata": {"name": NAMESPACE}})
            wait_until(lambda: core.list_namespaced_service_account(NAMESPACE).items, 30, "default ServiceAccount")
            core.create_namespaced_config_map(NAMESPACE, repo_configmap("repo", generated_files(views)))
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
            pid = operator.process.pid  # type: ignore[union-attr]
            print(f"operator RSS after apply: VmHWM {proc_status_mib(pid, 'VmHWM'):.0f} MiB")
            print(f"load: {load()}")
            if args.isolated:
                cluster.node.stop()  # runner pods now stay Pending: nothing but the operator works
                print("isolated: the local node is stopped, runner pods stay Pending")
                for size in args.sizes:
                    isolated_batch(api, clock, pid, size)
                print(f"load: {load()}")
                return
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
            print(f"operator peak memory (VmHWM): {proc_status_mib(pid, 'VmHWM'):.0f} MiB")
            print(f"load: {load()}")
            clock.stop()
        finally:
            operator.stop()
            mlflow.stop()
            cluster.stop()


if __name__ == "__main__":
    main()
