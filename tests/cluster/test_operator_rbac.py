"""The operator with nothing but the chart's RBAC, both modes: installed by the chart (`helm install`),
its pod runs with a token of the chart's ServiceAccount. Cluster-wide is the session's operator;
namespaced is a release of its own (on the host's network, as the session's).

It applies the example project, runs a MaterializationJob, makes its webhook certificate and sets the
caBundle, injects a labelled pod and records Events - each a permission of the chart's - and its log
shows no refusal. In namespaced mode it acts in its listed namespaces only, and is refused elsewhere.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from feast_lineage.api import FEATURE_STORE_PROJECT_KIND, MATERIALIZATION_JOB_PLURAL
from feast_lineage.devcluster.cluster import DevCluster
from feast_lineage.devcluster.mlflow_server import MlflowServer
from feast_lineage.domain.labels import ANNOTATION_CREATOR
from tests.cluster.operator_checks import GROUP, VERSION, assert_nothing_refused, exercise
from tests.cluster.projects import Projects, project_manifest, range_run_manifest
from tests.cluster_helpers import gone, operators_paused, passes, wait_for_project_resyncs, wait_until
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.cluster


@pytest.fixture
def other_namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"unwatched-{uuid.uuid4().hex[:5]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    wait_until(
        lambda: any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items),
        30,
        f"default ServiceAccount in {name}",
    )
    yield name
    core.delete_namespace(name)


def whoami(dev_cluster: DevCluster, kubeconfig: Path) -> str:
    from tests.conftest import Kubectl

    result = Kubectl(dev_cluster.binaries.kubectl, kubeconfig)("auth", "whoami", "-o", "json")
    return str(json.loads(result.stdout)["status"]["userInfo"]["username"])


def assert_certificate_and_ca_bundle(api: client.ApiClient, args: list[str]) -> None:
    """The operator made its webhook certificate and set the caBundle (the Secret and configuration its
    arguments name)."""
    secret_arg = next(a for a in args if a.startswith("--webhook-cert-secret="))
    namespace, name = secret_arg.split("=", 1)[1].split("/")
    secret = client.CoreV1Api(api).read_namespaced_secret(name, namespace)
    assert set(secret.data) == {"ca.crt", "tls.crt", "tls.key"}
    injection = next(
        a.split("=", 1)[1] for a in args if a.startswith("--webhook-configuration=") and a.endswith("-injection")
    )
    configuration = client.AdmissionregistrationV1Api(api).read_mutating_webhook_configuration(injection)
    assert configuration.webhooks[0].client_config.ca_bundle == secret.data["ca.crt"]


def test_cluster_wide_operator_needs_only_the_chart_rbac(
    dev_cluster: DevCluster, api: client.ApiClient, operator: ChartOperator, namespace: str, tmp_path: Path
) -> None:
    """The session's operator is the chart installed cluster-wide: its pod runs as the chart's
    ServiceAccount, and everything it does needs nothing more."""
    started = time.time()
    pod = operator.pod()
    assert pod is not None and pod.spec.service_account_name == operator.deployment
    assert whoami(dev_cluster, operator.kubeconfig) == (
        f"system:serviceaccount:{operator.namespace}:{operator.deployment}"
    )
    exercise(api, namespace, tmp_path)
    assert_certificate_and_ca_bundle(api, operator.args())
    assert_nothing_refused(operator.log(), (namespace,), since=started)


def test_namespaced_operator_acts_in_its_namespaces_only_and_is_refused_elsewhere(
    dev_cluster: DevCluster,
    api: client.ApiClient,
    crds_installed: None,
    mlflow_server: MlflowServer,
    namespace: str,
    other_namespace: str,
    tmp_path: Path,
) -> None:
    suffix = uuid.uuid4().hex[:5]
    rbac = client.RbacAuthorizationV1Api(api)
    with operators_paused(api):
        namespaced = ChartOperator(
            dev_cluster,
            mlflow_server.url,
            tmp_path / "operator",
            release=f"rbac-{suffix}",
            namespace=f"feast-lineage-rbac-{suffix}",
            extra_values=(f"watchNamespaces={{{namespace}}}",),
        )
        try:
            namespaced.install()
            assert f"--namespace={namespace}" in namespaced.args()
            selector = f"app.kubernetes.io/instance={namespaced.release}"
            assert rbac.list_namespaced_role(namespace, label_selector=selector).items
            assert not rbac.list_namespaced_role(other_namespace, label_selector=selector).items
            # A project where it does not watch: never touched (no finalizer, no status).
            Projects(api, other_namespace).create(
                project_manifest("elsewhere", tmp_path / "elsewhere", {"configMap": {"name": "repo"}})
            )
            exercise(api, namespace, tmp_path)
            assert_certificate_and_ca_bundle(api, namespaced.args())
            # It handled the project in its namespace, created after that one, and resyncs it: it never
            # passed over the other.
            wait_for_project_resyncs(namespaced, namespace, "drivers", 2, time.time())
            assert not passes(namespaced.log(), FEATURE_STORE_PROJECT_KIND, other_namespace, "elsewhere", since=0)
            elsewhere = Projects(api, other_namespace).get("elsewhere")
            assert "status" not in elsewhere and not elsewhere["metadata"].get("finalizers")
            # Its admission webhook sees every namespace's creates: a run where it does not watch gets
            # its creator recorded but no finalizer (nothing would take it off), and deletes at once.
            custom = client.CustomObjectsApi(api)
            stray = custom.create_namespaced_custom_object(
                GROUP, VERSION, other_namespace, MATERIALIZATION_JOB_PLURAL, range_run_manifest("stray", "elsewhere")
            )
            assert ANNOTATION_CREATOR in (stray["metadata"].get("annotations") or {})
            assert not stray["metadata"].get("finalizers"), stray["metadata"]
            custom.delete_namespaced_custom_object(GROUP, VERSION, other_namespace, MATERIALIZATION_JOB_PLURAL, "stray")
            read_run = custom.get_namespaced_custom_object
            wait_until(
                lambda: gone(read_run, GROUP, VERSION, other_namespace, MATERIALIZATION_JOB_PLURAL, "stray"),
                30,
                "the stray run gone",
            )
            namespaced.stop()
            assert_nothing_refused(namespaced.log())

            # Its credentials are refused outside its namespaces.
            own = config.new_client_from_config(config_file=str(namespaced.kubeconfig))
            attempts: list[Callable[[], object]] = [
                lambda: client.CustomObjectsApi(own).list_namespaced_custom_object(
                    GROUP, VERSION, other_namespace, "featurestoreprojects"
                ),
                lambda: client.CustomObjectsApi(own).list_cluster_custom_object(GROUP, VERSION, "featurestoreprojects"),
                lambda: client.BatchV1Api(own).create_namespaced_job(other_namespace, _job()),
                lambda: client.CoreV1Api(own).read_namespaced_secret("anything", other_namespace),
                lambda: client.CoreV1Api(own).list_namespaced_pod(other_namespace),
                lambda: client.CoreV1Api(own).read_namespace(other_namespace),
            ]
            for attempt in attempts:
                with pytest.raises(ApiException) as refused:
                    attempt()
                assert refused.value.status == 403, refused.value
            assert client.CoreV1Api(own).read_namespace(namespace).metadata.name == namespace
        finally:
            namespaced.uninstall()


def _job() -> dict[str, Any]:
    return {
        "metadata": {"name": "not-allowed"},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "x", "image": "none", "command": ["true"]}]}
            }
        },
    }
