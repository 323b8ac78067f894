"""What a thousand projects and ten thousand runs cost the operator, on the local cluster.

Creates --projects FeatureStoreProjects, each with its own repo ConfigMap, every other one with a
daily materialization schedule, spread over --namespaces namespaces, and --runs MaterializationJobs
of which --active are real (the operator creates their Jobs) and the rest finished history.

SEEDED, not produced: two cores cannot run thousands of `feast apply` and `feast materialize`, so
the projects' applied status and the finished runs' status are written through the status
subresource before the operator starts (the output says so). The figures measure what these
objects cost the operator, not what producing them costs. The local node is stopped, so runner
pods stay Pending and only the operator works.

Prints, next to the targets: startup time to converge (every project reconciled once, every active
run's Job created), resident memory, idle CPU and API requests per second at idle (over more than
a resync period), the time from a change to one project's repo to its apply Job, and the time to
converge after a restart.

    .venv/bin/python benchmarks/scale.py --projects 1000 --runs 10000 --active 100
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import signal
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client, config

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.cluster.projects import project_manifest, range_run_manifest  # noqa: E402
from tests.cluster_helpers import OperatorProcess, wait_until  # noqa: E402

from benchmarks.operator_probe import cpu_seconds, load, proc_status_mib, request_counts  # noqa: E402
from feast_lineage.api import (  # noqa: E402
    FEATURE_STORE_PROJECT_PLURAL,
    GROUP,
    MATERIALIZATION_JOB_PLURAL,
    VERSION,
    FeatureStoreProject,
    FeatureStoreProjectStatus,
    LastApply,
    MaterializationJobStatus,
)
from feast_lineage.api.common import Condition  # noqa: E402
from feast_lineage.controller.settings import DEFAULT_RUNNER_IMAGE  # noqa: E402
from feast_lineage.devcluster.cluster import install_crds, start_dev_cluster  # noqa: E402
from feast_lineage.domain.apply_plan import (  # noqa: E402
    apply_hash,
    apply_job_name,
    configmap_identity,
    spec_hash,
)

TARGET_RSS_MIB = 150
VIEWS_PER_PROJECT = 10
RUNNER_VOLUME_TYPES = ("configMap", "secret", "emptyDir", "hostPath")
SEEDING_THREADS = 16
_RECONCILES = re.compile(
    r'^feast_lineage_reconcile_total\{kind="(?P<kind>\w+)",outcome="(?P<outcome>\w+)"\} (?P<n>\S+)$'
)
_SETTLED = re.compile(r'^feast_lineage_runs_settled_total\{when="(?P<when>\w+)"\} (?P<n>\S+)$', re.MULTILINE)


def repo_data(index: int, revision: int = 0) -> dict[str, str]:
    # The operator never imports it (runner pods do, and they stay Pending): content matters only as a fingerprint.
    return {"features.py": f"# project {index}, revision {revision}\n"}


def conditions(ready: bool, reconciling: bool, reason: str, now: datetime.datetime) -> list[Condition]:
    return [
        Condition(
            type=kind,
            status="True" if value else "False",
            observed_generation=1,
            last_transition_time=now,
            reason=reason,
            message="",
        )
        for kind, value in (("Ready", ready), ("Reconciling", reconciling), ("Stalled", False))
    ]


class Seeder:
    """Creates the objects and writes the seeded status, from a few threads."""

    def __init__(self, api: client.ApiClient, data: Path) -> None:
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.data = data
        self.now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)

    def project(self, namespace: str, index: int, scheduled: bool) -> None:
        name = f"p{index}"
        data = repo_data(index)
        self.core.create_namespaced_config_map(namespace, {"metadata": {"name": f"{name}-repo"}, "data": data})
        manifest = project_manifest(name, self.data / name, {"configMap": {"name": f"{name}-repo"}})
        if scheduled:
            manifest["spec"]["materialization"] = {"schedule": "0 3 * * *"}
        body = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, FEATURE_STORE_PROJECT_PLURAL, manifest
        )
        # The status an apply would have left: the same hash the operator computes, so it sees nothing to do.
        project = FeatureStoreProject.model_validate({k: body[k] for k in ("apiVersion", "kind", "metadata", "spec")})
        repo = configmap_identity(f"{name}-repo", data, {})
        spec_digest = spec_hash(project, DEFAULT_RUNNER_IMAGE)
        digest = apply_hash(spec_digest, repo)
        views = [f"fv_{i}" for i in range(VIEWS_PER_PROJECT)]
        status = FeatureStoreProjectStatus(
            observed_generation=1,
            conditions=conditions(True, False, "Applied", self.now),
            last_apply=LastApply(
                revision=repo.revision,
                time=self.now,
                job_name=apply_job_name(name, digest),
                trigger="created",
                outcome="Succeeded",
                spec_hash=spec_digest,
            ),
            applied_spec_hash=digest,
            feature_views=views,
            feature_view_count=len(views),
            materialized_feature_views=views,
        )
        self.custom.replace_namespaced_custom_object_status(
            GROUP, VERSION, namespace, FEATURE_STORE_PROJECT_PLURAL, name, {**body, "status": status.to_k8s()}
        )

    def finished_run(self, namespace: str, project: str, name: str, view: str) -> None:
        body = self.custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            MATERIALIZATION_JOB_PLURAL,
            one_day_run(name, project, view),
        )
        started = self.now - datetime.timedelta(minutes=5)
        status = MaterializationJobStatus(
            observed_generation=1,
            conditions=conditions(True, False, "Succeeded", self.now),
            phase="Succeeded",
            job_name=f"{name}-materialize",
            start_time=started,
            completion_time=self.now,
            duration_seconds=300.0,
            reason="Succeeded",
            message="materialized (seeded)",
            feature_views=[view],
        )
        self.custom.replace_namespaced_custom_object_status(
            GROUP, VERSION, namespace, MATERIALIZATION_JOB_PLURAL, name, {**body, "status": status.to_k8s()}
        )

    def active_run(self, namespace: str, project: str, name: str, view: str) -> None:
        self.custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            MATERIALIZATION_JOB_PLURAL,
            one_day_run(name, project, view),
        )


def seeding_client(kubeconfig: Path) -> client.ApiClient:
    """A client with a connection for each seeding thread (the default pool keeps fewer)."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = SEEDING_THREADS
    return client.ApiClient(configuration)


