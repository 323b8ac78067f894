"""The operator's Prometheus series: label names, no `_created` series, removal with the project."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from feast_lineage.controller import metrics

# Importing Feast (other tests in this process do) sets PROMETHEUS_MULTIPROC_DIR, and removing a
# series then warns that multi-process mode cannot; the operator never imports Feast.
pytestmark = pytest.mark.filterwarnings("ignore:Removal of labels has not been implemented:UserWarning")

Sample = tuple[str, dict[str, str], float]


def exposed() -> str:
    return generate_latest(REGISTRY).decode()


def samples(namespace: str) -> list[Sample]:
    """Every exposed sample of ``namespace``: (name, labels, value)."""
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(exposed())
        for sample in family.samples
        if sample.labels.get("namespace") == namespace
    ]


def project(resource: str = "drivers", feast_project: str = "driver_stats") -> metrics.ProjectLabels:
    return metrics.ProjectLabels(f"ns-{uuid.uuid4().hex[:8]}", resource, feast_project)


def record_everything(labels: metrics.ProjectLabels) -> None:
    metrics.apply_finished(labels, "succeeded", 12.5)
    metrics.apply_finished(labels, "failed", None)
    metrics.materialization_finished(labels, "succeeded", 42.0)
    metrics.materialization_finished(labels, "failed", 3.0)
    metrics.audit_pending(labels, 2)
    metrics.audit_delivered(labels)


def test_project_series_carry_namespace_resource_and_feast_project() -> None:
    labels = project()
    record_everything(labels)
    found = samples(labels.namespace)
    names = {name for name, _, _ in found}
    assert {
        "feast_lineage_apply_total",
        "feast_lineage_apply_duration_seconds_count",
        "feast_lineage_materialization_total",
        "feast_lineage_materialization_duration_seconds_bucket",
        "feast_lineage_materialization_duration_seconds_sum",
        "feast_lineage_audit_records_pending",
        "feast_lineage_audit_records_delivered_total",
    } <= names
    for name, sample_labels, _ in found:
        assert sample_labels["resource"] == "drivers" and sample_labels["feast_project"] == "driver_stats", name
        assert "project" not in sample_labels, name
    durations = {
        (sample_labels["outcome"], value)
        for name, sample_labels, value in found
        if name == "feast_lineage_materialization_duration_seconds_sum"
    }
    assert durations == {("succeeded", 42.0), ("failed", 3.0)}
    # An apply without a reported duration is counted but not observed.
    apply_counts = {
        sample_labels["outcome"]
        for name, sample_labels, _ in found
        if name == "feast_lineage_apply_duration_seconds_count"
    }
    assert apply_counts == {"succeeded"}


def test_no_created_series() -> None:
    record_everything(project())
    metrics.RECONCILES.labels("FeatureStoreProject", "ok").inc()
    lines = [line for line in exposed().splitlines() if line.startswith("feast_lineage_")]
    assert lines
    assert not [line for line in lines if "_created" in line.split("{", 1)[0]]


def test_forgetting_a_project_removes_every_series_it_produced() -> None:
    labels = project()
    renamed = metrics.ProjectLabels(labels.namespace, labels.resource, "renamed_stats")
    other = metrics.ProjectLabels(labels.namespace, "other", "other_stats")
    record_everything(labels)
    record_everything(renamed)  # spec.project changed: new series under the new name
    record_everything(other)
    metrics.forget_project(labels.namespace, labels.resource)
    left = samples(labels.namespace)
    assert left, "the other project's series are gone too"
    assert {sample_labels["resource"] for _, sample_labels, _ in left} == {"other"}
    # Forgetting twice, or a project that produced nothing, is harmless.
    metrics.forget_project(labels.namespace, labels.resource)
    metrics.forget_project(labels.namespace, "never-seen")


def test_the_pending_gauge_follows_a_renamed_feast_project() -> None:
    labels = project()
    metrics.audit_pending(labels, 3)
    metrics.audit_pending(metrics.ProjectLabels(labels.namespace, labels.resource, "renamed_stats"), 1)
    pending = [
        (sample_labels["feast_project"], value)
        for name, sample_labels, value in samples(labels.namespace)
        if name == "feast_lineage_audit_records_pending"
    ]
    assert pending == [("renamed_stats", 1.0)]


def test_labels_of_a_project_object() -> None:
    body = {"metadata": {"namespace": "team", "name": "drivers"}, "spec": {"project": "driver_stats"}}
    assert metrics.ProjectLabels.of(body) == metrics.ProjectLabels("team", "drivers", "driver_stats")
    deleting = {**body, "metadata": {**body["metadata"], "deletionTimestamp": "2026-11-02T00:00:00Z"}}
    assert metrics.ProjectLabels.of(deleting) is None
    assert metrics.ProjectLabels.of({"metadata": {"namespace": "team", "name": "bad"}, "spec": {}}) == (
        metrics.ProjectLabels("team", "bad", "")
    )
