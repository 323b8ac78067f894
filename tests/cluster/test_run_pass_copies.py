"""A run's pass decides on the watch's copies of its project and of the project's repo snapshot: runs
created the moment either changes still get the verdict the project's state calls for.

Each run here is created as soon as the test's own watch reports the change, before or while the
operator's watch delivers it: a verdict against the project (not ready, no such view, no snapshot)
is made only on a fresh read. Real operator, node, Feast and MLflow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from tests.cluster.projects import Projects, generated_files, project_manifest, repo_configmap
from tests.cluster.test_materialization import Runs
from tests.cluster_helpers import wait_until
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.cluster

GROUP, VERSION, PROJECTS = "featurelineage.io", "v1alpha1", "featurestoreprojects"
WINDOW = {"mode": "Range", "startTime": "2026-11-02T00:00:00Z", "endTime": "2026-11-03T00:00:00Z"}


def _ready(project: dict[str, Any]) -> bool:
    conditions = (project.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _lists(view: str) -> Callable[[dict[str, Any]], bool]:
    return lambda project: _ready(project) and view in ((project.get("status") or {}).get("featureViews") or [])


def first_state(api: client.ApiClient, namespace: str, name: str, matches: Callable[[dict[str, Any]], bool]) -> Any:
    """The project the moment the API server first reports it matching, from a watch of its own."""
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        stream = watch.Watch().stream(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PROJECTS,
            field_selector=f"metadata.name={name}",
            timeout_seconds=60,
        )
        for event in stream:
            if event["type"] != "DELETED" and matches(event["object"]):
                return event["object"]
    raise AssertionError(f"{name} did not reach the state in 300 s; now: {Projects(api, namespace).get(name)}")


def one_view_project(api: client.ApiClient, namespace: str, tmp_path: Path) -> client.CoreV1Api:
    """The project "drivers" created (not yet applied), its repo a ConfigMap with the one view fv_0."""
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, repo_configmap("repo", generated_files(1)))
    Projects(api, namespace).create(project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}}))
    return core


@pytest.mark.timeout(900)
def test_runs_created_the_moment_the_project_is_ready_or_applies_a_new_view_start_on_that_apply(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    core = one_view_project(api, namespace, tmp_path)
    runs = Runs(api, namespace)

    ready = first_state(api, namespace, "drivers", _ready)
    runs.create("at-ready", featureViews=["fv_0"], **WINDOW)
    first = runs.wait_phase("at-ready", "Succeeded", "Failed", timeout=300)
    assert first["phase"] == "Succeeded", first
    assert first["revision"] == ready["status"]["lastSuccessfulApply"]["revision"]

    # A view the project did not have a moment before: named by a run created as its apply lands.
    core.replace_namespaced_config_map("repo", namespace, repo_configmap("repo", generated_files(2)))
    applied = first_state(api, namespace, "drivers", _lists("fv_1"))
    runs.create("new-view", featureViews=["fv_1"], **WINDOW)
    second = runs.wait_phase("new-view", "Succeeded", "Failed", timeout=300)
    assert second["phase"] == "Succeeded", second
    assert second["featureViews"] == ["fv_1"]
    assert second["revision"] == applied["status"]["lastSuccessfulApply"]["revision"] != first["revision"]


@pytest.mark.timeout(900)
def test_a_run_created_right_after_its_snapshot_is_deleted_fails_or_runs_on_the_snapshot_made_again(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    core = one_view_project(api, namespace, tmp_path)
    ready = Projects(api, namespace).wait_condition("drivers", "Ready", timeout=300)
    snapshot = ready["status"]["lastSuccessfulApply"]["snapshot"]
    runs = Runs(api, namespace)

    core.delete_namespaced_config_map(snapshot, namespace)
    runs.create("after-delete", featureViews=["fv_0"], **WINDOW)
    done = runs.wait_phase("after-delete", "Succeeded", "Failed", timeout=300)
    # The project makes the snapshot again at its next full pass (its repo still has that content):
    # the run either found it gone (read afresh, never from a copy) or started once it was back.
    if done["phase"] == "Failed":
        assert done["reason"] == "RevisionUnavailable", done
        assert done["message"].startswith(f"the snapshot ConfigMap {snapshot} of revision "), done
        assert runs.jobs() == []
    else:
        assert done["phase"] == "Succeeded" and runs.jobs() == ["after-delete-materialize"], done
    # Once made again, a run created then starts on it.
    wait_until(
        lambda: snapshot in {cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items},
        120,
        f"the snapshot {snapshot} made again",
    )
    assert core.read_namespaced_config_map(snapshot, namespace).immutable is True
    runs.create("later", featureViews=["fv_0"], **{**WINDOW, "endTime": "2026-11-04T00:00:00Z"})
    later = runs.wait_phase("later", "Succeeded", "Failed", timeout=300)
    assert later["phase"] == "Succeeded", later
