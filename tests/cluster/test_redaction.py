"""Nothing secret leaves, and nothing a runner forges is believed: the real operator, node, Feast and MLflow.

A canary value sits in every Secret a project uses (a store type, a store setting, Git and MLflow
credentials) and a feature repo prints its environment; the canary is then looked for, plain,
URL-encoded and JSON-escaped, in every place text leaves to: status, Events, the operator's log, the
runner pods' logs and termination messages, and MLflow.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from mlflow.tracking import MlflowClient

from feast_lineage.api import FEATURE_STORE_PROJECT_PLURAL, GROUP, VERSION
from feast_lineage.devcluster.cluster import DevCluster
from feast_lineage.devcluster.mlflow_server import MlflowServer
from tests.canary import leaks, new_canary
from tests.cluster.projects import Projects, git, git_repo, project_manifest
from tests.cluster_helpers import wait_until
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.cluster

OPS_EXPERIMENT = "driver_stats-feast-ops"

PRINTS_ITS_ENVIRONMENT = """
import json, logging, os, sys, urllib.parse
print("environment:", dict(os.environ))
print(json.dumps(dict(os.environ)), file=sys.stderr)
os.write(2, ("raw fd: " + urllib.parse.urlencode(dict(os.environ)) + "\\n").encode())
logging.getLogger("repo").warning("logged %s", dict(os.environ))
raise RuntimeError("refusing to run with " + os.environ["STORE_PASSWORD"])
"""

FORGES_ITS_RESULT = """
import atexit, json, os

FORGED = {
    "operation": "apply",
    "ok": True,
    "durationSeconds": 1.0,
    "gitCommit": "f" * 40,
    "mlflow": {"experiment": "forged-experiment", "runId": "0" * 32, "runUrl": "https://forged.example/#/runs/1"},
    "audit": {"i": "forged-audit-id", "x": "forged-experiment", "n": "forged", "s": "FINISHED", "t0": 1, "t1": 2,
              "tg": {"forged": "yes"}},
}


def _forge():
    # After the runner wrote its own result: exit handlers run last.
    path = os.environ.get("FEAST_LINEAGE_RESULT_PATH") or "/dev/termination-log"
    with open(path, "w") as out:
        out.write(json.dumps(FORGED))


atexit.register(_forge)
"""


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }


def _runner_logs(cluster: DevCluster, namespace: str) -> str:
    """Everything every container of the namespace's pods wrote, as the node keeps it (``kubectl logs``
    serves these files; the node's other files hold the pods' specs, environment included)."""
    texts = []
    for directory in (cluster.directory / "node" / "pods").glob(f"{namespace}_*"):
        texts += [path.read_text(errors="replace") for path in directory.glob("*.log")]
    return "\n".join(texts)


def _termination_messages(core: client.CoreV1Api, namespace: str) -> str:
    messages = []
    for pod in core.list_namespaced_pod(namespace).items:
        for status in pod.status.container_statuses or []:
            terminated = status.state.terminated if status.state else None
            if terminated is not None and terminated.message:
                messages.append(terminated.message)
    return "\n".join(messages)


def _mlflow_text(mlflow_url: str, experiment_name: str) -> str:
    """Every tag and param of every run of the experiment."""
    mlflow = MlflowClient(mlflow_url)
    experiment = mlflow.get_experiment_by_name(experiment_name)
    if experiment is None:
        return ""
    found: list[dict[str, Any]] = []
    token = None
    while True:
        page = mlflow.search_runs([experiment.experiment_id], max_results=500, page_token=token)
        found += [{"tags": r.data.tags, "params": r.data.params, "name": r.info.run_name} for r in page]
        token = page.token
        if not token:
            return json.dumps(found)


def _failed_apply_with(projects: Projects, words: str) -> dict[str, Any]:
    """The project's status once an apply failed with an error that says ``words``."""

    def failed() -> dict[str, Any] | None:
        status = projects.get("drivers").get("status") or {}
        last = status.get("lastApply") or {}
        return status if last.get("outcome") == "Failed" and words in (last.get("error") or "") else None

    return wait_until(failed, 300, f"an apply to fail saying {words!r}")


def _events(core: client.CoreV1Api, namespace: str) -> list[tuple[str, str]]:
    return [(event.reason, event.message) for event in core.list_namespaced_event(namespace).items]


def _assert_nothing_leaked(
    canary: str,
    *,
    core: client.CoreV1Api,
    projects: Projects,
    namespace: str,
    operator: ChartOperator,
    cluster: DevCluster,
    mlflow_url: str,
) -> None:
    places = {
        "status": json.dumps(projects.get("drivers").get("status")),
        "events": json.dumps(_events(core, namespace)),
        "operator log": operator.log(),
        "runner logs": _runner_logs(cluster, namespace),
        "termination messages": _termination_messages(core, namespace),
        "mlflow": _mlflow_text(mlflow_url, OPS_EXPERIMENT),
    }
    leaked = {place: found for place, text in places.items() if (found := leaks(text, canary))}
    assert leaked == {}, leaked


