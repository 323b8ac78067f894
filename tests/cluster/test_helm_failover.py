"""Failover of the chart's two replicas, running as pods of its Deployment (an isolated namespace, the
webhooks through their Service; see tests/cluster/chart_pods.py), while an apply is under way.

The leader's container is killed (SIGKILL, as a crash or the OOM killer ends it) while the apply Job
runs: the other replica takes the Lease over once it expires and finishes that apply - the same Job
(same UID), one MLflow run for its audit record, the project Ready at its generation. Then the project
changes and, while the new apply runs, the new leader's pod is deleted (SIGTERM, as a rolling update or
a drain stops it: it hands the Lease back): another replica leads and finishes that apply just as once.
Both takeover times are printed, from the kill / the deletion to the Lease taken and the apply finished.

The same for a MaterializationJob whose Job runs at the kill: one Job (same UID), one MLflow run. (Its
Job may well finish while no replica leads: the new leader adopts it all the same.)
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from feast_lineage.devcluster.cluster import DevCluster
from tests.cluster.chart_pods import (
    PodsRelease,
    installed_as_pods,
    leader_sample,
    lease_holder,
    pod_sample,
    ready_pods,
)
from tests.cluster.operator_checks import assert_nothing_refused
from tests.cluster.projects import (
    Projects,
    example_files,
    ops_runs_with_audit_id,
    project_manifest,
    repo_configmap,
    slow_example_files,
)
from tests.cluster.test_materialization import Runs
from tests.cluster.test_replicas import LEASE_VALUES
from tests.cluster_helpers import finished_after, job_running, operators_paused, wait_until
from tests.operator_pod import kill_container, pod_log

pytestmark = pytest.mark.cluster

LEASE_SECONDS = LEASE_VALUES[0].split("=")[1]


def now() -> datetime.datetime:
    """To the second, rounded down, as the API server's times are."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


class Failover:
    """The release's replicas, its Lease and the project ``drivers`` in the watched namespace."""

    def __init__(self, api: client.ApiClient, release: PodsRelease, namespace: str) -> None:
        self.api, self.release, self.namespace = api, release, namespace
        self.core, self.batch = client.CoreV1Api(api), client.BatchV1Api(api)
        self.projects = Projects(api, namespace)
        self.deployment = client.AppsV1Api(api).read_namespaced_deployment(release.fullname, release.namespace)

    def pods(self) -> list[Any]:
        """Both replicas, Ready, and which of them holds the Lease and leads (first)."""

        def settled() -> list[Any] | None:
            pods = ready_pods(self.core, self.release.namespace, self.release.name, 2)
            holder = self.holder()
            if not pods or holder not in {p.metadata.name for p in pods}:
                return None
            pods.sort(key=lambda p: p.metadata.name != holder)
            return pods if [leader_sample(p) for p in pods] == [1, 0] else None

        return wait_until(settled, 240, "two Ready replicas, one of them leading")

    def holder(self) -> str | None:
        return lease_holder(self.api, self.release.namespace, self.deployment)

    def kill_leader(self, leader: Any, other: Any) -> tuple[datetime.datetime, float, float]:
        """SIGKILL the leader's container and wait for ``other`` to hold the Lease: when it was killed
        (as the API server counts), the monotonic moment, and the seconds until the Lease was taken."""
        killed, started = now(), time.monotonic()
        assert kill_container(leader.metadata.name)
        wait_until(lambda: self.holder() == other.metadata.name, 120, "the other replica to take the Lease")
        return killed, started, time.monotonic() - started

    def apply_running(self, known: list[str]) -> tuple[str, str]:
        """The project's new apply Job (not in ``known``) once its pod runs: its name and UID."""
        new = wait_until(
            lambda: [j for j in self.projects.apply_jobs("drivers") if j not in known], 90, "a new apply Job"
        )
        assert len(new) == 1, new
        wait_until(lambda: job_running(self.api, self.namespace, new[0]), 120, f"the apply Job {new[0]} to run")
        return new[0], self.batch.read_namespaced_job(new[0], self.namespace).metadata.uid

    def taken_over(self, job: str, uid: str, before: list[str], ended: datetime.datetime, started: float) -> float:
        """The apply ``job`` finished by the replica now leading, once: the project Ready at its
        generation with that Job, the same Job throughout, one MLflow run for its audit record.
        Returns the seconds from ``started`` to the project Ready."""
        project = self.projects.wait_ready_at_generation("drivers", timeout=240)
        finished = time.monotonic() - started
        assert finished_after(self.api, self.namespace, job, ended), "the apply ended before the leader did"
        assert self.projects.apply_jobs("drivers") == sorted([*before, job])
        assert self.batch.read_namespaced_job(job, self.namespace).metadata.uid == uid
        last = project["status"]["lastApply"]
        assert last["jobName"] == job and last["outcome"] == "Succeeded", last
        delivered = self.projects.wait_audit_delivered("drivers")["lastApply"]
        assert delivered["jobName"] == job and delivered["auditId"] == last["auditId"]
        assert ops_runs_with_audit_id(self.release.mlflow.url, last["auditId"]) == 1
        return finished


