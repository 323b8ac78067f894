"""Two replicas of the operator under the chart's RBAC (namespaced mode, a Lease of their own): one
holds the Lease and reconciles, the other stands by and answers admission from its own project map.
The leader is killed (SIGKILL) while its apply Job runs: the other takes the Lease over and finishes
the apply - the same Job (same UID), one MLflow run, no audit record left behind. A leader stopped
gracefully hands the Lease back. The takeover times are printed.

Here the replicas are processes on one host, so each gets ports of its own, and the webhook
configurations are pointed at the replica that is alive, as the webhook Service would route. Why not
the chart's pods: two pods on the host's network would share its ports, and isolated pods cannot reach
the session's MLflow server on 127.0.0.1, which this test reads the runs from; two replicas as pods,
isolated, with the webhooks through their Service, are tests/cluster/test_helm_pods.py and
tests/cluster/test_helm_failover.py.
"""

from __future__ import annotations

import contextlib
import datetime
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes import client
from mlflow.tracking import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from feast_lineage.devcluster.cluster import DevCluster
from feast_lineage.devcluster.mlflow_server import MlflowServer
from feast_lineage.domain import labels
from tests.cluster.operator_checks import assert_nothing_refused, start_under_chart_rbac
from tests.cluster.projects import (
    Projects,
    ops_runs_with_audit_id,
    project_manifest,
    repo_configmap,
    slow_example_files,
)
from tests.cluster_helpers import OperatorProcess, finished_after, job_running, operators_paused, wait_until
from tests.install_helpers import ChartRbacInstall

pytestmark = pytest.mark.cluster

# A shorter lease than the chart's 15 s, so the takeover is quicker; the renew deadline still allows
# for a loaded machine (a leader that misses it exits).
LEASE_VALUES = (
    "leaderElection.leaseDurationSeconds=10",
    "leaderElection.renewDeadlineSeconds=8",
    "leaderElection.retryPeriodSeconds=1",
)


def replica_of(first: OperatorProcess, directory: Path, identity: str | None = None) -> OperatorProcess:
    """Another pod of the same Deployment: its arguments and token, ports of its own, and the given
    Lease identity (else the one it makes from its pod's name, as in a pod)."""
    assert first.run_args is not None
    directory.mkdir(parents=True, exist_ok=True)
    other = OperatorProcess(first.kubeconfig, first.mlflow_url, directory)
    other.run_args = [
        *first.run_args,
        f"--webhook-port={other.webhook_port}",
        f"--liveness-port={other.liveness_port}",
        f"--metrics-port={other.metrics_port}",
        *([f"--leader-election-identity={identity}"] if identity else []),
    ]
    return other


@contextlib.contextmanager
def two_replicas(
    dev_cluster: DevCluster,
    api: client.ApiClient,
    mlflow: MlflowServer,
    namespace: str,
    directory: Path,
    pod_names: bool = False,
) -> Iterator[tuple[ChartRbacInstall, OperatorProcess, OperatorProcess]]:
    """The chart's RBAC (watching ``namespace``, a Lease of its own) and two replicas, not started yet,
    alone with it: identities ``replica-a`` and ``replica-b``, or - with ``pod_names`` - made by each
    process from its POD_NAME (``operator-a``, ``operator-b``) as in a pod. Stopped and removed after."""
    with operators_paused(api):
        install, first = start_under_chart_rbac(
            dev_cluster, mlflow, directory / "a", f"watchNamespaces={{{namespace}}}", *LEASE_VALUES
        )
        if pod_names:
            first.run_args = list(install.run_args)
            first.extra_env = {"POD_NAME": "operator-a"}
            second = replica_of(first, directory / "b")
            second.extra_env = {"POD_NAME": "operator-b"}
        else:
            first.run_args = [*install.run_args, "--leader-election-identity=replica-a"]
            second = replica_of(first, directory / "b", "replica-b")
        try:
            yield install, first, second
        finally:
            second.stop()
            first.stop()
            install.delete()


def read_lease(api: client.ApiClient, install: ChartRbacInstall) -> Any:
    lease_arg = next(a for a in install.run_args if a.startswith("--leader-election-lease="))
    namespace, name = lease_arg.split("=", 1)[1].split("/")
    return client.CoordinationV1Api(api).read_namespaced_lease(name, namespace)


def lease_holder(api: client.ApiClient, install: ChartRbacInstall) -> str | None:
    lease = read_lease(api, install)
    return str(lease.spec.holder_identity) if lease.spec.holder_identity else None


