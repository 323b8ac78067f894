"""Prometheus metrics of the operator, served on /metrics.

Series about a project carry ``namespace``, ``resource`` (the FeatureStoreProject's
name) and ``feast_project`` (its spec.project): one set per project, never one
per run. The operator remembers which label values each project produced and
removes those series when the project is deleted.
"""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics, start_http_server

# A `*_created` series per counter and histogram child doubles the output and says nothing a
# process start time does not.
disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated in prometheus_client

PROJECT_LABELS = ("namespace", "resource", "feast_project")

RECONCILES = Counter("feast_lineage_reconcile_total", "Reconciles by resource kind and outcome.", ["kind", "outcome"])
APPLIES = Counter(
    "feast_lineage_apply_total",
    "Finished feast apply runs by project and outcome.",
    [*PROJECT_LABELS, "outcome"],
)
APPLY_DURATION = Histogram(
    "feast_lineage_apply_duration_seconds",
    "Duration of feast apply as measured by the runner.",
    [*PROJECT_LABELS, "outcome"],
    buckets=(1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600),
)
MATERIALIZATIONS = Counter(
    "feast_lineage_materialization_total",
    "Finished MaterializationJobs by project and outcome.",
    [*PROJECT_LABELS, "outcome"],
)
MATERIALIZATION_DURATION = Histogram(
    "feast_lineage_materialization_duration_seconds",
    "Duration of feast materialize as measured by the runner.",
    [*PROJECT_LABELS, "outcome"],
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)
AUDIT_PENDING = Gauge(
    "feast_lineage_audit_records_pending",
    "Operation records of the project itself kept in its status because MLflow could not take them yet.",
    PROJECT_LABELS,
)
AUDIT_DELIVERED = Counter(
    "feast_lineage_audit_records_delivered_total",
    "Records of the project and its MaterializationJobs delivered to MLflow after the operation ended.",
    PROJECT_LABELS,
)
# By namespace, not project: these outlive the object whose records they count (a deletion that
# abandons records removes the project's own series).
AUDIT_LOST = Counter(
    "feast_lineage_audit_records_lost_total",
    "Audit records that will never reach MLflow, by why: cap (pendingAudit or undeliverableAudit full, "
    "oldest dropped) or abandoned (the object was deleted before MLflow took them).",
    ["namespace", "why"],
)
AUDIT_UNDELIVERABLE = Counter(
    "feast_lineage_audit_records_undeliverable_total",
    "Audit records set aside in status.undeliverableAudit because MLflow, as configured, cannot take them.",
    ["namespace"],
)

RUNS_SETTLED = Counter(
    "feast_lineage_runs_settled_total",
    "Finished MaterializationJobs labelled settled (out of the operator's watch), by when the operator "
    "found them: start (before its watch lists runs), listed (in the watch's own listing) or event.",
    ["when"],
)

LEADER = Gauge(
    "feast_lineage_leader",
    "1 while this replica holds the leader election Lease and reconciles, 0 while it stands by.",
)

INJECTIONS = Counter(
    "feast_lineage_injection_total",
    "Pod admissions by the injection webhook, by outcome (injected, skipped, already-injected).",
    ["outcome"],
)
INJECTION_MISSED = Gauge(
    "feast_lineage_injection_missed_pods",
    "Pods labelled for injection that exist without it (the webhook was down or timed out).",
    ["namespace", "resource", "feast_project"],
)

Metric = Counter | Gauge | Histogram


@dataclass(frozen=True)
class ProjectLabels:
    """The label values that identify a project's series."""

    namespace: str
    resource: str
    feast_project: str

    @classmethod
    def of(cls, project: Mapping[str, Any]) -> ProjectLabels | None:
        """The labels of a FeatureStoreProject object; None once it is being deleted, so that
        nothing brings back a series its deletion removed."""
        meta = project.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return None
        spec = project.get("spec") or {}
        return cls(str(meta.get("namespace") or ""), str(meta.get("name") or ""), str(spec.get("project") or ""))

    @property
    def values(self) -> tuple[str, str, str]:
        return (self.namespace, self.resource, self.feast_project)


class _ProjectSeries:
    """Which children each project has created, so that its deletion can remove them all.

    prometheus_client removes a child only by its exact label values; the outcomes and
    Feast project names a project went through are only known here.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._children: defaultdict[tuple[str, str], set[tuple[Metric, tuple[str, ...]]]] = defaultdict(set)

    def child(self, metric: Metric, project: ProjectLabels, *extra: str) -> Any:
        values = (*project.values, *extra)
        with self._lock:
            self._children[(project.namespace, project.resource)].add((metric, values))
            return metric.labels(*values)

    def set_gauge(self, gauge: Gauge, project: ProjectLabels, value: float) -> None:
        """Set ``gauge`` for ``project``, dropping its children under an earlier Feast project name."""
        key = (project.namespace, project.resource)
        with self._lock:
            for metric, values in list(self._children[key]):
                if metric is gauge and values != project.values:
                    gauge.remove(*values)
                    self._children[key].discard((metric, values))
            self._children[key].add((gauge, project.values))
            gauge.labels(*project.values).set(value)

    def forget(self, namespace: str, resource: str) -> None:
        with self._lock:
            for metric, values in self._children.pop((namespace, resource), set()):
                with contextlib.suppress(KeyError):  # older clients raise it for a child already gone
                    metric.remove(*values)


_series = _ProjectSeries()


def apply_finished(project: ProjectLabels, outcome: str, duration_seconds: float | None) -> None:
    _series.child(APPLIES, project, outcome).inc()
    if duration_seconds is not None:
        _series.child(APPLY_DURATION, project, outcome).observe(duration_seconds)


def materialization_finished(project: ProjectLabels, outcome: str, duration_seconds: float | None) -> None:
    _series.child(MATERIALIZATIONS, project, outcome).inc()
    if duration_seconds is not None:
        _series.child(MATERIALIZATION_DURATION, project, outcome).observe(duration_seconds)


def audit_pending(project: ProjectLabels, count: int) -> None:
    _series.set_gauge(AUDIT_PENDING, project, count)


def audit_delivered(project: ProjectLabels) -> None:
    _series.child(AUDIT_DELIVERED, project).inc()


def audit_lost(namespace: str, why: str, count: int) -> None:
    if count:
        AUDIT_LOST.labels(namespace, why).inc(count)


def audit_undeliverable(namespace: str, count: int) -> None:
    if count:
        AUDIT_UNDELIVERABLE.labels(namespace).inc(count)


def injection_missed(project: ProjectLabels, count: int) -> None:
    _series.set_gauge(INJECTION_MISSED, project, count)


def forget_project(namespace: str, resource: str) -> None:
    """Remove every series the project ``namespace/resource`` produced."""
    _series.forget(namespace, resource)


def set_leader(leading: bool) -> None:
    LEADER.set(1 if leading else 0)


def serve(port: int) -> None:
    if port:
        start_http_server(port)
