"""`helm install` as users run it: the release namespace's pods isolated (each its own network namespace
and address on the local node's bridge), the chart's defaults of two replicas and Lease leader election,
and the webhooks reached through the chart's webhook Service (no ``webhook.url``: the API server routes
to the Service's endpoints, the pods' own addresses). Both pods pass their probes, one holds the Lease,
the example project reconciles, a MaterializationJob runs, a labelled pod is injected, `helm test`
passes through the Services. The leader's pod is deleted: the other takes over (it hands the Lease back)
and a new MaterializationJob runs. Then the new leader's container is killed (SIGKILL): the other takes
the Lease over once it expires. Both takeover times are printed. Then `helm upgrade` and `helm uninstall`.

MLflow listens on the node's bridge address (see tests/cluster/chart_pods.py). Not enforced for these
pods: capabilities and seccomp (see README, "The local cluster").
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from feast_lineage.devcluster.cluster import DevCluster
from tests.chart_helpers import CHART
from tests.cluster.admission_load import AdmissionLoad
from tests.cluster.chart_pods import (
    LIVENESS_PORT,
    get,
    installed_as_pods,
    leader_sample,
    lease_holder,
    ready_pods,
)
from tests.cluster.operator_checks import assert_nothing_refused, exercise, materialize
from tests.cluster.test_helm_install import uninstall_leaves_nothing
from tests.cluster_helpers import gone, operators_paused, wait_until
from tests.operator_pod import kill_container, pod_log

pytestmark = pytest.mark.cluster


def test_helm_install_isolated_two_replicas_webhooks_through_the_service_leader_deleted_takes_over(
    dev_cluster: DevCluster,
    api: client.ApiClient,
    crds_installed: None,
    namespace: str,
    tmp_path: Path,
) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    with operators_paused(api), installed_as_pods(dev_cluster, api, namespace, tmp_path) as installed:
        helm, release, release_namespace = installed.helm, installed.name, installed.namespace
        fullname = installed.fullname
        assert f"watching {namespace}." in installed.installed.stdout  # NOTES.txt
        pods = wait_until(lambda: ready_pods(core, release_namespace, release, 2), 180, "two Ready operator pods")
        addresses = {p.status.pod_ip for p in pods}
        assert len(addresses) == 2 and not any(a.startswith("127.") for a in addresses), addresses
        assert all(p.spec.service_account_name == fullname for p in pods)
        for pod in pods:
            assert get(f"http://{pod.status.pod_ip}:{LIVENESS_PORT}/healthz")  # what the probes call
        deployment = apps.read_namespaced_deployment(fullname, release_namespace)
        assert deployment.spec.replicas == 2

        names = {p.metadata.name for p in pods}
        holder = wait_until(lambda: lease_holder(api, release_namespace, deployment), 60, "a Lease holder")
        assert holder in names
        wait_until(lambda: sorted(leader_sample(p) for p in pods) == [0, 1], 60, "exactly one replica leading")

        # The webhooks through their Service: the apply's validation and the labelled pod's injection.
        exercise(api, namespace, tmp_path)

        tested = helm("test", release, "--timeout", "3m")
        assert "Phase:          Succeeded" in tested.stdout, tested.stdout
        outputs = (dev_cluster.directory / "node" / "pods").glob(f"{release_namespace}_{fullname}-test_*/test.log")
        output = "".join(path.read_text() for path in outputs)
        assert "metrics: ok" in output and "webhook: ok" in output, output

        # The leader's pod deleted (SIGTERM: it hands the Lease back): the other leads. Admission
        # goes on throughout: the deleted replica answers until the API server stops routing to it.
        leader = next(p for p in pods if p.metadata.name == holder)
        other = next(p for p in pods if p.metadata.name != holder)
        with AdmissionLoad(api, namespace, "drivers") as load:
            started = time.monotonic()
            core.delete_namespaced_pod(holder, release_namespace)
            wait_until(
                lambda: lease_holder(api, release_namespace, deployment) == other.metadata.name,
                120,
                "the other replica to take the Lease over",
            )
            takeover = time.monotonic() - started
            wait_until(lambda: leader_sample(other) == 1, 60, "the other replica to lead")
            print(f"leader pod deleted: the other replica held the Lease after {takeover:.1f}s")
            done = materialize(api, namespace, "after-takeover")
            assert done["phase"] == "Succeeded", done
            wait_until(
                lambda: gone(core.read_namespaced_pod, holder, release_namespace), 120, "the deleted pod to be gone"
            )
        print(f"admissions while the leader's pod was deleted: {load.admitted} admitted, {len(load.refused)} refused")
        assert load.refused == [] and load.admitted > 0, load.refused[:5]
        for pod in (leader, other):
            assert_nothing_refused(pod_log(dev_cluster, pod))
        # The Deployment replaces the deleted pod.
        pods = wait_until(lambda: ready_pods(core, release_namespace, release, 2), 180, "two Ready pods again")

        # The leader's container killed (SIGKILL, as a crash ends it): the other waits out the Lease.
        survivor = next(p for p in pods if p.metadata.name != other.metadata.name)
        started = time.monotonic()
        assert kill_container(other.metadata.name)
        wait_until(
            lambda: lease_holder(api, release_namespace, deployment) == survivor.metadata.name,
            120,
            "the other replica to take the expired Lease over",
        )
        takeover = time.monotonic() - started
        print(f"leader's container killed: the other replica held the Lease after {takeover:.1f}s (lease 15s)")
        wait_until(lambda: leader_sample(survivor) == 1, 60, "the other replica to lead")
        # The killed container is restarted in its pod, which is Ready again as a follower.
        wait_until(lambda: ready_pods(core, release_namespace, release, 2), 180, "two Ready pods after the kill")

        # A changed value rolls both pods (surge one, none unavailable) and they carry on, admitting
        # throughout.
        def upgraded() -> list[Any] | None:
            found = ready_pods(core, release_namespace, release, 2)
            if not found or any("--log-json" in p.spec.containers[0].args for p in found):
                return None
            return found

        old_pods = {p.metadata.name for p in pods}
        with AdmissionLoad(api, namespace, "drivers") as load:
            helm(
                "upgrade", release, str(CHART), "--reuse-values", "--set", "logJson=false", "--wait", "--timeout", "5m"
            )
            wait_until(upgraded, 180, "two upgraded Ready operator pods")
            wait_until(
                lambda: all(gone(core.read_namespaced_pod, name, release_namespace) for name in old_pods),
                120,
                "the old pods to be gone",
            )
        print(f"admissions during the rolling upgrade: {load.admitted} admitted, {len(load.refused)} refused")
        assert load.refused == [] and load.admitted > 0, load.refused[:5]

        uninstall_leaves_nothing(helm, api, release, namespace)
