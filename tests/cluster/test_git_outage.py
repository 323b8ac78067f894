"""A Git server outage: the last applied commit keeps being materialized, and recovery is noticed in seconds."""

from __future__ import annotations

import datetime
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.cluster.projects import EXAMPLE_REPO, Projects, git_repo, project_manifest
from tests.cluster.test_materialization import Runs
from tests.cluster_helpers import wait_until
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.cluster

PRODUCTION_RESYNC_SECONDS = 60


def _source(projects: Projects, name: str) -> dict[str, Any] | None:
    return projects.condition(name, "SourceAvailable")


def _next_attempts(log: str, namespace: str, name: str, since: float) -> list[float]:
    """The seconds until its next look at the repo source the operator announced for the project, in
    lines written at or after ``since`` (Unix time)."""
    found = []
    for line in log.splitlines():
        if not line.startswith("{") or "; next attempt in " not in line:
            continue
        record = json.loads(line)
        written = datetime.datetime.fromisoformat(record["timestamp"]).timestamp()
        if (record.get("k8s_namespace"), record.get("k8s_name")) == (namespace, name) and written >= since:
            found.append(float(record["message"].rsplit("next attempt in ", 1)[1].rstrip("s")))
    return found


def test_a_git_outage_keeps_materializing_the_last_applied_commit_and_recovery_takes_seconds(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path, git_server: str
) -> None:
    bare, _ = git_repo(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    # The data lives on the shared volume at an absolute path, as a deployment's would: materializing
    # then needs the registry, not the repo.
    shutil.copyfile(EXAMPLE_REPO / "driver_stats.parquet", data / "driver_stats.parquet")
    manifest = project_manifest(
        "drivers", data, {"git": {"url": f"{git_server}/server.git", "revision": "main", "path": "features"}}
    )
    manifest["spec"]["runner"]["env"] = [{"name": "DRIVER_STATS_DATA", "value": "/feast-data/driver_stats.parquet"}]
    projects, runs = Projects(api, namespace), Runs(api, namespace)
    projects.create(manifest)
    applied = projects.wait_condition("drivers", "Ready", timeout=180)["status"]["lastApply"]
    assert _source(projects, "drivers")["status"] == "True"  # type: ignore[index]

    # The server goes away.
    gone = bare.with_name("server.git.away")
    bare.rename(gone)
    wait_until(
        lambda: (c := _source(projects, "drivers")) and c["status"] == "False" and c["reason"] == "GitUnreachable",
        60,
        "SourceAvailable=False",
    )
    ready = projects.condition("drivers", "Ready")
    assert ready is not None and ready["status"] == "True", ready
    assert "source unavailable: cannot reach" in ready["message"]
    assert projects.condition("drivers", "Stalled")["status"] == "False"  # type: ignore[index]
    assert ("GitUnreachable", _source(projects, "drivers")["message"]) in projects.events("drivers")  # type: ignore[index]

    # Materialization goes on, on the commit the registry holds.
    runs.create("during-outage", mode="Range", startTime="2026-11-02T00:00:00Z", endTime="2026-11-05T00:00:00Z")
    done = runs.wait_phase("during-outage", "Succeeded", "Failed", timeout=240)
    assert done["phase"] == "Succeeded", done
    assert done["message"].startswith("materialized from the registry alone (git fetch of")
    assert done["provenance"]["gitRevision"] == applied["commit"]
    assert sorted(done["featureViews"]) == ["driver_daily_trips", "driver_hourly_stats"]

    # Recovery with an operator resyncing as in production (every 60 s): its backoff, not the resync,
    # notices the server is back.
    upgraded = time.time()
    with operator.reconfigured(f"resyncSeconds={PRODUCTION_RESYNC_SECONDS}"):
        # The outage goes on: the backoff grows past its first steps (2, 4, then 8 s).
        wait_until(
            lambda: max(_next_attempts(operator.log(), namespace, "drivers", upgraded), default=0) >= 8,
            60,
            "the source backoff to reach 8 s",
        )
        assert _source(projects, "drivers")["status"] == "False"  # type: ignore[index]
        gone.rename(bare)
        restored = time.monotonic()
        wait_until(
            lambda: (c := _source(projects, "drivers")) and c["status"] == "True",
            PRODUCTION_RESYNC_SECONDS,
            "SourceAvailable=True",
            interval=0.1,
        )
        recovery = time.monotonic() - restored
        print(f"git outage recovery: SourceAvailable=True {recovery:.1f}s after the server came back (resync 60s)")
        assert recovery < PRODUCTION_RESYNC_SECONDS / 2
        ready = projects.condition("drivers", "Ready")
        assert ready is not None and ready["status"] == "True" and "source unavailable" not in ready["message"]
        # Nothing was applied again: the commit did not change.
        assert projects.get("drivers")["status"]["lastApply"]["jobName"] == applied["jobName"]
