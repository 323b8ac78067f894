"""Training pods: the real API server calls the operator's webhook; pods really run Feast and MLflow."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import ssl
import textwrap
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from mlflow.tracking import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from feast_lineage import certificates
from feast_lineage.devcluster.mlflow_server import MlflowServer
from feast_lineage.domain import labels
from tests.cluster.projects import EXAMPLE_REPO, Projects, example_files, project_manifest, repo_configmap
from tests.cluster_helpers import wait_until
from tests.conftest import REPO_ROOT, Kubectl
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.cluster

TRAINING = REPO_ROOT / "examples" / "driver-stats" / "training"
DATA_ENV = {"name": "DRIVER_STATS_DATA", "value": "/feast-data/driver_stats.parquet"}


@pytest.fixture
def project(api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path) -> Path:
    """The example project with its data on the shared volume, applied and backfilled."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(EXAMPLE_REPO / "driver_stats.parquet", data / "driver_stats.parquet")
    client.CoreV1Api(api).create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
    manifest = project_manifest("drivers", data, {"configMap": {"name": "repo"}})
    manifest["spec"]["runner"]["env"] = [DATA_ENV]
    manifest["spec"]["injection"] = {"volumes": ["feast-data"]}
    projects = Projects(api, namespace)
    projects.create(manifest)
    projects.wait_condition("drivers", "Ready", timeout=180)
    custom = client.CustomObjectsApi(api)
    run = {
        "apiVersion": "featurelineage.io/v1alpha1",
        "kind": "MaterializationJob",
        "metadata": {"name": "backfill"},
        "spec": {
            "projectRef": {"name": "drivers"},
            "mode": "Range",
            "startTime": "2026-11-02T00:00:00Z",
            "endTime": "2026-11-09T00:00:00Z",
        },
    }
    custom.create_namespaced_custom_object("featurelineage.io", "v1alpha1", namespace, "materializationjobs", run)

    def backfilled() -> bool:
        obj = custom.get_namespaced_custom_object(
            "featurelineage.io", "v1alpha1", namespace, "materializationjobs", "backfill"
        )
        phase = (obj.get("status") or {}).get("phase")
        assert phase != "Failed", obj["status"]
        return phase == "Succeeded"

    wait_until(backfilled, 180, "backfill Succeeded")
    return data


