"""Racing applies: one apply per project at a time, a superseded revision skipped, status true to the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.cluster.projects import Projects, example_files, project_manifest, repo_configmap
from tests.cluster_helpers import job_running, wait_until
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.cluster


def _with_ttl(days: int) -> dict[str, bytes]:
    files = example_files()
    files["features.py"] = files["features.py"].replace(
        b"ttl=timedelta(days=1)", f"ttl=timedelta(days={days})".encode(), 1
    )
    return files


def test_a_newer_revision_waits_a_superseded_one_is_skipped_and_status_says_what_was_applied(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    core, batch, projects = client.CoreV1Api(api), client.BatchV1Api(api), Projects(api, namespace)
    # The first revision takes a while to import, so the next two arrive while it is being applied.
    slow = example_files()
    slow["features.py"] = b"import time\n\ntime.sleep(20)\n" + slow["features.py"]
    core.create_namespaced_config_map(namespace, repo_configmap("repo", slow))
    projects.create(project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}}))
    [first] = wait_until(lambda: projects.apply_jobs("drivers"), 60, "the first apply Job")
    wait_until(lambda: job_running(api, namespace, first), 60, f"{first} to run")

    core.replace_namespaced_config_map("repo", namespace, repo_configmap("repo", _with_ttl(2)))

    def pending() -> dict[str, Any] | None:
        status = projects.get("drivers").get("status") or {}
        return status.get("pendingApply")

    second = wait_until(pending, 30, "the second revision to wait")
    assert second["waitingFor"] == f"Job {first} (an earlier apply) to finish"
    assert job_running(api, namespace, first), "the first apply ended before the test could race it"
    assert projects.condition("drivers", "Reconciling")["reason"] == "ApplyWaiting"  # type: ignore[index]

    core.replace_namespaced_config_map("repo", namespace, repo_configmap("repo", _with_ttl(3)))

    def superseded() -> dict[str, Any] | None:
        status = projects.get("drivers").get("status") or {}
        return status.get("lastSupersededApply")

    skipped = wait_until(superseded, 30, "the second revision to be superseded")
    assert skipped["revision"] == second["revision"]
    assert job_running(api, namespace, first), "the first apply ended before the third revision came"
    third = pending()
    assert third is not None and third["revision"] != second["revision"]

    def applied_third() -> dict[str, Any] | None:
        status = projects.get("drivers").get("status") or {}
        last = status.get("lastApply") or {}
        ready = projects.condition("drivers", "Ready") or {}
        return status if last.get("revision") == third["revision"] and ready.get("status") == "True" else None

    status = wait_until(applied_third, 240, "the third revision to be applied")
    assert "pendingApply" not in status
    jobs = projects.apply_jobs("drivers")
    # Two Jobs: the first and the third revision's; the superseded one never had one.
    assert len(jobs) == 2 and first in jobs, jobs
    assert status["lastApply"]["jobName"] != first
    # The third apply changed what the first one applied: the TTL of driver_hourly_stats.
    assert status["lastApply"]["changes"]["featureViews"] == ["~driver_hourly_stats"]
    # It started after the first one ended: never two at once.
    first_job = batch.read_namespaced_job(first, namespace)
    last_job = batch.read_namespaced_job(status["lastApply"]["jobName"], namespace)
    assert last_job.metadata.creation_timestamp >= first_job.status.completion_time
    assert ("ApplySuperseded", f"{skipped['revision']} was superseded before its apply started") in projects.events(
        "drivers"
    )
