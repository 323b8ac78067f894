"""`feast-lineage lineage` against real data: the example project applied, backfilled, trained on by
an injected Job, then changed; every answer checked against what MLflow and the cluster hold."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from mlflow.tracking import MlflowClient

from feast_lineage.cli import build_parser
from feast_lineage.devcluster.cluster import DevCluster
from feast_lineage.devcluster.mlflow_server import MlflowServer
from feast_lineage.domain import labels
from feast_lineage.lineage import command
from tests.cluster.projects import EXAMPLE_REPO, Projects, example_files, project_manifest, repo_configmap
from tests.cluster_helpers import wait_until
from tests.conftest import REPO_ROOT
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.cluster

TRAINING = REPO_ROOT / "examples" / "driver-stats" / "training"
GROUP, VERSION = "featurelineage.io", "v1alpha1"
WEEK = ("2026-11-02T00:00:00Z", "2026-11-09T00:00:00Z")


@dataclass
class Story:
    namespace: str
    kubeconfig: Path
    mlflow_url: str
    model: str
    run_id: str
    pod: dict[str, Any]
    first_apply: dict[str, Any]
    second_apply: dict[str, Any]
    backfill: dict[str, Any]
    decoy_model: str


def _custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


@pytest.fixture(scope="module")
def story(
    dev_cluster: DevCluster,
    api: client.ApiClient,
    operator: ChartOperator,
    mlflow_server: MlflowServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Story]:
    """Apply, backfill, train (registering a model), then change a view and apply again."""
    namespace = f"lineage-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": namespace}})
    wait_until(
        lambda: any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(namespace).items),
        30,
        "default ServiceAccount",
    )
    data = tmp_path_factory.mktemp("lineage-data")
    shutil.copy(EXAMPLE_REPO / "driver_stats.parquet", data / "driver_stats.parquet")
    files = example_files()
    core.create_namespaced_config_map(namespace, repo_configmap("repo", files))
    manifest = project_manifest("drivers", data, {"configMap": {"name": "repo"}})
    manifest["spec"]["runner"]["env"] = [{"name": "DRIVER_STATS_DATA", "value": "/feast-data/driver_stats.parquet"}]
    manifest["spec"]["injection"] = {"volumes": ["feast-data"]}
    manifest["spec"]["mlflow"].update(autoLogEntityDf=True, requestTimeoutSeconds=10, maxRetries=1)
    projects = Projects(api, namespace)
    projects.create(manifest)
    projects.wait_condition("drivers", "Ready", timeout=180)

    def recorded(previous: str | None = None) -> dict[str, Any] | None:
        """The last apply once it is Ready and in MLflow (a busy server may take a redelivery)."""
        status = projects.get("drivers").get("status") or {}
        last = status.get("lastApply") or {}
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
        fresh = last.get("auditId") != previous
        return dict(last) if ready and fresh and (last.get("mlflow") or {}).get("runId") else None

    first_apply = wait_until(recorded, 120, "the first apply recorded in MLflow")

    backfill = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MaterializationJob",
        "metadata": {"name": "backfill"},
        "spec": {"projectRef": {"name": "drivers"}, "mode": "Range", "startTime": WEEK[0], "endTime": WEEK[1]},
    }
    _custom(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "materializationjobs", backfill)

    def backfilled() -> dict[str, Any] | None:
        obj = _custom(api).get_namespaced_custom_object(GROUP, VERSION, namespace, "materializationjobs", "backfill")
        phase = (obj.get("status") or {}).get("phase")
        assert phase != "Failed", obj["status"]
        return dict(obj) if phase == "Succeeded" else None

    backfilled_obj = wait_until(backfilled, 180, "backfill Succeeded")

    model = f"lineage-model-{uuid.uuid4().hex[:6]}"
    job = yaml.safe_load((TRAINING / "job.yaml").read_text())
    job["metadata"]["name"] = "train"
    job["spec"]["template"]["metadata"]["labels"][labels.LABEL_INJECT] = "drivers"
    job["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "MODEL_NAME", "value": model}]
    job["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] = "train-code"
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "train-code"}, "data": {"train.py": (TRAINING / "train.py").read_text()}}
    )
    client.BatchV1Api(api).create_namespaced_job(namespace, job)

    def trained() -> dict[str, Any] | None:
        pods = core.list_namespaced_pod(namespace, label_selector="job-name=train").items
        if pods and pods[0].status.phase in ("Succeeded", "Failed"):
            return dict(client.ApiClient().sanitize_for_serialization(pods[0]))
        return None

    pod = wait_until(trained, 240, "the training Job to finish")
    assert pod["status"]["phase"] == "Succeeded", pod["status"]
    mlflow = MlflowClient(tracking_uri=mlflow_server.url)
    experiments = [e.experiment_id for e in mlflow.search_experiments()]
    (run,) = mlflow.search_runs(experiments, filter_string=f"tags.`k8s.pod_uid` = '{pod['metadata']['uid']}'")

    # The repo changes one view after training: a second apply that updates it.
    changed = files["features.py"].replace(b"ttl=timedelta(days=7)", b"ttl=timedelta(days=8)")
    assert changed != files["features.py"]
    core.replace_namespaced_config_map("repo", namespace, repo_configmap("repo", {**files, "features.py": changed}))

    second_apply = wait_until(lambda: recorded(first_apply["auditId"]), 180, "the second apply recorded in MLflow")

    # A namesake elsewhere: a run in another namespace read the same feature service and was registered.
    decoy_model = f"decoy-{uuid.uuid4().hex[:6]}"
    experiment = mlflow.get_experiment_by_name("driver_stats")
    assert experiment is not None
    decoy = mlflow.create_run(
        experiment.experiment_id,
        tags={
            "k8s.namespace": f"{namespace}-other",
            "featurelineage.project": "drivers",
            "feast.feature_service": "driver_activity_v1",
            "feast.feature_views": "driver_daily_trips,driver_hourly_stats",
        },
    )
    mlflow.set_terminated(decoy.info.run_id)
    mlflow.create_registered_model(decoy_model)
    mlflow.create_model_version(
        decoy_model,
        f"{decoy.info.artifact_uri}/model",
        run_id=decoy.info.run_id,
        tags={"feast.feature_service": "driver_activity_v1"},
    )
    mlflow.set_registered_model_alias(model, "champion", "1")
    try:
        yield Story(
            namespace=namespace,
            kubeconfig=dev_cluster.kubeconfig,
            mlflow_url=mlflow_server.url,
            model=model,
            run_id=run.info.run_id,
            pod=pod,
            first_apply=first_apply,
            second_apply=second_apply,
            backfill=backfilled_obj,
            decoy_model=decoy_model,
        )
    finally:
        core.delete_namespace(namespace)


def lineage(story: Story, monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str, str]:
    """The command in this process, finding MLflow from the project (no URI given)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    args = build_parser().parse_args(["lineage", *argv, "-n", story.namespace, "--kubeconfig", str(story.kubeconfig)])
    out, err = io.StringIO(), io.StringIO()
    code = command.run_command(args, out, err)
    return code, out.getvalue(), err.getvalue()


