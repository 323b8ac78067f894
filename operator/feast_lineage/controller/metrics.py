"""Prometheus metrics of the operator, served on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter("feast_lineage_reconcile_total", "Reconciles by resource kind and outcome.", ["kind", "outcome"])
APPLIES = Counter(
    "feast_lineage_apply_total",
    "Finished feast apply runs by project and outcome.",
    ["namespace", "project", "outcome"],
)
APPLY_DURATION = Histogram(
    "feast_lineage_apply_duration_seconds",
    "Duration of feast apply as measured by the runner.",
    ["namespace", "project", "outcome"],
    buckets=(1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600),
)
MATERIALIZATIONS = Counter(
    "feast_lineage_materialization_total",
    "Finished MaterializationJobs by project and outcome.",
    ["namespace", "project", "outcome"],
)
AUDIT_PENDING = Gauge(
    "feast_lineage_audit_records_pending",
    "Operation records kept in status because MLflow could not take them yet.",
    ["namespace", "project"],
)
AUDIT_DELIVERED = Counter(
    "feast_lineage_audit_records_delivered_total",
    "Records delivered to MLflow after the operation ended.",
    ["namespace"],
)


def serve(port: int) -> None:
    if port:
        start_http_server(port)


INJECTIONS = Counter(
    "feast_lineage_injection_total",
    "Pod admissions by the injection webhook, by outcome (injected, skipped, already-injected).",
    ["outcome"],
)
INJECTION_MISSED = Gauge(
    "feast_lineage_injection_missed_pods",
    "Pods labelled for injection that exist without it (the webhook was down or timed out).",
    ["namespace", "project"],
)