def sample(operator: OperatorProcess, name: str) -> float:
    """The sum of the samples named ``name`` on this replica (0 when it has none)."""
    return sum(s.value for f in text_string_to_metric_families(operator.metrics()) for s in f.samples if s.name == name)


def point_webhooks_at(api: client.ApiClient, install: ChartRbacInstall, port: int) -> None:
    """What the webhook Service does for the API server: send admission to a replica that is alive."""
    admission = client.AdmissionregistrationV1Api(api)
    for obj in install.objects:
        if obj["kind"] == "MutatingWebhookConfiguration":
            read, patch = admission.read_mutating_webhook_configuration, admission.patch_mutating_webhook_configuration
        elif obj["kind"] == "ValidatingWebhookConfiguration":
            read = admission.read_validating_webhook_configuration
            patch = admission.patch_validating_webhook_configuration
        else:
            continue
        name = obj["metadata"]["name"]
        ops = [
            {
                "op": "replace",
                "path": f"/webhooks/{index}/clientConfig/url",
                "value": f"https://127.0.0.1:{port}{urlsplit(webhook.client_config.url).path}",
            }
            for index, webhook in enumerate(read(name).webhooks)
        ]
        patch(name, ops)


def test_leader_killed_mid_apply_the_standby_takes_over_and_finishes_it_once(
    dev_cluster: DevCluster,
    api: client.ApiClient,
    crds_installed: None,
    mlflow_server: MlflowServer,
    namespace: str,
    tmp_path: Path,
) -> None:
    core, batch, projects = client.CoreV1Api(api), client.BatchV1Api(api), Projects(api, namespace)
    with two_replicas(dev_cluster, api, mlflow_server, namespace, tmp_path) as (install, leader, standby):
        leader.start()
        wait_until(lambda: lease_holder(api, install) == "replica-a", 60, "replica-a to hold the Lease")
        standby.start()  # healthy while it stands by: /healthz answers
        assert sample(leader, "feast_lineage_leader") == 1 and sample(standby, "feast_lineage_leader") == 0

        # An apply that takes a while (the repo sleeps on import), so it surely runs at the kill.
        core.create_namespaced_config_map(namespace, repo_configmap("repo", slow_example_files(20)))
        projects.create(project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}}))
        jobs = wait_until(lambda: projects.apply_jobs("drivers"), 60, "the apply Job")
        wait_until(lambda: job_running(api, namespace, jobs[0]), 90, "the apply Job to run")
        uid = batch.read_namespaced_job(jobs[0], namespace).metadata.uid

        # The standby answers admission from its own watch: the project appeared after it started.
        point_webhooks_at(api, install, standby.webhook_port)
        pod = {
            "metadata": {"name": "trainer", "labels": {labels.LABEL_INJECT: "drivers"}},
            "spec": {"containers": [{"name": "train", "image": "none", "command": ["true"]}]},
        }
        admitted = core.create_namespaced_pod(namespace, pod, dry_run="All")
        assert admitted.metadata.annotations[labels.ANNOTATION_INJECTED], "the standby did not inject the pod"
        # ... and did nothing else: no reconcile, so no Job, no status, no audit delivery of its own.
        assert sample(standby, "feast_lineage_reconcile_total") == 0
        assert sample(leader, "feast_lineage_reconcile_total") > 0

        assert job_running(api, namespace, jobs[0]), "the apply ended before the leader was killed"
        killed = leader.kill()
        started = time.monotonic()
        wait_until(lambda: lease_holder(api, install) == "replica-b", 60, "replica-b to take the Lease over")
        takeover = time.monotonic() - started
        wait_until(lambda: sample(standby, "feast_lineage_reconcile_total") > 0, 60, "replica-b to reconcile")
        reconciling = time.monotonic() - started
        status = projects.wait_condition("drivers", "Ready", timeout=180)["status"]
        print(
            f"takeover after SIGKILL of the leader (lease {LEASE_VALUES[0].split('=')[1]}s): "
            f"Lease held by the other replica after {takeover:.1f}s, its first reconcile after {reconciling:.1f}s"
        )

        assert finished_after(api, namespace, jobs[0], killed)  # the apply was under way at the kill
        assert projects.apply_jobs("drivers") == jobs
        assert batch.read_namespaced_job(jobs[0], namespace).metadata.uid == uid
        last = status["lastApply"]
        assert last["jobName"] == jobs[0] and last["outcome"] == "Succeeded", last

        # Its audit record reaches MLflow once: from the runner, or - when the runner could not log
        # it in time - from the new leader, which delivers what the status keeps.
        last = projects.wait_audit_delivered("drivers")["lastApply"]
        assert last["jobName"] == jobs[0]
        assert ops_runs_with_audit_id(mlflow_server.url, last["auditId"]) == 1
        run = MlflowClient(mlflow_server.url).get_run(last["mlflow"]["runId"])
        assert run.data.tags["featurelineage.audit_id"] == last["auditId"]
        assert sample(standby, "feast_lineage_leader") == 1
    assert_nothing_refused(leader.log())
    assert_nothing_refused(standby.log())