def test_a_model_version_leads_to_its_run_pod_apply_and_materialization(
    story: Story, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = lineage(story, monkeypatch, "model", f"{story.model}/1", "-o", "json")
    assert code == 0, err
    answer = json.loads(out)
    mlflow = MlflowClient(tracking_uri=story.mlflow_url)
    run = mlflow.get_run(story.run_id)
    version = mlflow.get_model_version(story.model, "1")

    assert answer["model"]["uri"] == f"models:/{story.model}/1" and answer["model"]["runId"] == version.run_id
    assert answer["model"]["aliases"] == ["champion"]
    assert answer["run"]["runId"] == story.run_id == version.run_id
    assert answer["run"]["url"] == f"{story.mlflow_url}/#/experiments/{run.info.experiment_id}/runs/{story.run_id}"
    assert answer["featureService"] == version.tags["feast.feature_service"] == "driver_activity_v1"
    assert sorted(answer["features"]) == sorted(run.data.tags["feast.feature_refs"].split(","))
    assert [v["name"] for v in answer["featureViews"]] == sorted(run.data.tags["feast.feature_views"].split(","))
    artifacts = [a.path for a in mlflow.list_artifacts(story.run_id)]
    assert "entity_df.parquet" in artifacts
    assert answer["entityDf"]["artifact"] == f"runs:/{story.run_id}/entity_df.parquet"
    assert answer["entityDf"]["rows"] == int(run.data.tags["feast.entity_df_rows"])

    pod = answer["pod"]
    assert (pod["name"], pod["uid"], pod["namespace"]) == (
        story.pod["metadata"]["name"],
        story.pod["metadata"]["uid"],
        story.namespace,
    )
    assert (pod["podPhase"], pod["ownerKind"], pod["job"], pod["jobStatus"]) == (
        "Succeeded",
        "Job",
        "train",
        "Complete",
    )

    # The apply the pod was configured from, though the project has been applied since.
    assert answer["applyFrom"] == "run tag"
    assert (
        answer["apply"]["run"]["runId"]
        == story.first_apply["mlflow"]["runId"]
        == run.data.tags["featurelineage.apply_run_id"]
    )
    assert answer["apply"]["revision"] == story.first_apply["revision"]
    assert answer["apply"]["auditId"] == story.first_apply["auditId"]
    assert answer["currentApply"]["run"]["runId"] == story.second_apply["mlflow"]["runId"]
    assert answer["currentApply"]["revision"] == story.second_apply["revision"]

    backfill = story.backfill["status"]
    for view in answer["featureViews"]:
        materialized = view["lastMaterialization"]
        assert materialized["name"] == "backfill" and materialized["run"]["runId"] == backfill["mlflow"]["runId"]
        assert (materialized["windowStart"], materialized["windowEnd"]) == WEEK
        # Created by the first apply; the second one updated driver_daily_trips only after training.
        assert view["lastChangedBy"]["auditId"] == story.first_apply["auditId"]
        assert f"+{view['name']}" in view["lastChangedBy"]["changes"]["featureViews"]

    code, text, _ = lineage(story, monkeypatch, "model", f"{story.model}@champion")
    assert code == 0
    for fact in (
        f"{story.model}/1 (aliases: champion)",
        story.run_id,
        story.pod["metadata"]["name"],
        f"artifact runs:/{story.run_id}/entity_df.parquet",
        story.first_apply["revision"],
        story.first_apply["mlflow"]["runId"],
        f"APPLIED SINCE     {story.second_apply['revision']}",
        f"[{WEEK[0]}, {WEEK[1]}) by backfill",
    ):
        assert fact in text, fact


def test_a_run_names_the_versions_registered_from_it(story: Story, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = lineage(story, monkeypatch, "run", story.run_id, "-o", "yaml")
    assert code == 0, err
    answer = yaml.safe_load(out)
    assert answer["kind"] == "RunLineage" and answer["model"] is None
    assert [v["uri"] for v in answer["registeredVersions"]] == [f"models:/{story.model}/1"]
    assert answer["featureServiceFrom"] == "run tag"


def test_users_of_a_view_and_a_service_within_the_namespace(story: Story, monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow = MlflowClient(tracking_uri=story.mlflow_url)
    # The decoy really is tagged with the service: leaving it out is the namespace's doing.
    (decoy,) = mlflow.search_model_versions(f"name = '{story.decoy_model}'")
    assert decoy.tags["feast.feature_service"] == "driver_activity_v1"
    for name, kind in (("driver_daily_trips", "featureView"), ("driver_activity_v1", "featureService")):
        code, out, err = lineage(story, monkeypatch, "uses", name, "-o", "json")
        assert code == 0, err
        answer = json.loads(out)
        assert (answer["objectKind"], answer["projects"]) == (kind, ["drivers"])
        assert [v["uri"] for v in answer["modelVersions"]] == [f"models:/{story.model}/1"]
        assert [r["runId"] for r in answer["runs"]] == [story.run_id] and answer["runsMatched"] == 1
        assert answer["runs"][0]["job"] == "train"
    code, text, _ = lineage(story, monkeypatch, "uses", "driver_hourly_stats")
    assert code == 0
    assert f"{story.model}/1" in text and story.run_id in text and story.decoy_model not in text


def test_history_of_the_project(story: Story, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = lineage(story, monkeypatch, "history", "drivers", "-o", "json")
    assert code == 0, err
    entries = json.loads(out)["entries"]
    assert [(e["operation"], e["outcome"]) for e in entries] == [
        ("apply", "succeeded"),
        ("materialize", "succeeded"),
        ("apply", "succeeded"),
    ]
    second, backfill, first = entries
    assert second["changes"]["featureViews"] == ["~driver_daily_trips"]
    assert second["trigger"] == story.second_apply["trigger"] == "repo content changed"
    assert set(first["changes"]["featureViews"]) == {
        "+driver_daily_trips",
        "+driver_hourly_stats",
        "+driver_conversion",  # the example's on-demand view
    }
    assert "+driver_activity_v1" in first["changes"]["featureServices"]
    for entry, recorded in ((second, story.second_apply), (first, story.first_apply)):
        assert entry["run"]["runId"] == recorded["mlflow"]["runId"]
        assert entry["revision"] == recorded["revision"] and entry["jobName"] == recorded["jobName"]
        assert "mlflow" in entry["sources"] and "job" in entry["sources"]
    status = story.backfill["status"]
    assert backfill["name"] == "backfill" and backfill["run"]["runId"] == status["mlflow"]["runId"]
    assert (backfill["windowStart"], backfill["windowEnd"]) == WEEK
    assert backfill["featureViews"] == status["featureViews"] and backfill["trigger"] == "manual"

    # What MLflow holds for this namespace is exactly what history shows.
    mlflow = MlflowClient(tracking_uri=story.mlflow_url)
    experiment = mlflow.get_experiment_by_name("driver_stats-feast-ops")
    assert experiment is not None
    ops = mlflow.search_runs([experiment.experiment_id], filter_string=f"tags.`k8s.namespace` = '{story.namespace}'")
    assert {r.info.run_id for r in ops} == {e["run"]["runId"] for e in entries}

    code, text, _ = lineage(story, monkeypatch, "history", "drivers")
    assert code == 0
    lines = text.splitlines()
    assert lines[0] == f"project {story.namespace}/drivers, Feast project driver_stats"
    assert "~driver_daily_trips" in lines[3] and story.second_apply["mlflow"]["runId"] in lines[3]
    assert "backfill" in lines[4] and "+driver_hourly_stats" in lines[5]


def test_exit_codes_of_the_real_command(story: Story, monkeypatch: pytest.MonkeyPatch) -> None:
    assert lineage(story, monkeypatch, "model", f"{story.model}/99")[0] == command.EXIT_NOT_FOUND
    assert lineage(story, monkeypatch, "uses", "no_such_view")[0] == command.EXIT_NOT_FOUND
    assert lineage(story, monkeypatch, "history", "no-such-project")[0] == command.EXIT_NOT_FOUND
    executable = str(Path(sys.executable).parent / "feast-lineage")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}

    def run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [executable, "lineage", *argv, "-n", story.namespace, "--kubeconfig", str(story.kubeconfig)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )

    found = run("history", "drivers", "-o", "json")
    assert found.returncode == 0, found.stderr
    assert len(json.loads(found.stdout)["entries"]) == 3
    dead = run("run", story.run_id, "--mlflow-tracking-uri", "http://127.0.0.1:9", "--timeout", "1")
    assert dead.returncode == command.EXIT_UNAVAILABLE and "unreachable" in dead.stderr
