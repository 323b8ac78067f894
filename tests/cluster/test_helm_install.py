"""`helm install` into the local cluster with the operator's pod on the host's network: the operator
runs as a pod of the chart's Deployment, with the token of the chart's ServiceAccount (the local node
gets it from the TokenRequest API, as kubelet does), so the chart's RBAC is all it has. Then `helm test`,
`helm upgrade` and `helm uninstall`.

This is the install for an operator outside the cluster's network: a host-network pod has no address
behind a Service (EndpointSlices refuse loopback), so the API server calls the webhook at ``webhook.url``
on 127.0.0.1, with one replica (pods on the host share its ports) and the metrics Service unused.
securityContext and the image are recorded, not enforced, for a host-network pod. The install as users
run it - an isolated namespace, two replicas with leader election, the webhooks through their Service -
is tests/cluster/test_helm_pods.py.
"""

from __future__ import annotations

import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from feast_lineage.devcluster.cluster import DevCluster
from feast_lineage.devcluster.mlflow_server import MlflowServer
from feast_lineage.devcluster.processes import free_port
from feast_lineage.install.cleanup import FINALIZER
from tests.chart_helpers import CHART
from tests.cluster.operator_checks import GROUP, VERSION, assert_nothing_refused, exercise
from tests.cluster_helpers import operators_paused, wait_until
from tests.operator_pod import Helm, operator_pods, pod_log

pytestmark = pytest.mark.cluster


def running_pod(core: client.CoreV1Api, namespace: str, release: str) -> Any:
    def running() -> Any:
        pods = [p for p in operator_pods(core, namespace, release) if p.status.phase == "Running"]
        return pods[0] if len(pods) == 1 and not pods[0].metadata.deletion_timestamp else None

    return wait_until(running, 120, "one running operator pod")


def healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
        return int(response.status) == 200


def leftovers(api: client.ApiClient, release: str, namespaces: list[str]) -> list[str]:
    """Objects of the release still there after uninstall (by its instance label)."""
    selector = f"app.kubernetes.io/instance={release}"
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    apps, batch = client.AppsV1Api(api), client.BatchV1Api(api)
    admission = client.AdmissionregistrationV1Api(api)
    found = []
    for kind, items in (
        ("ClusterRole", rbac.list_cluster_role(label_selector=selector).items),
        ("ClusterRoleBinding", rbac.list_cluster_role_binding(label_selector=selector).items),
        ("MutatingWebhookConfiguration", admission.list_mutating_webhook_configuration(label_selector=selector).items),
    ):
        found += [f"{kind}/{item.metadata.name}" for item in items]
    for namespace in namespaces:
        for kind, items in (
            ("Deployment", apps.list_namespaced_deployment(namespace, label_selector=selector).items),
            ("Pod", core.list_namespaced_pod(namespace, label_selector=selector).items),
            ("Service", core.list_namespaced_service(namespace, label_selector=selector).items),
            ("ServiceAccount", core.list_namespaced_service_account(namespace, label_selector=selector).items),
            ("Secret", core.list_namespaced_secret(namespace).items),
            ("Role", rbac.list_namespaced_role(namespace, label_selector=selector).items),
            ("RoleBinding", rbac.list_namespaced_role_binding(namespace, label_selector=selector).items),
            ("Job", batch.list_namespaced_job(namespace, label_selector=selector).items),
        ):
            found += [f"{kind}/{namespace}/{item.metadata.name}" for item in items if release in item.metadata.name]
    return found


def uninstall_leaves_nothing(helm: Helm, api: client.ApiClient, release: str, namespace: str) -> None:
    """`helm uninstall` leaves no object of the release, and its hook freed the project in ``namespace``."""
    helm("uninstall", release, "--wait", "--timeout", "4m")
    assert leftovers(api, release, [helm.namespace, namespace]) == []
    project = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "featurestoreprojects", "drivers"
    )
    assert FINALIZER not in (project["metadata"].get("finalizers") or []), "the cleanup hook did not run"


def test_helm_install_test_upgrade_uninstall(
    dev_cluster: DevCluster,
    api: client.ApiClient,
    crds_installed: None,
    mlflow_server: MlflowServer,
    namespace: str,
    tmp_path: Path,
) -> None:
    suffix = uuid.uuid4().hex[:5]
    release, release_namespace = f"it-{suffix}", f"feast-lineage-it-{suffix}"
    fullname = f"{release}-feast-lineage-operator"
    webhook_port, liveness_port = free_port(), free_port()
    helm = Helm(dev_cluster, release_namespace)
    values = [
        "crds.enabled=false",  # the session's CRDs are there already, owned by no release
        f"watchNamespaces={{{namespace}}}",
        f"webhook.url=https://127.0.0.1:{webhook_port}",
        f"webhook.port={webhook_port}",
        f"livenessPort={liveness_port}",
        "metrics.enabled=false",
        f"mlflow.trackingUri={mlflow_server.url}",
        "resyncSeconds=3",
        # One replica, replaced by Recreate: pods share the host's ports on this node, so a second
        # replica, or a new pod beside the old in a rolling update, could not listen.
        "replicaCount=1",
        "leaderElection.enabled=false",
        # Test projects keep Feast's files on hostPath volumes: an administrator's choice.
        "policy.runnerVolumeTypes={configMap,secret,emptyDir,persistentVolumeClaim,hostPath}",
    ]
    sets = [arg for value in values for arg in ("--set", value)]
    core = client.CoreV1Api(api)
    with operators_paused(api):
        try:
            installed = helm("install", release, str(CHART), "--create-namespace", "--wait", "--timeout", "4m", *sets)
            assert f"watching {namespace}." in installed.stdout and "helm test" in installed.stdout  # NOTES.txt
            pod = running_pod(core, release_namespace, release)
            assert pod.spec.service_account_name == fullname
            wait_until(lambda: healthy(liveness_port), 60, "the operator pod's /healthz")

            exercise(api, namespace, tmp_path)
            assert_nothing_refused(pod_log(dev_cluster, pod))

            tested = helm("test", release, "--timeout", "3m")
            assert "Phase:          Succeeded" in tested.stdout, tested.stdout
            # The test pod is deleted once it succeeded; the local node keeps its output.
            outputs = (dev_cluster.directory / "node" / "pods").glob(f"{release_namespace}_{fullname}-test_*/test.log")
            assert "webhook: ok" in "".join(path.read_text() for path in outputs)
            assert_nothing_refused(pod_log(dev_cluster, pod))  # answering the test needed nothing it lacks

            # A changed value rolls the operator (Recreate: never two at once), which carries on.
            helm(
                "upgrade", release, str(CHART), "--reuse-values", "--set", "logJson=false", "--wait", "--timeout", "4m"
            )
            upgraded = running_pod(core, release_namespace, release)
            assert upgraded.metadata.uid != pod.metadata.uid
            assert "--log-json" not in upgraded.spec.containers[0].args
            wait_until(lambda: healthy(liveness_port), 60, "the upgraded operator's /healthz")

            uninstall_leaves_nothing(helm, api, release, namespace)
        finally:
            helm("uninstall", release, "--ignore-not-found", "--wait", check=False)
            core.delete_namespace(release_namespace)
