"""Chaos: the operator SIGKILLed at random points while applies and materializations go on.

Short by default (``CHAOS_OPERATIONS``, 8); the long run is ``CHAOS_OPERATIONS=100 make chaos``.
``CHAOS_SEED`` replays a run. Checks: no Job created twice (Job UIDs per name, from a watch),
every operation's MLflow record there exactly once, every resource converged.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest
from kubernetes import client, watch

from feast_lineage.devcluster.mlflow_server import MlflowServer
from feast_lineage.domain.apply_plan import configmap_identity
from tests.cluster.projects import Projects, example_files, ops_runs_with_audit_id, project_manifest, repo_configmap
from tests.cluster.test_materialization import Runs
from tests.cluster_helpers import wait_until
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.chaos

AUDIT_ANNOTATION = "featurelineage.io/audit-id"


class JobWatch:
    """Every Job the namespace ever had: UIDs per name and audit ids, from a watch that outlives errors."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.batch = client.BatchV1Api(api)
        self.namespace = namespace
        self.uids: defaultdict[str, set[str]] = defaultdict(set)
        self.audit_ids: dict[str, str] = {}
        self.intervals: dict[str, tuple[str, datetime, datetime | None]] = {}
        """Job name -> (operation, start, completion), as last seen."""
        self._versions: dict[str, str] = {}  # uid -> resourceVersion, as last seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> JobWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def caught_up(self) -> bool:
        """The watch has seen every Job of the namespace as a list shows it now."""
        listed = self.batch.list_namespaced_job(self.namespace).items
        return all(self._versions.get(job.metadata.uid) == job.metadata.resource_version for job in listed)

    def overlaps(self) -> list[tuple[str, str]]:
        """Pairs of Jobs that ran at once although they must not: two applies, or (file registry) an apply
        and a materialization, or two materializations."""
        found = []
        items = sorted(self.intervals.items(), key=lambda item: item[1][1])
        for index, (first, (_, _, first_end)) in enumerate(items):
            for second, (_, second_start, _) in items[index + 1 :]:
                if first_end is None or second_start < first_end:
                    found.append((first, second))
        return found

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                stream = watch.Watch()
                for event in stream.stream(self.batch.list_namespaced_job, self.namespace, timeout_seconds=5):
                    meta = event["object"].metadata
                    self.uids[meta.name].add(meta.uid)
                    self._versions[meta.uid] = meta.resource_version
                    audit_id = (meta.annotations or {}).get(AUDIT_ANNOTATION)
                    if audit_id:
                        self.audit_ids[meta.name] = audit_id
                    job_status = event["object"].status
                    if job_status is not None and job_status.start_time is not None:
                        operation = (meta.labels or {}).get("featurelineage.io/operation", "")
                        self.intervals[meta.name] = (operation, job_status.start_time, job_status.completion_time)
                    if self._stop.is_set():
                        stream.stop()
            except Exception:
                time.sleep(0.5)


def with_ttl(days: int) -> dict[str, bytes]:
    files = example_files()
    files["features.py"] = files["features.py"].replace(
        b"ttl=timedelta(days=1)", f"ttl=timedelta(days={days})".encode(), 1
    )
    return files


def test_operator_killed_at_random_points_creates_nothing_twice_and_loses_nothing(
    api: client.ApiClient, namespace: str, operator: ChartOperator, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    seed = int(os.environ.get("CHAOS_SEED", str(int(time.time()))))
    operations = int(os.environ.get("CHAOS_OPERATIONS", "8"))
    rng = random.Random(seed)
    print(f"chaos: seed {seed}, {operations} operations")
    core, projects, runs = client.CoreV1Api(api), Projects(api, namespace), Runs(api, namespace)
    started = time.monotonic()
    kills = 0
    with JobWatch(api, namespace) as jobs:
        core.create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
        projects.create(project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}}))
        projects.wait_condition("drivers", "Ready", timeout=240)
        run_names: list[str] = []
        ttl = 1
        for index in range(operations):
            kind = ("apply", "range", "incremental")[index % 3]
            if kind == "apply":
                ttl += 1
                core.replace_namespaced_config_map("repo", namespace, repo_configmap("repo", with_ttl(ttl)))
            elif kind == "range":
                day = 2 + index % 6
                name = f"range-{index}"
                runs.create(
                    name, mode="Range", startTime=f"2026-11-0{day}T00:00:00Z", endTime=f"2026-11-0{day + 1}T00:00:00Z"
                )
                run_names.append(name)
            else:
                name = f"incremental-{index}"
                runs.create(name, mode="Incremental")
                run_names.append(name)
            time.sleep(rng.uniform(0, 6))
            operator.kill()
            kills += 1
            time.sleep(rng.uniform(0, 2))
            operator.start()

        repo = core.read_namespaced_config_map("repo", namespace)
        final_revision = configmap_identity("repo", repo.data or {}, repo.binary_data or {}).revision

        def converged() -> bool:
            ready = projects.condition("drivers", "Ready") or {}
            last = (projects.get("drivers").get("status") or {}).get("lastApply") or {}
            runs_done = all(runs.status(name).get("phase") in ("Succeeded", "Failed") for name in run_names)
            return ready.get("status") == "True" and last.get("revision") == final_revision and runs_done

        wait_until(converged, 600, "every resource to converge")
        converge_seconds = time.monotonic() - started
        status = projects.get("drivers")["status"]
        wait_until(jobs.caught_up, 60, "the Job watch to have seen every Job as it is now")
    duplicated = {name: uids for name, uids in jobs.uids.items() if len(uids) > 1}
    outcomes = {name: runs.status(name) for name in run_names}
    failed = {
        name: (s.get("reason"), s.get("message")) for name, s in outcomes.items() if s.get("phase") != "Succeeded"
    }
    records = {name: ops_runs_with_audit_id(mlflow_server.url, audit_id) for name, audit_id in jobs.audit_ids.items()}
    print(
        f"chaos: {operations} operations, {kills} kills, {len(jobs.uids)} Jobs, "
        f"converged after {converge_seconds:.0f}s; MLflow records per Job: {sorted(set(records.values()))}"
    )
    assert duplicated == {}, f"Jobs created twice: {duplicated}"
    # A file registry: one writer at a time, whatever the kills did.
    assert jobs.overlaps() == [], jobs.intervals
    assert failed == {}, failed
    assert status["lastApply"]["outcome"] == "Succeeded" and not status.get("pendingApply")
    lost = sorted(name for name, count in records.items() if count == 0)
    doubled = sorted(name for name, count in records.items() if count > 1)
    assert (lost, doubled) == ([], []), f"lost: {lost}, duplicated: {doubled}"
    assert not status.get("pendingAudit")