def test_a_leader_stopped_gracefully_hands_the_lease_over_at_once(
    dev_cluster: DevCluster,
    api: client.ApiClient,
    crds_installed: None,
    mlflow_server: MlflowServer,
    namespace: str,
    tmp_path: Path,
) -> None:
    """A rolling update or a drain stops the leader with SIGTERM: it hands the Lease back, and the
    other leads within a retry period instead of a lease duration."""
    with two_replicas(dev_cluster, api, mlflow_server, namespace, tmp_path) as (install, leader, standby):
        leader.start()
        wait_until(lambda: lease_holder(api, install) == "replica-a", 60, "replica-a to hold the Lease")
        standby.start()
        started = time.monotonic()
        leader.stop()
        # Handed back (no holder), unless the other replica took it already.
        assert lease_holder(api, install) in (None, "replica-b")
        assert ": released" in leader.log()
        wait_until(lambda: lease_holder(api, install) == "replica-b", 60, "replica-b to take the Lease")
        handover = time.monotonic() - started
        wait_until(lambda: sample(standby, "feast_lineage_leader") == 1, 30, "replica-b to lead")
        print(f"graceful handover: the other replica held the Lease {handover:.1f}s after SIGTERM to the leader")


def test_a_killed_leader_restarted_in_its_pod_is_a_new_candidate_and_nobody_leads_before_the_lease_expires(
    dev_cluster: DevCluster,
    api: client.ApiClient,
    crds_installed: None,
    mlflow_server: MlflowServer,
    namespace: str,
    tmp_path: Path,
) -> None:
    """kubelet restarts a killed container in the same pod within seconds, long before its Lease
    expires. The restarted process is a new candidate (its identity is its pod's name and a suffix
    of its own), not the dead holder: it does not carry on as leader. Nobody takes the Lease before
    it has gone a whole lease duration unrenewed; then one candidate does, and only it leads. Which
    one is a race: the client's elector counts the duration from when each candidate saw the last
    renewal, and the restarted one may have seen it after the replica that was waiting."""
    with two_replicas(dev_cluster, api, mlflow_server, namespace, tmp_path, pod_names=True) as replicas:
        install, leader, standby = replicas
        leader.start()
        first = wait_until(lambda: lease_holder(api, install), 60, "operator-a to hold the Lease")
        assert first.startswith("operator-a_"), first
        standby.start()
        leader.kill()
        last_renewal = read_lease(api, install).spec.renew_time  # the killed holder renews no more
        started = time.monotonic()
        leader.start()  # the container restarted in its pod: the same POD_NAME, at once
        restarted = time.monotonic() - started

        def taken_over() -> Any:
            lease = read_lease(api, install)
            return lease if lease.spec.holder_identity not in (None, first) else None

        lease = wait_until(taken_over, 60, "a candidate to take the Lease over")
        takeover = time.monotonic() - started
        holder = str(lease.spec.holder_identity)
        assert holder.startswith(("operator-a_", "operator-b_")), holder
        # Taken only once the killed holder's last renewal was a lease duration old.
        assert lease.spec.acquire_time - last_renewal >= datetime.timedelta(seconds=lease.spec.lease_duration_seconds)
        leading, waiting = (leader, standby) if holder.startswith("operator-a_") else (standby, leader)
        wait_until(lambda: sample(leading, "feast_lineage_leader") == 1, 30, f"{holder} to report that it leads")
        assert sample(waiting, "feast_lineage_leader") == 0
        print(
            f"leader killed and restarted in its pod after {restarted:.1f}s as a new candidate; "
            f"{'the restarted process' if leading is leader else 'the other replica'} held the Lease after "
            f"{takeover:.1f}s (lease {lease.spec.lease_duration_seconds}s)"
        )
