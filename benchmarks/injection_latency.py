"""Admission latency the injection webhook adds to pod creation, and the operator's memory while it serves.

Creates N pods as server-side dry runs (the webhook declares no side effects, so the API
server calls it on dry runs too, and no pod has to run on the machine), alternating a pod
that asks for injection with one that does not, on the same control plane. Prints the
create -> admitted round trip p50/p99 of each, the difference, and the operator's resident
memory (VmRSS) and peak (VmHWM) after serving them.

    .venv/bin/python benchmarks/injection_latency.py --pods 1000
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.cluster.projects import project_manifest  # noqa: E402
from tests.cluster_helpers import OperatorProcess, wait_until  # noqa: E402

from feast_lineage.devcluster.cluster import install_crds, start_dev_cluster  # noqa: E402
from feast_lineage.devcluster.webhook import register_injection_webhook  # noqa: E402
from feast_lineage.domain.labels import ANNOTATION_INJECTED, LABEL_INJECT  # noqa: E402

NAMESPACE = "bench-injection"
TARGET_P99_MS = 5.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def proc_status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pod(index: int, inject: bool) -> dict[str, Any]:
    labels = {LABEL_INJECT: "drivers"} if inject else {"app": "plain"}
    return {
        "metadata": {"name": f"p-{index}", "labels": labels},
        "spec": {"containers": [{"name": "train", "image": "trainer:1", "command": ["python", "train.py"]}]},
    }


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pods", type=int, default=1000, help="dry-run creates of each kind")
    args = parser.parse_args()
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    with tempfile.TemporaryDirectory(prefix="feast-lineage-bench-") as tmp:
        directory = Path(tmp)
        cluster = start_dev_cluster(directory / "cluster", with_mlflow=False)
        operator = OperatorProcess(cluster.kubeconfig, "http://127.0.0.1:9", directory / "operator", resync_seconds=60)
        try:
            api = cluster.api_client()
            install_crds(cluster.binaries, cluster.kubeconfig)
            operator.webhook_args = register_injection_webhook(api, operator.webhook_port)
            operator.start()
            core = client.CoreV1Api(api)
            core.create_namespace({"metadata": {"name": NAMESPACE}})
            manifest = project_manifest("drivers", directory / "data", {"configMap": {"name": "repo"}})
            client.CustomObjectsApi(api).create_namespaced_custom_object(
                "featurelineage.io", "v1alpha1", NAMESPACE, "featurestoreprojects", manifest
            )

            def injected() -> bool:
                created = core.create_namespaced_pod(NAMESPACE, pod(0, True), dry_run="All")
                return ANNOTATION_INJECTED in (created.metadata.annotations or {})

            wait_until(injected, 60, "the webhook to inject")
            timings: dict[bool, list[float]] = {True: [], False: []}
            for index in range(50):  # warm connections and caches on both paths
                core.create_namespaced_pod(NAMESPACE, pod(index, index % 2 == 0), dry_run="All")
            for index in range(2 * args.pods):
                inject = index % 2 == 0
                started = time.perf_counter()
                created = core.create_namespaced_pod(NAMESPACE, pod(index, inject), dry_run="All")
                timings[inject].append((time.perf_counter() - started) * 1000)
                assert (ANNOTATION_INJECTED in (created.metadata.annotations or {})) is inject
            assert operator.process is not None
            pid = operator.process.pid
            print(f"{args.pods} server-side dry-run pod creates of each kind, interleaved, one at a time")
            for inject, label in ((False, "without injection"), (True, "with injection   ")):
                values = timings[inject]
                print(
                    f"  {label}  p50 {statistics.median(values):6.2f} ms  p99 {percentile(values, 0.99):6.2f} ms"
                    f"  max {max(values):6.2f} ms"
                )
            p50 = statistics.median(timings[True]) - statistics.median(timings[False])
            p99 = percentile(timings[True], 0.99) - percentile(timings[False], 0.99)
            verdict = "met" if p99 <= TARGET_P99_MS else "NOT met"
            target = f"target <= +{TARGET_P99_MS} ms: {verdict}"
            print(f"  added by the webhook: p50 {p50:+.2f} ms, p99 {p99:+.2f} ms ({target})")
            print(
                f"operator memory while serving: VmRSS {proc_status_mib(pid, 'VmRSS'):.0f} MiB, "
                f"peak VmHWM {proc_status_mib(pid, 'VmHWM'):.0f} MiB"
            )
        finally:
            operator.stop()
            cluster.stop()


if __name__ == "__main__":
    main()