def _training_job(name: str, script: str, project: str = "drivers", **env: str) -> dict[str, Any]:
    job = yaml.safe_load((TRAINING / "job.yaml").read_text())
    job["metadata"]["name"] = name
    job["spec"]["template"]["metadata"]["labels"][labels.LABEL_INJECT] = project
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["python", f"/app/{script}"]
    container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    job["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] = f"{name}-code"
    return dict(job)


def _run_job(api: client.ApiClient, namespace: str, job: dict[str, Any], files: dict[str, str]) -> dict[str, Any]:
    """Create the code ConfigMap and the Job; wait until it finishes; return its pod."""
    name = job["metadata"]["name"]
    client.CoreV1Api(api).create_namespaced_config_map(namespace, {"metadata": {"name": f"{name}-code"}, "data": files})
    client.BatchV1Api(api).create_namespaced_job(namespace, job)

    def finished() -> dict[str, Any] | None:
        found = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
        if found and found[0].status.phase in ("Succeeded", "Failed"):
            return dict(client.ApiClient().sanitize_for_serialization(found[0]))
        return None

    pod: dict[str, Any] = wait_until(finished, 240, f"Job {name} to finish")
    return pod


def _runs_of_pod(tracking_uri: str, pod_uid: str) -> list[Any]:
    mlflow = MlflowClient(tracking_uri=tracking_uri)
    experiments = [e.experiment_id for e in mlflow.search_experiments()]
    return list(mlflow.search_runs(experiments, filter_string=f"tags.`k8s.pod_uid` = '{pod_uid}'"))


def test_training_example_records_features_model_and_provenance(
    api: client.ApiClient, namespace: str, project: Path, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    model = f"driver-activity-{uuid.uuid4().hex[:6]}"
    job = _training_job("train", "train.py", MODEL_NAME=model)
    pod = _run_job(api, namespace, job, {"train.py": (TRAINING / "train.py").read_text()})
    assert pod["status"]["phase"] == "Succeeded", pod["status"]
    env = {e["name"] for e in pod["spec"]["containers"][0]["env"]}
    assert {"MLFLOW_TRACKING_URI", "FEAST_FS_YAML_FILE_PATH", "MLFLOW_RUN_CONTEXT"} <= env

    (run,) = _runs_of_pod(mlflow_server.url, pod["metadata"]["uid"])
    tags = run.data.tags
    assert run.info.status == "FINISHED"
    assert tags["feast.feature_service"] == "driver_activity_v1"
    assert tags["feast.retrieval_type"] == "historical"
    assert set(tags["feast.feature_views"].split(",")) == {"driver_hourly_stats", "driver_daily_trips"}
    assert "driver_hourly_stats:conv_rate" in tags["feast.feature_refs"]
    assert tags["k8s.namespace"] == namespace
    assert tags["k8s.pod"] == pod["metadata"]["name"]
    assert tags["k8s.job"] == "train"
    assert tags["featurelineage.project"] == "drivers"
    status = Projects(api, namespace).get("drivers")["status"]
    assert tags["featurelineage.revision"] == status["lastApply"]["revision"]
    assert tags["featurelineage.apply_run_id"] == status["lastApply"]["mlflow"]["runId"]
    mlflow = MlflowClient(tracking_uri=mlflow_server.url)
    assert "feast_features.json" in [a.path for a in mlflow.list_artifacts(run.info.run_id)]

    (version,) = mlflow.search_model_versions(f"name='{model}'")
    assert version.tags["feast.feature_service"] == "driver_activity_v1"
    assert version.run_id == run.info.run_id

    # A reader outside the cluster resolves the model back to its feature service with Feast itself.
    from feast import FeatureStore

    config = tmp_path / "feature_store.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "project": "driver_stats",
                "provider": "local",
                "registry": str(project / "registry.db"),
                "entity_key_serialization_version": 3,
                "mlflow": {"enabled": True, "tracking_uri": mlflow_server.url},
            }
        )
    )
    store = FeatureStore(fs_yaml_file=config)
    assert store.mlflow is not None
    assert store.mlflow.resolve_features(f"models:/{model}/{version.version}") == "driver_activity_v1"


FAILING = """
    import os, pathlib
    from feast import FeatureStore

    store = FeatureStore(fs_yaml_file=pathlib.Path(os.environ["FEAST_FS_YAML_FILE_PATH"]))
    with store.mlflow.start_run(run_name="doomed"):
        raise RuntimeError("the model did not converge")
"""

