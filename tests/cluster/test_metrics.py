"""The operator's /metrics on a real cluster: label names, no `_created` series, removal with the project."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from feast_lineage.api import FEATURE_STORE_PROJECT_KIND
from feast_lineage.controller.pass_log import GONE
from tests.cluster.projects import Projects, example_files, project_manifest, repo_configmap
from tests.cluster_helpers import wait_for_passes, wait_until
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.cluster

GROUP, VERSION = "featurelineage.io", "v1alpha1"
PROJECT_LABELS = {"namespace", "resource", "feast_project"}


def project_samples(operator: ChartOperator, namespace: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample the operator exposes for ``namespace``."""
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(operator.metrics())
        for sample in family.samples
        if sample.labels.get("namespace") == namespace
    ]


def test_project_series_are_labelled_and_removed_with_the_project(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    custom = client.CustomObjectsApi(api)
    projects = Projects(api, namespace)
    client.CoreV1Api(api).create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
    projects.create(project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}}))
    projects.wait_condition("drivers", "Ready", timeout=180)
    run: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MaterializationJob",
        "metadata": {"name": "backfill"},
        "spec": {
            "projectRef": {"name": "drivers"},
            "mode": "Range",
            "startTime": "2026-11-02T00:00:00Z",
            "endTime": "2026-11-03T00:00:00Z",
        },
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "materializationjobs", run)

    def run_finished() -> dict[str, Any] | None:
        body = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "materializationjobs", "backfill")
        status = dict(body.get("status") or {})
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    finished = wait_until(run_finished, 180, "the backfill to finish")
    assert finished["phase"] == "Succeeded", finished

    # The run is counted under its project once the operator has recorded it there.
    def materialization_counted() -> list[tuple[str, dict[str, str], float]] | None:
        found = project_samples(operator, namespace)
        names = {name for name, _, _ in found}
        return found if "feast_lineage_materialization_duration_seconds_count" in names else None

    samples = wait_until(materialization_counted, 30, "the materialization in /metrics")
    expected_labels = {"namespace": namespace, "resource": "drivers", "feast_project": "driver_stats"}
    by_name: dict[str, list[dict[str, str]]] = {}
    for name, labels, _ in samples:
        by_name.setdefault(name, []).append(labels)
        assert {key: labels[key] for key in PROJECT_LABELS} == expected_labels, (name, labels)
        assert "project" not in labels, (name, labels)
    assert by_name["feast_lineage_apply_total"] == [{**expected_labels, "outcome": "succeeded"}]
    assert by_name["feast_lineage_apply_duration_seconds_count"] == [{**expected_labels, "outcome": "succeeded"}]
    assert by_name["feast_lineage_materialization_total"] == [{**expected_labels, "outcome": "succeeded"}]
    assert by_name["feast_lineage_materialization_duration_seconds_count"] == [
        {**expected_labels, "outcome": "succeeded"}
    ]
    duration_sum = next(v for n, _, v in samples if n == "feast_lineage_materialization_duration_seconds_sum")
    assert duration_sum == pytest.approx(finished["durationSeconds"], abs=0.001)
    assert by_name["feast_lineage_audit_records_pending"] == [expected_labels]

    exposition = operator.metrics()
    assert "feast_lineage_reconcile_total{" in exposition
    assert not [line for line in exposition.splitlines() if "_created" in line.split("{", 1)[0]]

    # The operator holds the project with its finalizer, so it sees the deletion and frees the series.
    assert "featurelineage.io/finalizer" in projects.get("drivers")["metadata"]["finalizers"]
    applies, deleted = projects.apply_jobs("drivers"), time.time()
    assert applies
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "featurestoreprojects", "drivers")

    def series_gone() -> bool:
        return not [labels for _, labels, _ in project_samples(operator, namespace) if labels["resource"] == "drivers"]

    wait_until(series_gone, 60, "the deleted project's series to be removed")
    wait_until(lambda: _project_gone(custom, namespace), 30, "the project to be deleted")
    # Nothing brings them back: not the garbage-collected apply Jobs' events, each of which passes the
    # project once more and finds it gone (its resyncs ended with its deletion).
    wait_until(lambda: not projects.apply_jobs("drivers"), 120, "the apply Jobs to be garbage-collected")
    wait_for_passes(operator, FEATURE_STORE_PROJECT_KIND, namespace, "drivers", len(applies), deleted, outcomes={GONE})
    assert series_gone()


def _project_gone(custom: client.CustomObjectsApi, namespace: str) -> bool:
    names = [
        item["metadata"]["name"]
        for item in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "featurestoreprojects")["items"]
    ]
    return "drivers" not in names