def test_chart_leader_killed_or_deleted_mid_apply_another_replica_finishes_it_once(
    dev_cluster: DevCluster,
    api: client.ApiClient,
    crds_installed: None,
    namespace: str,
    tmp_path: Path,
) -> None:
    core = client.CoreV1Api(api)
    with operators_paused(api), installed_as_pods(dev_cluster, api, namespace, tmp_path, *LEASE_VALUES) as release:
        failover = Failover(api, release, namespace)
        leader, other = failover.pods()
        data = tmp_path / "data"
        core.create_namespaced_config_map(namespace, repo_configmap("repo", slow_example_files(20)))
        failover.projects.create(project_manifest("drivers", data, {"configMap": {"name": "repo"}}))
        job, uid = failover.apply_running([])

        # The leader's container killed mid-apply: the other waits out the Lease, then finishes the apply.
        assert job_running(api, namespace, job), "the apply ended before the leader was killed"
        killed, started, taken = failover.kill_leader(leader, other)
        finished = failover.taken_over(job, uid, [], killed, started)
        assert pod_sample(other, "feast_lineage_reconcile_total") > 0  # it did reconcile
        print(
            f"leader's container killed mid-apply (lease {LEASE_SECONDS}s): the other replica held the Lease "
            f"after {taken:.1f}s, the apply finished and the project Ready after {finished:.1f}s"
        )

        # The killed container restarted as a follower. The project changes; while its new apply runs,
        # the leader's pod is deleted: it hands the Lease back, and another replica finishes the apply.
        leader, follower = failover.pods()
        assert leader.metadata.name == other.metadata.name
        failover.projects.patch_spec("drivers", {"runner": {"activeDeadlineSeconds": 900}})
        second, second_uid = failover.apply_running([job])
        assert job_running(api, namespace, second), "the apply ended before the leader's pod was deleted"
        deleted, started = now(), time.monotonic()
        core.delete_namespaced_pod(leader.metadata.name, release.namespace)
        holder = wait_until(
            lambda: (found := failover.holder()) not in (None, leader.metadata.name) and found,
            120,
            "another replica to take the Lease",
        )
        taken = time.monotonic() - started
        # Handed back on SIGTERM, not left to expire.
        wait_until(lambda: ": released" in pod_log(dev_cluster, leader), 30, "the deleted leader's release")
        finished = failover.taken_over(second, second_uid, [job], deleted, started)
        successor = "the follower" if holder == follower.metadata.name else "its replacement"
        print(
            f"leader's pod deleted mid-apply: {successor} held the Lease after {taken:.1f}s, "
            f"the apply finished and the project Ready after {finished:.1f}s"
        )
        for pod in (leader, follower):
            assert_nothing_refused(pod_log(dev_cluster, pod))


def test_chart_leader_killed_mid_materialization_the_other_replica_finishes_it_once(
    dev_cluster: DevCluster,
    api: client.ApiClient,
    crds_installed: None,
    namespace: str,
    tmp_path: Path,
) -> None:
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    with operators_paused(api), installed_as_pods(dev_cluster, api, namespace, tmp_path, *LEASE_VALUES) as release:
        failover = Failover(api, release, namespace)
        leader, other = failover.pods()
        core.create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
        failover.projects.create(project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}}))
        failover.projects.wait_ready_at_generation("drivers")
        runs = Runs(api, namespace)
        runs.create("backfill", mode="Range", startTime="2026-11-02T00:00:00Z", endTime="2026-11-05T00:00:00Z")
        # Caught at once: its runner imports Feast first, which alone takes seconds.
        [job] = wait_until(runs.jobs, 60, "the materialize Job")
        wait_until(lambda: job_running(api, namespace, job), 120, "the materialize Job to run")
        uid = batch.read_namespaced_job(job, namespace).metadata.uid

        assert job_running(api, namespace, job), "the run ended before the leader was killed"
        killed, started, taken = failover.kill_leader(leader, other)
        done = runs.wait_phase("backfill", "Succeeded", "Failed", timeout=240)
        finished = time.monotonic() - started
        assert done["phase"] == "Succeeded", done
        assert finished_after(api, namespace, job, killed), "the run ended before the leader did"
        assert runs.jobs() == [job] and done["jobName"] == job
        assert batch.read_namespaced_job(job, namespace).metadata.uid == uid

        def delivered() -> dict[str, Any] | None:
            status = runs.status("backfill")
            return status if not status.get("pendingAudit") and status.get("mlflow") else None

        status = wait_until(delivered, 120, "the run's audit record in MLflow")
        assert ops_runs_with_audit_id(release.mlflow.url, status["auditId"]) == 1
        print(
            f"leader's container killed mid-materialization (lease {LEASE_SECONDS}s): the other replica held the "
            f"Lease after {taken:.1f}s, the run Succeeded after {finished:.1f}s"
        )
        assert_nothing_refused(pod_log(dev_cluster, other))
