"""Chaos: kube-apiserver restarted while an apply and materializations are under way.

The operator's watches must recover by themselves: nothing lost, nothing done twice, every
resource converged, and a change made after the restart still noticed. The time to converge is
printed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes import client

from feast_lineage.devcluster.cluster import DevCluster
from feast_lineage.devcluster.mlflow_server import MlflowServer
from tests.chaos.test_operator_kills import JobWatch, with_ttl
from tests.cluster.projects import Projects, example_files, ops_runs_with_audit_id, project_manifest, repo_configmap
from tests.cluster.test_materialization import Runs
from tests.cluster_helpers import job_running, wait_until
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.chaos


@pytest.fixture(autouse=True)
def operator_ready_after(operator: ChartOperator, api: client.ApiClient) -> Iterator[None]:
    """Every test here stops the API server. A leader that cannot renew its Lease meanwhile exits (as
    kube-controller-manager does) and the local node restarts its container, as kubelet would: the
    tests after these find it Ready again. kube-controller-manager's watches come back after a
    backoff of their own (up to 30 s after a long outage): the tests after these wait for a new
    namespace's default ServiceAccount only 30 s, so this waits until its controllers answer again."""
    yield
    operator.start()
    core = client.CoreV1Api(api)
    probe = f"controllers-back-{uuid.uuid4().hex[:5]}"
    core.create_namespace({"metadata": {"name": probe}})
    wait_until(
        lambda: core.list_namespaced_service_account(probe).items,
        180,
        "kube-controller-manager to give a new namespace its ServiceAccount again",
    )
    core.delete_namespace(probe)


def test_an_apiserver_restart_mid_operation_loses_nothing_and_converges(
    dev_cluster: DevCluster,
    api: client.ApiClient,
    namespace: str,
    operator: ChartOperator,
    mlflow_server: MlflowServer,
    tmp_path: Path,
) -> None:
    core, projects, runs = client.CoreV1Api(api), Projects(api, namespace), Runs(api, namespace)
    restarts = operator.restarts()
    with JobWatch(api, namespace) as jobs:
        core.create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
        projects.create(project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}}))
        projects.wait_condition("drivers", "Ready", timeout=240)
        # A new revision is being applied and two runs are queued behind it when the API server goes.
        slow = with_ttl(2)
        slow["features.py"] = b"import time\n\ntime.sleep(10)\n" + slow["features.py"]
        core.replace_namespaced_config_map("repo", namespace, repo_configmap("repo", slow))
        [applying] = wait_until(
            lambda: [j for j in projects.apply_jobs("drivers") if job_running(api, namespace, j)], 60, "the apply"
        )
        runs.create("first", mode="Range", startTime="2026-11-02T00:00:00Z", endTime="2026-11-03T00:00:00Z")
        runs.create("second", mode="Range", startTime="2026-11-03T00:00:00Z", endTime="2026-11-04T00:00:00Z")
        started = time.monotonic()
        ready_after = dev_cluster.control_plane.restart_apiserver(down_seconds=5)
        # A change after the restart must still be seen: the watches came back.
        core.replace_namespaced_config_map("repo", namespace, repo_configmap("repo", with_ttl(3)))
        for name in ("first", "second"):
            assert runs.wait_phase(name, "Succeeded", "Failed", timeout=300)["phase"] == "Succeeded"

        def applied_latest() -> bool:
            last = (projects.get("drivers").get("status") or {}).get("lastApply") or {}
            ready = projects.condition("drivers", "Ready") or {}
            return (
                ready.get("status") == "True"
                and last.get("changes", {}).get("featureViews") == ["~driver_hourly_stats"]
                and last.get("jobName") != applying
            )

        wait_until(applied_latest, 300, "the revision made after the restart to be applied")
        converged = time.monotonic() - started
        wait_until(jobs.caught_up, 60, "the Job watch to have seen every Job as it is now")
    print(
        f"apiserver restart: ready again after {ready_after:.1f}s (5 s down); "
        f"everything converged after {converged:.0f}s; operator's container restarted "
        f"{operator.restarts() - restarts} time(s) (a leader that lost its Lease exits)"
    )
    assert {name: uids for name, uids in jobs.uids.items() if len(uids) > 1} == {}
    records = {name: ops_runs_with_audit_id(mlflow_server.url, audit_id) for name, audit_id in jobs.audit_ids.items()}
    assert all(count == 1 for count in records.values()), records


def test_a_pod_that_ends_while_the_apiserver_is_away_is_reported_when_it_returns(
    dev_cluster: DevCluster, api: client.ApiClient, namespace: str
) -> None:
    """The node sends a status the API server did not take again, as kubelet does; otherwise the pod
    would look Running forever and hold its Job."""
    core = client.CoreV1Api(api)
    pod = {
        "metadata": {"name": "short"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "python:3.11-slim", "command": ["sleep", "6"]}],
        },
    }
    core.create_namespaced_pod(namespace, pod)
    wait_until(lambda: core.read_namespaced_pod_status("short", namespace).status.phase == "Running", 120, "Running")
    stopped_at = time.time()
    dev_cluster.control_plane.restart_apiserver(down_seconds=15)
    back_at = time.time()

    def ended() -> client.V1Pod | None:
        read = core.read_namespaced_pod_status("short", namespace)
        return read if read.status.phase in ("Succeeded", "Failed") else None

    ended_pod = wait_until(ended, 120, "the pod's end to be reported")
    assert ended_pod.status.phase == "Succeeded"
    finished = ended_pod.status.container_statuses[0].state.terminated.finished_at
    assert isinstance(finished, datetime)
    # finishedAt has whole seconds: the pod ended after the API server stopped and before it was back.
    assert int(stopped_at) <= finished.astimezone(UTC).timestamp() < back_at, (stopped_at, finished, back_at)