def one_day_run(name: str, project: str, view: str) -> dict[str, Any]:
    return range_run_manifest(name, project, end="2026-11-03T00:00:00Z", views=[view])


def in_parallel(calls: list[tuple[Any, ...]]) -> None:
    with ThreadPoolExecutor(SEEDING_THREADS) as pool:
        for future in [pool.submit(*call) for call in calls]:
            future.result()


def metrics_text(metrics_port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def settled_runs(metrics_port: int) -> str:
    """How many finished runs the operator labelled settled (out of its watch), by when it found them."""
    found = {match["when"]: float(match["n"]) for match in _SETTLED.finditer(metrics_text(metrics_port))}
    return ", ".join(f"{when} {found.get(when, 0):.0f}" for when in ("start", "listed", "event"))


def reconciles(metrics_port: int) -> dict[str, float]:
    """The operator's own count of finished passes, by kind."""
    counts: dict[str, float] = {}
    for line in metrics_text(metrics_port).splitlines():
        match = _RECONCILES.match(line)
        if match:
            counts[match["kind"]] = counts.get(match["kind"], 0.0) + float(match["n"])
    return counts


def passed_projects(custom: client.CustomObjectsApi) -> int:
    """Projects the operator has passed over at least once: the seeded status names no runner
    ConfigMap, the operator's first pass does."""
    listed = custom.list_cluster_custom_object(GROUP, VERSION, FEATURE_STORE_PROJECT_PLURAL)
    return sum(1 for item in listed["items"] if (item.get("status") or {}).get("runnerConfigMap"))


def converge(
    operator: OperatorProcess, projects: int, active: int, what: str, custom: client.CustomObjectsApi | None = None
) -> str:
    """How long from the operator's start until it answers /healthz, and until it has passed over
    every project and active run once (with ``custom``: every project's status shows its pass; else
    the operator's count of passes, which a project passed twice counts twice)."""
    started = time.monotonic()
    operator.start()
    live = time.monotonic() - started

    def done() -> bool:
        try:
            counts = reconciles(operator.metrics_port)
        except OSError:  # an operator busy starting up answers late: ask again
            return False
        if counts.get("FeatureStoreProject", 0) < projects or counts.get("MaterializationJob", 0) < active:
            return False
        return custom is None or passed_projects(custom) >= projects

    wait_until(done, 3600, what, interval=0.5)
    return f"converged in {time.monotonic() - started:.1f} s (live after {live:.1f} s)"


def jobs_of(batch: client.BatchV1Api, label: str) -> int:
    return len(batch.list_job_for_all_namespaces(label_selector=label, limit=500).items)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--active", type=int, default=100, help="runs that are real (the rest are seeded history)")
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--idle-seconds", type=float, default=150, help="idle sample (more than one 60 s resync)")
    parser.add_argument("--settle-seconds", type=float, default=70, help="wait after converging (one resync)")
    args = parser.parse_args()
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    finished = args.runs - args.active
    with tempfile.TemporaryDirectory(prefix="feast-lineage-scale-") as tmp:
        directory = Path(tmp)
        cluster = start_dev_cluster(directory / "cluster", with_mlflow=False)
        cluster.node.stop()  # runner pods stay Pending: nothing but the operator works
        operator = OperatorProcess(cluster.kubeconfig, "http://127.0.0.1:9", directory / "operator", resync_seconds=60)
        operator.extra_args = [f"--runner-volume-type={kind}" for kind in RUNNER_VOLUME_TYPES]
        try:
            api = cluster.api_client()
            install_crds(cluster.binaries, cluster.kubeconfig)
            core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
            namespaces = [f"scale-{i}" for i in range(args.namespaces)]
            for namespace in namespaces:
                core.create_namespace({"metadata": {"name": namespace}})
            seeder = Seeder(seeding_client(cluster.kubeconfig), directory / "data")
            placed = [(namespaces[i % len(namespaces)], i) for i in range(args.projects)]
            started = time.monotonic()
            in_parallel([(seeder.project, ns, i, i % 2 == 0) for ns, i in placed])
            runs = [(placed[r % len(placed)], r) for r in range(args.runs)]
            in_parallel(
                [
                    (seeder.finished_run, ns, f"p{i}", f"r{r}", f"fv_{r % VIEWS_PER_PROJECT}")
                    for (ns, i), r in runs[:finished]
                ]
            )
            print(
                f"SEEDED (status written through the status subresource, no Feast run): {args.projects} applied "
                f"projects ({(args.projects + 1) // 2} with a daily schedule) and {finished} finished runs in "
                f"{args.namespaces} namespaces, in {time.monotonic() - started:.0f} s"
            )
            print(f"load: {load()}")
            # The active runs are created before the operator starts: startup must create their Jobs.
            in_parallel(
                [
                    (seeder.active_run, ns, f"p{i}", f"r{r}", f"fv_{r % VIEWS_PER_PROJECT}")
                    for (ns, i), r in runs[finished:]
                ]
            )
            custom = client.CustomObjectsApi(api)
            first = converge(operator, args.projects, args.active, "first start to converge", custom)
            pid = operator.process.pid  # type: ignore[union-attr]
            wait_until(lambda: jobs_of(batch, "featurelineage.io/operation=materialize") >= args.active, 600, "Jobs")
            print(
                f"first start (history never seen before) {first}; RSS {proc_status_mib(pid, 'VmRSS'):.0f} MiB, "
                f"peak {proc_status_mib(pid, 'VmHWM'):.0f} MiB"
            )
            print(f"  finished runs labelled settled (out of the watch): {settled_runs(operator.metrics_port)}")

            # The passes of a first start change what the next resync sees (the ConfigMaps they made):
            # idle is measured from the resync after.
            time.sleep(args.settle_seconds)
            cpu, requests, t0 = cpu_seconds(pid), request_counts(api), time.monotonic()
            time.sleep(args.idle_seconds)  # a sample of idle costs, not a wait for an outcome
            elapsed = time.monotonic() - t0
            spent, after = cpu_seconds(pid) - cpu, request_counts(api)
            idle_total = (after.total - requests.total) / elapsed
            print(
                f"idle over {elapsed:.0f} s: CPU {spent / elapsed * 100:.1f} % of a core, "
                f"API requests {(after.operator - requests.operator) / elapsed:.1f}/s by the operator "
                f"({(after.total - requests.total) / elapsed:.1f}/s all clients)"
            )
            print(f"  busiest requests at idle (all clients): {after.busiest_since(requests)}")
            print(f"  load: {load()}")
            rss, hwm = proc_status_mib(pid, "VmRSS"), proc_status_mib(pid, "VmHWM")
            print(f"operator RSS {rss:.0f} MiB, peak {hwm:.0f} MiB   (target <= {TARGET_RSS_MIB} MiB)")

            namespace, index = placed[len(placed) // 2]
            selector = f"featurelineage.io/project=p{index},featurelineage.io/operation=apply"
            changed = time.monotonic()
            core.patch_namespaced_config_map(f"p{index}-repo", namespace, {"data": repo_data(index, 1)})
            wait_until(lambda: batch.list_namespaced_job(namespace, label_selector=selector).items, 600, "apply Job")
            print(f"a change to one project's repo -> its apply Job: {time.monotonic() - changed:.2f} s")

            operator.stop()
            # The other clients' share at idle (controller-manager, scheduler), the operator stopped.
            others, t1 = request_counts(api), time.monotonic()
            time.sleep(min(30.0, args.idle_seconds))  # a sample of idle costs, not a wait for an outcome
            others_rate = (request_counts(api).total - others.total) / (time.monotonic() - t1)
            operator_rate = idle_total - others_rate
            print(
                f"idle API requests by the operator: {operator_rate:.1f}/s (all clients {idle_total:.1f}/s less "
                f"{others_rate:.1f}/s without the operator)   (target: grows with active objects, not history)"
            )
            operator.directory = directory / "operator-restart"
            restart = converge(operator, args.projects, args.active, "restart to converge")
            pid = operator.process.pid  # type: ignore[union-attr]
            print(
                f"restart {restart}; RSS {proc_status_mib(pid, 'VmRSS'):.0f} MiB, "
                f"peak {proc_status_mib(pid, 'VmHWM'):.0f} MiB"
            )
            print(f"  finished runs labelled settled by the restarted operator: {settled_runs(operator.metrics_port)}")
            print(f"load: {load()}")
        finally:
            operator.stop()
            cluster.stop()


if __name__ == "__main__":
    main()