@pytest.mark.timeout(1800)  # four applies, each a Feast run on a shared machine
def test_a_canary_secret_never_leaves_through_any_exit(
    api: client.ApiClient,
    namespace: str,
    operator: ChartOperator,
    dev_cluster: DevCluster,
    mlflow_server: MlflowServer,
    git_server: str,
    tmp_path: Path,
) -> None:
    canary = new_canary()
    core = client.CoreV1Api(api)
    projects = Projects(api, namespace)
    core.create_namespaced_secret(namespace, _secret("store", {"type": canary, "password": canary}))
    core.create_namespaced_secret(namespace, _secret("git-auth", {"username": "reader", "password": canary}))
    core.create_namespaced_secret(namespace, _secret("mlflow-auth", {"token": canary}))
    _, work = git_repo(tmp_path)
    # From the start, so each step below is one apply: steps 1 and 2 fail before the repo is imported.
    (work / "features" / "zz_prints_env.py").write_text(PRINTS_ITS_ENVIRONMENT)
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "print the environment")
    git(work, "push", "-q", "origin", "main")
    secret_env = [
        {"name": "STORE_TYPE", "secretKeyRef": {"name": "store", "key": "type"}},
        {"name": "STORE_PASSWORD", "secretKeyRef": {"name": "store", "key": "password"}},
    ]
    manifest = project_manifest(
        "drivers",
        tmp_path / "data",
        {
            "git": {
                "url": f"{git_server}/server.git",
                "revision": "main",
                "path": "features",
                "secretRef": {"name": "git-auth"},
            }
        },
        mlflow={
            "logOperations": True,
            "requestTimeoutSeconds": 30,
            "maxRetries": 1,
            "credentials": {"secretName": "mlflow-auth", "tokenKey": "token"},
        },
    )
    store = manifest["spec"]["featureStore"]
    store["secretEnv"] = secret_env
    # 1. The store type comes from a Secret: Feast names the type it does not know, which is the secret.
    store["onlineStore"] = {"type": "${STORE_TYPE}", "settings": {"path": "/feast-data/online_store.db"}}
    projects.create(manifest)
    _failed_apply_with(projects, "unknown online store type '***'")
    check = dict(
        core=core,
        projects=projects,
        namespace=namespace,
        operator=operator,
        cluster=dev_cluster,
        mlflow_url=mlflow_server.url,
    )
    _assert_nothing_leaked(canary, **check)

    # 2. The secret in a store setting Feast does not know: its validation error quotes the value.
    projects.patch_spec(
        "drivers",
        {
            "featureStore": {
                "onlineStore": {
                    "type": "sqlite",
                    "settings": {"path": "/feast-data/online_store.db", "password": "${STORE_PASSWORD}"},
                }
            }
        },
    )
    _failed_apply_with(projects, "password")
    _assert_nothing_leaked(canary, **check)

    # 3. A valid store: the repo's code runs, prints its environment every way it can, and fails.
    # (A merge patch: null removes the setting.)
    projects.patch_spec("drivers", {"featureStore": {"onlineStore": {"settings": {"password": None}}}})
    _failed_apply_with(projects, "refusing to run with ***")
    assert "environment:" in _runner_logs(dev_cluster, namespace)  # it printed: redacted, not silenced
    _assert_nothing_leaked(canary, **check)

    # As an older operator might have left it: the value in a field another writer owns.
    def left_over() -> bool | None:
        body = projects.get("drivers")
        body["status"]["schedule"] = {"message": f"left over: {canary}"}
        try:
            projects.custom.replace_namespaced_custom_object_status(
                GROUP, VERSION, namespace, FEATURE_STORE_PROJECT_PLURAL, "drivers", body
            )
        except ApiException as error:
            if error.status != 409:  # the operator wrote meanwhile: read again
                raise
            return None
        return True

    wait_until(left_over, 60, "a status with the value left over")

    # 4. Fixed (a resync finds the new commit): the apply succeeds, and nothing of the failures survives.
    git(work, "rm", "-q", "features/zz_prints_env.py")
    git(work, "commit", "-q", "-m", "stop printing")
    git(work, "push", "-q", "origin", "main")
    ready = projects.wait_condition("drivers", "Ready", timeout=300)
    assert ready["status"]["lastApply"]["outcome"] == "Succeeded"
    assert ready["status"]["schedule"]["message"] == "left over: ***"
    _assert_nothing_leaked(canary, **check)


@pytest.mark.timeout(900)
def test_a_forged_termination_message_reaches_neither_status_nor_mlflow(
    api: client.ApiClient,
    namespace: str,
    operator: ChartOperator,
    mlflow_server: MlflowServer,
    tmp_path: Path,
) -> None:
    from tests.cluster.projects import example_files, repo_configmap

    core = client.CoreV1Api(api)
    projects = Projects(api, namespace)
    files = {**example_files(), "zz_forges_result.py": FORGES_ITS_RESULT.encode()}
    core.create_namespaced_config_map(namespace, repo_configmap("driver-repo", files))
    projects.create(project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "driver-repo"}}))

    def reported() -> list[tuple[str, str]] | None:
        untrusted = [event for event in _events(core, namespace) if event[0] == "UntrustedResult"]
        return untrusted or None

    [(_, message)] = wait_until(reported, 300, "a Warning Event about the forged result")
    assert "forged-experiment" in message and "forged-audit-id" in message and "f" * 40 in message
    ready = projects.wait_condition("drivers", "Ready", timeout=60)
    status = ready["status"]
    last = status["lastApply"]
    # Nothing forged was copied: a ConfigMap repo has no commit, the run and the record were not the Job's.
    assert last["outcome"] == "Succeeded" and "commit" not in last and "mlflow" not in last, last
    assert "forged" not in json.dumps(status)
    mlflow = MlflowClient(mlflow_server.url)
    assert mlflow.get_experiment_by_name("forged-experiment") is None
    experiment = mlflow.get_experiment_by_name(OPS_EXPERIMENT)
    assert experiment is not None
    runs = mlflow.search_runs([experiment.experiment_id], filter_string="tags.forged = 'yes'")
    assert list(runs) == []
    # The runner's own record of the apply is there, under the audit id the operator gave it.
    [run] = mlflow.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`featurelineage.audit_id` = '{last['auditId']}'"
    )
    assert run.data.tags["k8s.namespace"] == namespace
