"""A project's materialization schedule on the real operator: runs at the cron times, Forbid, history."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.cluster.projects import Projects, example_files, project_manifest, repo_configmap
from tests.cluster_helpers import wait_until
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.cluster

GROUP, VERSION, PLURAL = "featurelineage.io", "v1alpha1", "materializationjobs"


def _runs(custom: client.CustomObjectsApi, namespace: str) -> dict[str, dict[str, Any]]:
    items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
    return {item["metadata"]["name"]: item for item in items}


def test_schedule_creates_runs_at_cron_times_respects_forbid_and_prunes(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    projects = Projects(api, namespace)
    core.create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
    schedule = {
        "schedule": "* * * * *",
        "concurrencyPolicy": "Forbid",
        "featureViews": ["driver_hourly_stats"],
        "successfulRunsHistoryLimit": 0,
    }
    projects.create(
        project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}}, materialization=schedule)
    )
    projects.wait_condition("drivers", "Ready", timeout=180)

    # The first tick creates a run named from its scheduled minute, with that minute as the window end.
    first_name = wait_until(
        lambda: (projects.get("drivers")["status"].get("schedule") or {}).get("lastRun"), 90, "a scheduled run"
    )
    first = _runs(custom, namespace)[first_name]
    scheduled = datetime.fromisoformat(first["metadata"]["annotations"]["featurelineage.io/scheduled-time"])
    assert scheduled.second == 0 and first_name == f"drivers-{scheduled:%Y%m%d-%H%M}"
    assert first["spec"] == {
        "projectRef": {"name": "drivers"},
        "mode": "Incremental",
        "endTime": f"{scheduled:%Y-%m-%dT%H:%M:%SZ}",
        "featureViews": ["driver_hourly_stats"],
        "backoffLimit": 0,
    }
    assert first["metadata"]["labels"]["featurelineage.io/created-by"] == "schedule"

    def first_finished() -> dict[str, Any] | None:
        run = _runs(custom, namespace)[first_name]
        return run if run.get("status", {}).get("phase") in ("Succeeded", "Failed") else None

    done = wait_until(first_finished, 120, "the first scheduled run")
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["provenance"]["triggeredBy"] == "schedule"

    # Break the project: the next scheduled run waits (it stays active), and Forbid holds the one after.
    core.delete_namespaced_config_map("repo", namespace)
    projects.wait_condition("drivers", "Stalled", "True", "RepoNotFound", timeout=60)

    def second_run() -> str | None:
        last = (projects.get("drivers")["status"].get("schedule") or {}).get("lastRun")
        return last if last != first_name else None

    second_name = wait_until(second_run, 90, "the second scheduled run")
    # History limit 0: the finished first run was pruned when the schedule next ran.
    wait_until(lambda: first_name not in _runs(custom, namespace), 30, "the first run to be pruned")
    waiting = wait_until(lambda: _runs(custom, namespace)[second_name].get("status", {}).get("waitingFor"), 30, "wait")
    assert waiting.startswith("FeatureStoreProject drivers is not Ready")
    message = wait_until(
        lambda: (projects.get("drivers")["status"].get("schedule") or {}).get("message"), 90, "Forbid to hold a tick"
    )
    assert message == f"Forbid: {second_name} is still running"
    assert sorted(_runs(custom, namespace)) == [second_name]

    # Fixed: the waiting run goes, the next tick creates a run, and the message does not outlive its reason.
    core.create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))

    def schedule_running_again() -> dict[str, Any] | None:
        schedule = projects.get("drivers")["status"].get("schedule") or {}
        return schedule if schedule.get("lastRun") not in (first_name, second_name) else None

    schedule_status = wait_until(schedule_running_again, 240, "the schedule to create a run after the fix")
    assert "message" not in schedule_status, schedule_status
