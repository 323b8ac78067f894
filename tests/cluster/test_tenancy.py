"""The tenant boundary as users meet it: real users with limited RBAC, the real API server, the operator's webhook."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from feast_lineage.devcluster.cluster import DevCluster
from tests.cluster.projects import Projects, project_manifest
from tests.cluster.test_materialization import Runs
from tests.cluster.users import grant, user_api
from tests.cluster_helpers import wait_until, without_validation
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.cluster

GROUP, VERSION = "featurelineage.io", "v1alpha1"
AUTHOR_RESOURCES = {
    "apiGroups": [GROUP],
    "resources": ["featurestoreprojects", "materializationjobs"],
    "verbs": ["create", "get", "list", "update", "patch"],
}
CREATE_PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}
READ_SHARED_SECRET = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["shared"]}


@pytest.fixture
def users(
    api: client.ApiClient, dev_cluster: DevCluster, namespace: str, operator: ChartOperator, tmp_path: Path
) -> dict[str, client.ApiClient]:
    """alice may author projects, create pods and read Secret "shared" (not "hidden");
    bob may author projects but not create pods."""
    core = client.CoreV1Api(api)
    for secret in ("shared", "hidden"):
        core.create_namespaced_secret(namespace, {"metadata": {"name": secret}, "stringData": {"url": "sqlite://x"}})
    grant(api, namespace, "alice", [AUTHOR_RESOURCES, CREATE_PODS, READ_SHARED_SECRET])
    grant(api, namespace, "bob", [AUTHOR_RESOURCES])
    return {
        "alice": user_api(dev_cluster, "alice", ("data-team",), tmp_path / "users"),
        "bob": user_api(dev_cluster, "bob", ("data-team",), tmp_path / "users"),
    }


def _manifest(**spec: Any) -> dict[str, Any]:
    manifest = project_manifest("drivers", Path("/tmp/unused"), {"configMap": {"name": "repo"}})
    manifest["spec"]["runner"] = {}
    for key, value in spec.items():
        manifest["spec"][key] = copy.deepcopy(value)
    return manifest


def _create_as(user_api_client: client.ApiClient, namespace: str, manifest: dict[str, Any]) -> ApiException | None:
    plural = "featurestoreprojects" if manifest["kind"] == "FeatureStoreProject" else "materializationjobs"
    try:
        client.CustomObjectsApi(user_api_client).create_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, manifest
        )
    except ApiException as error:
        return error
    return None


def _message(error: ApiException) -> str:
    return str(json.loads(error.body)["message"])


def _secret_env(secret: str) -> dict[str, Any]:
    return {
        "registry": {"path": "/feast-data/registry.db"},
        "onlineStore": {"type": "sqlite", "settings": {"path": "${DB}"}},
        "secretEnv": [{"name": "DB", "secretKeyRef": {"name": secret, "key": "url"}}],
    }


@pytest.mark.parametrize(
    ("spec", "what"),
    [
        ({"featureStore": _secret_env("hidden")}, "spec.featureStore.secretEnv DB"),
        ({"repo": {"git": {"url": "https://git.example/r.git", "secretRef": {"name": "hidden"}}}}, "git.secretRef"),
        ({"mlflow": {"credentials": {"secretName": "hidden", "tokenKey": "url"}}}, "spec.mlflow.credentials"),
    ],
)
def test_a_project_may_not_reference_a_secret_its_author_cannot_read(
    users: dict[str, client.ApiClient], namespace: str, spec: dict[str, Any], what: str
) -> None:
    denied = _create_as(users["alice"], namespace, _manifest(**spec))
    assert denied is not None and denied.status == 403, denied
    assert f'user "alice" may not get secrets "hidden" in namespace {namespace}' in _message(denied)
    assert what in _message(denied)


def test_an_author_with_the_rights_creates_the_same_project(
    api: client.ApiClient, users: dict[str, client.ApiClient], namespace: str
) -> None:
    assert _create_as(users["alice"], namespace, _manifest(featureStore=_secret_env("shared"))) is None
    assert Projects(api, namespace).get("drivers")["spec"]["featureStore"]["secretEnv"][0]["name"] == "DB"


def test_an_author_who_may_not_create_pods_cannot_create_projects_or_runs(
    users: dict[str, client.ApiClient], namespace: str
) -> None:
    denied = _create_as(users["bob"], namespace, _manifest())
    assert denied is not None and denied.status == 403
    assert f'user "bob" may not create pods in namespace {namespace}' in _message(denied)
    run = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MaterializationJob",
        "metadata": {"name": "run"},
        "spec": {"projectRef": {"name": "drivers"}},
    }
    denied_run = _create_as(users["bob"], namespace, run)
    assert denied_run is not None and 'user "bob" may not create pods' in _message(denied_run)
    assert _create_as(users["alice"], namespace, run) is None


@pytest.mark.parametrize(
    ("runner", "expected"),
    [
        ({"serviceAccountName": "deployer"}, "serviceAccountName 'deployer' is not allowed"),
        ({"volumes": [{"name": "n", "nfs": {"server": "nfs.example", "path": "/"}}]}, "volume type nfs"),
        ({"tolerations": [{"operator": "Exists"}]}, "tolerations are not allowed"),
        ({"env": [{"name": "PYTHONPATH", "value": "/tmp/evil"}]}, "PYTHONPATH: the name is reserved"),
    ],
)
def test_what_the_administrator_did_not_allow_is_refused(
    users: dict[str, client.ApiClient], namespace: str, runner: dict[str, Any], expected: str
) -> None:
    denied = _create_as(users["alice"], namespace, _manifest(runner=runner))
    assert denied is not None and denied.status == 403
    assert expected in _message(denied)


def test_option_like_revisions_are_refused(users: dict[str, client.ApiClient], namespace: str) -> None:
    repo = {"git": {"url": "https://git.example/r.git", "revision": "--upload-pack=touch /tmp/owned"}}
    denied = _create_as(users["alice"], namespace, _manifest(repo=repo))
    assert denied is not None and "must not start with '-'" in _message(denied)


def test_a_spec_change_is_checked_like_a_create(users: dict[str, client.ApiClient], namespace: str) -> None:
    assert _create_as(users["alice"], namespace, _manifest()) is None
    custom = client.CustomObjectsApi(users["alice"])
    with pytest.raises(ApiException) as denied:
        custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "featurestoreprojects",
            "drivers",
            {"spec": {"featureStore": _secret_env("hidden")}},
        )
    assert 'may not get secrets "hidden"' in _message(denied.value)
    # Labels and annotations ask nothing of the operator: they never reach the webhook.
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "featurestoreprojects", "drivers", {"metadata": {"labels": {"team": "a"}}}
    )


def test_what_gets_past_admission_stalls(api: client.ApiClient, namespace: str, operator: ChartOperator) -> None:
    projects = Projects(api, namespace)
    with without_validation(api):  # as if the webhook were not installed
        projects.create(_manifest(runner={"env": [{"name": "FEAST_LINEAGE_AUDIT_ID", "value": "forged"}]}))
    stalled = projects.wait_condition("drivers", "Stalled", reason="NotAllowed", timeout=60)
    condition = next(c for c in stalled["status"]["conditions"] if c["type"] == "Stalled")
    assert "FEAST_LINEAGE_AUDIT_ID: the name is reserved" in condition["message"]


def test_a_run_cannot_claim_to_come_from_the_schedule(
    api: client.ApiClient, users: dict[str, client.ApiClient], namespace: str
) -> None:
    forged: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MaterializationJob",
        "metadata": {
            "name": "forged",
            "annotations": {"featurelineage.io/scheduled-time": "2026-11-27T03:00:00Z"},
            "labels": {"featurelineage.io/created-by": "schedule"},
        },
        "spec": {"projectRef": {"name": "drivers"}},
    }
    denied = _create_as(users["alice"], namespace, forged)
    assert denied is not None and "set only by the operator's schedule" in _message(denied)
    honest = copy.deepcopy(forged)
    honest["metadata"]["annotations"] = {}
    assert _create_as(users["alice"], namespace, honest) is None
    patch = {"metadata": {"annotations": {"featurelineage.io/scheduled-time": "2026-11-27T03:00:00Z"}}}
    with pytest.raises(ApiException) as later:
        client.CustomObjectsApi(users["alice"]).patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "materializationjobs", "forged", patch
        )
    assert "set only by the operator's schedule" in _message(later.value)


def test_a_configmap_the_project_does_not_own_is_never_overwritten(
    api: client.ApiClient, namespace: str, operator: ChartOperator
) -> None:
    core = client.CoreV1Api(api)
    foreign = {"metadata": {"name": "drivers-runner-config"}, "data": {"feature_store.yaml": "someone else's"}}
    core.create_namespaced_config_map(namespace, foreign)
    projects = Projects(api, namespace)
    projects.create(_manifest())
    stalled = projects.wait_condition("drivers", "Stalled", reason="Conflict", timeout=60)
    condition = next(c for c in stalled["status"]["conditions"] if c["type"] == "Stalled")
    assert (
        'ConfigMap "drivers-runner-config" exists and is not controlled by this FeatureStoreProject'
        in (condition["message"])
    )
    kept = core.read_namespaced_config_map("drivers-runner-config", namespace)
    assert kept.data == {"feature_store.yaml": "someone else's"} and not kept.metadata.owner_references


def test_the_creator_is_who_the_api_server_authenticated(
    api: client.ApiClient,
    dev_cluster: DevCluster,
    users: dict[str, client.ApiClient],
    namespace: str,
    tmp_path: Path,
) -> None:
    run: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MaterializationJob",
        "metadata": {"name": "by-alice", "annotations": {"featurelineage.io/creator": "someone-else"}},
        "spec": {"projectRef": {"name": "drivers"}},
    }
    # A forged creator annotation is replaced at admission, whoever the client says it is.
    assert _create_as(users["alice"], namespace, run) is None
    # A forged field manager changes nothing either: kubectl as carol, claiming to be "argocd-controller".
    grant(api, namespace, "carol", [AUTHOR_RESOURCES, CREATE_PODS])
    user_api(dev_cluster, "carol", ("data-team",), tmp_path / "users")
    carol = tmp_path / "users" / "carol.kubeconfig"
    other = copy.deepcopy(run)
    other["metadata"] = {"name": "by-carol"}
    result = subprocess.run(
        [
            str(dev_cluster.binaries.kubectl),
            f"--kubeconfig={carol}",
            "create",
            "-n",
            namespace,
            "--field-manager=argocd-controller",
            "-f",
            "-",
        ],
        input=json.dumps(other),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    runs = Runs(api, namespace)
    for name, user in (("by-alice", "alice"), ("by-carol", "carol")):

        def recorded(name: str = name) -> dict[str, Any] | None:
            provenance = runs.status(name).get("provenance")
            return dict(provenance) if provenance else None

        provenance = wait_until(recorded, 60, f"provenance of {name}")
        assert (provenance["creator"], provenance["creatorSource"]) == (user, "admission"), provenance
    assert runs.status("by-carol")["provenance"]["manager"] == "argocd-controller", "the manager is self-reported"
    with pytest.raises(ApiException) as changed:
        client.CustomObjectsApi(users["alice"]).patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "materializationjobs",
            "by-alice",
            {"metadata": {"annotations": {"featurelineage.io/creator": "mallory"}}},
        )
    assert "cannot change" in _message(changed.value)