KILLED = """
    import os, pathlib, signal
    import mlflow
    from feast import FeatureStore

    store = FeatureStore(fs_yaml_file=pathlib.Path(os.environ["FEAST_FS_YAML_FILE_PATH"]))
    with store.mlflow.start_run(run_name="killed"):
        mlflow.set_tag("reached", "inside the run")
        os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_failing_training_script_leaves_a_failed_run(
    api: client.ApiClient, namespace: str, project: Path, mlflow_server: MlflowServer
) -> None:
    pod = _run_job(api, namespace, _training_job("fails", "fail.py"), {"fail.py": textwrap.dedent(FAILING)})
    assert pod["status"]["phase"] == "Failed"
    (run,) = _runs_of_pod(mlflow_server.url, pod["metadata"]["uid"])
    assert run.info.status == "FAILED"
    assert "featurelineage.ended_by" not in run.data.tags, "MLflow itself ended this one"


def test_a_killed_training_pod_has_its_run_ended_by_the_operator(
    api: client.ApiClient, namespace: str, project: Path, mlflow_server: MlflowServer
) -> None:
    pod = _run_job(api, namespace, _training_job("killed", "kill.py"), {"kill.py": textwrap.dedent(KILLED)})
    assert pod["status"]["phase"] == "Failed"

    def ended() -> Any:
        runs = _runs_of_pod(mlflow_server.url, pod["metadata"]["uid"])
        return runs[0] if runs and runs[0].info.status != "RUNNING" else None

    run = wait_until(ended, 60, "the killed pod's run to be ended")
    assert run.data.tags["reached"] == "inside the run", "the process was killed inside its run"
    assert run.info.status == "FAILED"
    assert run.data.tags["featurelineage.ended_by"].startswith("operator: pod Failed")


# -- admission behaviour, checked with server-side dry runs and real pods --------------------------------


def _pod(name: str, label: str | None, env: list[dict[str, str]] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if label is not None:
        metadata["labels"] = {labels.LABEL_INJECT: label}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "trainer:1", "command": ["true"], "env": env or []}],
        },
    }


def _dry_run(kubectl: Kubectl, namespace: str, pod: dict[str, Any]) -> tuple[dict[str, Any], str]:
    result = kubectl("create", "-n", namespace, "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(pod))
    return json.loads(result.stdout), result.stderr


@pytest.fixture
def plain_project(api: client.ApiClient, namespace: str, operator: ChartOperator) -> str:
    """A project the webhook knows; it need not be applied for admission."""
    manifest = project_manifest("drivers", Path("/tmp/unused"), {"configMap": {"name": "repo"}})
    Projects(api, namespace).create(manifest)
    wait_until(lambda: Projects(api, namespace).get("drivers").get("status"), 60, "the operator to see the project")
    return namespace


def _env(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod["spec"]["containers"][0].get("env") or [])


def test_the_pods_own_settings_win_and_unlabelled_pods_are_untouched(kubectl: Kubectl, plain_project: str) -> None:
    own = [{"name": "MLFLOW_TRACKING_URI", "value": "http://mine:5000"}]
    injected, _ = _dry_run(kubectl, plain_project, _pod("own", "drivers", own))
    assert [e for e in _env(injected) if e["name"] == "MLFLOW_TRACKING_URI"] == own
    assert any(e["name"] == "FEAST_FS_YAML_FILE_PATH" for e in _env(injected))
    untouched, _ = _dry_run(kubectl, plain_project, _pod("plain", None))
    assert _env(untouched) == [] and labels.ANNOTATION_INJECTED not in (untouched["metadata"].get("annotations") or {})


def _events(api: client.ApiClient, namespace: str, pod: str) -> list[tuple[str, str]]:
    items = client.CoreV1Api(api).list_namespaced_event(namespace, field_selector=f"involvedObject.name={pod}").items
    return [(e.reason, e.message) for e in items]


@pytest.mark.parametrize(
    ("label", "env", "why"),
    [
        ("missing", None, 'no FeatureStoreProject "missing" in namespace'),
        ("drivers", [{"name": "FEAST_LINEAGE_SECRET_X", "value": "mine"}], "FEAST_LINEAGE_SECRET_X"),
    ],
)
def test_pods_that_cannot_be_injected_are_admitted_unchanged_and_say_why(
    api: client.ApiClient, kubectl: Kubectl, plain_project: str, label: str, env: list[dict[str, str]] | None, why: str
) -> None:
    dry, warnings = _dry_run(kubectl, plain_project, _pod("p", label, env))
    assert labels.ANNOTATION_INJECTED not in (dry["metadata"].get("annotations") or {})
    assert why in warnings and "not injected" in warnings
    kubectl("create", "-n", plain_project, "-f", "-", input=json.dumps(_pod("p", label, env)))
    wait_until(
        lambda: any(r == "InjectionSkipped" and why in m for r, m in _events(api, plain_project, "p")),
        30,
        "an InjectionSkipped Event on the pod",
    )


def test_a_project_of_another_namespace_is_never_used(
    api: client.ApiClient, kubectl: Kubectl, plain_project: str
) -> None:
    other = f"other-{uuid.uuid4().hex[:5]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": other}})
    try:
        dry, warnings = _dry_run(kubectl, other, _pod("p", "drivers"))
        assert _env(dry) == [] and f'no FeatureStoreProject "drivers" in namespace {other}' in warnings
    finally:
        client.CoreV1Api(api).delete_namespace(other)


class _Annotator(BaseHTTPRequestHandler):
    """A second mutating webhook: adds one annotation to every pod it sees."""

    PATCH = [{"op": "add", "path": "/metadata/annotations/test.featurelineage.io~1mutated", "value": "yes"}]

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        annotations = review["request"]["object"]["metadata"].get("annotations")
        patch = (
            self.PATCH if annotations else [{"op": "add", "path": "/metadata/annotations", "value": {}}, *self.PATCH]
        )
        body = json.dumps(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {
                    "uid": review["request"]["uid"],
                    "allowed": True,
                    "patchType": "JSONPatch",
                    "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
                },
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def annotating_webhook(api: client.ApiClient, name: str, directory: Path) -> Iterator[None]:
    ca = certificates.make_ca("second-mutator-ca")
    certificates.issue(ca, "127.0.0.1", ip_addresses=("127.0.0.1",), server=True).write(
        directory / "tls.crt", directory / "tls.key"
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Annotator)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "tls.crt", directory / "tls.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    admission = client.AdmissionregistrationV1Api(api)
    url = f"https://127.0.0.1:{server.server_address[1]}/mutate"
    admission.create_mutating_webhook_configuration(
        {
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": "second.test.featurelineage.io",
                    "clientConfig": {"url": url, "caBundle": base64.b64encode(ca.cert_pem).decode()},
                    "rules": [
                        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}
                    ],
                    "objectSelector": {"matchExpressions": [{"key": labels.LABEL_INJECT, "operator": "Exists"}]},
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "failurePolicy": "Fail",
                    "timeoutSeconds": 5,
                }
            ],
        }
    )
    try:
        yield
    finally:
        admission.delete_mutating_webhook_configuration(name)
        server.shutdown()


def test_a_reinvoked_pod_is_unchanged_the_second_time(
    api: client.ApiClient, kubectl: Kubectl, plain_project: str, operator: ChartOperator, tmp_path: Path
) -> None:
    def already_injected() -> float:
        for line in operator.metrics().splitlines():
            if line.startswith('feast_lineage_injection_total{outcome="already-injected"}'):
                return float(line.split()[-1])
        return 0.0

    before = already_injected()
    # A second mutating webhook, called after ours, changes the pod: the API server calls ours again.
    with annotating_webhook(api, "zz-second-mutator", tmp_path):
        pod, _ = _dry_run(kubectl, plain_project, _pod("twice", "drivers"))
    assert pod["metadata"]["annotations"]["test.featurelineage.io/mutated"] == "yes"
    names = [e["name"] for e in _env(pod)]
    assert names.count("FEAST_FS_YAML_FILE_PATH") == 1 and len(names) == len(set(names))
    assert [v["name"] for v in pod["spec"]["volumes"]].count("feast-lineage-client") == 1
    assert already_injected() == before + 1, "the webhook was reinvoked and changed nothing"


def test_with_the_webhook_down_pods_start_and_each_miss_is_reported(
    api: client.ApiClient, kubectl: Kubectl, plain_project: str, operator: ChartOperator
) -> None:
    admission = client.AdmissionregistrationV1Api(api)
    configuration = admission.read_mutating_webhook_configuration("feast-lineage-injection")
    url = configuration.webhooks[0].client_config.url
    closed = f"https://127.0.0.1:{_closed_port()}/mutate-pods"
    patch = [{"op": "replace", "path": "/webhooks/0/clientConfig/url", "value": closed}]
    admission.patch_mutating_webhook_configuration("feast-lineage-injection", patch)
    try:
        kubectl("create", "-n", plain_project, "-f", "-", input=json.dumps(_pod("missed-1", "drivers")))
        kubectl("create", "-n", plain_project, "-f", "-", input=json.dumps(_pod("missed-2", "drivers")))
    finally:
        restore = [{"op": "replace", "path": "/webhooks/0/clientConfig/url", "value": url}]
        admission.patch_mutating_webhook_configuration("feast-lineage-injection", restore)

    def reported() -> dict[str, Any] | None:
        injection = (Projects(api, plain_project).get("drivers").get("status") or {}).get("injection") or {}
        return injection if injection.get("missedPods") == 2 else None

    injection = wait_until(reported, 30, "status.injection.missedPods == 2")
    assert sorted(injection["missedPodNames"]) == ["missed-1", "missed-2"]
    for pod in ("missed-1", "missed-2"):
        assert any(reason == "InjectionMissed" for reason, _ in _events(api, plain_project, pod))
    wanted = {"namespace": plain_project, "resource": "drivers", "feast_project": "driver_stats"}
    samples = [
        sample.value
        for family in text_string_to_metric_families(operator.metrics())
        for sample in family.samples
        if sample.name == "feast_lineage_injection_missed_pods" and sample.labels == wanted
    ]
    assert samples == [2.0]
    client.CoreV1Api(api).delete_namespaced_pod("missed-1", plain_project, grace_period_seconds=0)
    wait_until(lambda: reported_count(api, plain_project) == 1, 30, "the count to follow the pods that exist")


def reported_count(api: client.ApiClient, namespace: str) -> int:
    injection = (Projects(api, namespace).get("drivers").get("status") or {}).get("injection") or {}
    return int(injection.get("missedPods", -1))


def _closed_port() -> int:
    from feast_lineage.devcluster.processes import free_port

    return free_port()


def test_pod_security_baseline_keeps_hostpath_out_and_says_so(
    api: client.ApiClient, kubectl: Kubectl, namespace: str, operator: ChartOperator
) -> None:
    core = client.CoreV1Api(api)
    core.patch_namespace(namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}})
    manifest = project_manifest("drivers", Path("/tmp/unused"), {"configMap": {"name": "repo"}})
    manifest["spec"]["injection"] = {"volumes": ["feast-data"]}
    Projects(api, namespace).create(manifest)
    wait_until(lambda: Projects(api, namespace).get("drivers").get("status"), 60, "the operator to see the project")
    # Admitted by the baseline policy, which would reject a hostPath volume.
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(_pod("restricted-ns", "drivers")))
    created = core.read_namespaced_pod("restricted-ns", namespace)
    assert created.metadata.annotations[labels.ANNOTATION_INJECTED]
    volumes = {v.name: v for v in created.spec.volumes}
    assert "feast-lineage-client" in volumes and "feast-lineage-feast-data" not in volumes
    assert "hostPath" in created.metadata.annotations[labels.ANNOTATION_INJECTION_WARNINGS]
    wait_until(
        lambda: any(
            r == "InjectionIncomplete" and "hostPath" in m for r, m in _events(api, namespace, "restricted-ns")
        ),
        30,
        "an InjectionIncomplete Event naming the hostPath volume",
    )


def test_pods_made_by_a_deployment_are_injected_with_their_owner(api: client.ApiClient, plain_project: str) -> None:
    template = _pod("unused", "drivers")
    template["spec"]["restartPolicy"] = "Always"
    template["spec"]["containers"][0]["command"] = ["sleep", "600"]
    deployment = {
        "metadata": {"name": "scorer"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "scorer"}},
            "template": {
                "metadata": {
                    "labels": {"app": "scorer", labels.LABEL_INJECT: "drivers"},
                    "annotations": {labels.ANNOTATION_ROLE: "serving"},
                },
                "spec": template["spec"],
            },
        },
    }
    client.AppsV1Api(api).create_namespaced_deployment(plain_project, deployment)

    def pod() -> Any:
        items = client.CoreV1Api(api).list_namespaced_pod(plain_project, label_selector="app=scorer").items
        return items[0] if items else None

    created = wait_until(pod, 60, "the Deployment's pod")
    assert created.metadata.annotations[labels.ANNOTATION_INJECTED_PROJECT] == "drivers"
    env = {e.name: e.value for e in created.spec.containers[0].env}
    assert env["FEAST_FS_YAML_FILE_PATH"] == "/etc/feast/feature_store.no-autolog.yaml"
    context = json.loads(env["MLFLOW_RUN_CONTEXT"])
    assert context["k8s.owner_kind"] == "ReplicaSet" and context["k8s.owner_name"].startswith("scorer-")
    assert context["featurelineage.role"] == "serving"
    client.AppsV1Api(api).delete_namespaced_deployment("scorer", plain_project)
