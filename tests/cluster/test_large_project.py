"""A project too big for the runner's 4 KiB result: 1,000 feature views and 100 feature services.

The registry's names do not fit the termination message; the project's status then says how many
there are (and lists none rather than a stale or partial set), any view can still be materialized
by name, and a name the registry lacks fails in the runner, which has the registry.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client

from tests.cluster.projects import Projects, generated_files, project_manifest, repo_configmap
from tests.cluster.test_materialization import Runs
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.cluster

VIEWS, SERVICES = 1000, 100
# What a status may take whatever the registry holds (the names a 4 KiB result carries, conditions, ...).
STATUS_BYTES_LIMIT = 16 * 1024


# Applying and materializing a thousand views takes minutes on a loaded machine: more than the default 600 s.
@pytest.mark.timeout(1800)
def test_a_project_of_a_thousand_views_applies_and_materializes_any_of_them(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    files = generated_files(VIEWS, SERVICES)
    client.CoreV1Api(api).create_namespaced_config_map(namespace, repo_configmap("repo", files))
    projects = Projects(api, namespace)
    projects.create(project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}}))
    status = projects.wait_condition("drivers", "Ready", timeout=900)["status"]
    assert (status["featureViewCount"], status["featureServiceCount"], status["entityCount"]) == (
        VIEWS,
        SERVICES,
        1,
    )
    assert "fv_999" not in status.get("featureViews", [])  # counted, not listed
    assert len(json.dumps(status)) <= STATUS_BYTES_LIMIT

    runs = Runs(api, namespace)
    window = {"mode": "Range", "startTime": "2026-11-02T00:00:00Z", "endTime": "2026-11-03T00:00:00Z"}
    runs.create("last-view", featureViews=["fv_999"], **window)
    runs.create("no-such-view", featureViews=[f"fv_{VIEWS}"], **window)
    done = runs.wait_phase("last-view", "Succeeded", "Failed", timeout=600)
    assert done["phase"] == "Succeeded", done.get("message")
    assert done["featureViews"] == ["fv_999"]
    missing = runs.wait_phase("no-such-view", "Succeeded", "Failed", timeout=600)
    assert missing["phase"] == "Failed"
    assert f"feature view(s) not in project driver_stats: fv_{VIEWS}" in missing["message"]
    for run in ("last-view", "no-such-view"):
        assert len(json.dumps(runs.status(run))) <= STATUS_BYTES_LIMIT
    project = projects.get("drivers")["status"]
    assert project["lastMaterialization"]["name"] in ("last-view", "no-such-view")
    assert len(json.dumps(project)) <= STATUS_BYTES_LIMIT
