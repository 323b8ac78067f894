"""Names of the MLflow tags, params and metrics of operation runs.

The ``feast.*`` names are the ones Feast's own ops logging uses, so queries written for
Feast's runs also find ours.
"""

from __future__ import annotations

AUDIT_ID = "featurelineage.audit_id"
"""Identifies the operation: the key of exactly-once delivery."""
OUTCOME = "featurelineage.outcome"  # succeeded | failed
ERROR = "featurelineage.error"
REASON = "featurelineage.reason"
"""The outcome's CamelCase reason, as status says it (Succeeded, MaterializationFailed, DeadlineExceeded, ...)."""
ROWS_WRITTEN = "featurelineage.rows_written"  # metric: all feature views
ROWS_WRITTEN_PREFIX = "featurelineage.rows_written."  # metric per feature view: <prefix><view>
GIT_COMMIT = "featurelineage.git.commit"
DURATION_SEC = "featurelineage.duration_sec"  # metric

K8S_NAMESPACE = "k8s.namespace"
K8S_NAME = "k8s.name"

OPERATION = "feast.operation"  # apply | materialize | materialize_incremental
PROJECT = "feast.project"
FEATURE_VIEWS_CHANGED = "feast.feature_views_changed"
FEATURE_SERVICES_CHANGED = "feast.feature_services_changed"
ENTITIES_CHANGED = "feast.entities_changed"
APPLY_FEATURE_VIEWS_COUNT = "feast.apply.feature_views_count"  # metric
APPLY_FEATURE_SERVICES_COUNT = "feast.apply.feature_services_count"  # metric
APPLY_ENTITIES_COUNT = "feast.apply.entities_count"  # metric
MATERIALIZE_FEATURE_VIEWS = "feast.materialize.feature_views"
MATERIALIZE_START_DATE = "feast.materialize.start_date"  # param (as Feast logs it) and tag
MATERIALIZE_END_DATE = "feast.materialize.end_date"  # param (as Feast logs it) and tag
MATERIALIZE_DURATION_SEC = "feast.materialize.duration_sec"  # metric


def transition_tag(kind: str, transition: str) -> str:
    """Feast's per-transition tag, e.g. ``feast.feature_views_created``."""
    return f"feast.{kind}_{transition}"


OUTCOME_SUCCEEDED = "succeeded"
OUTCOME_FAILED = "failed"


def run_name(operation: str, project: str, namespace: str | None, resource: str | None) -> str:
    """``<operation>_<project>`` as Feast names its runs, then where it came from: runs of two namespaces
    (or two resources) sharing a Feast project and experiment are told apart at a glance."""
    where = f"@{namespace}/{resource}" if namespace and resource else ""
    return f"{operation}_{project}{where}"[:250]
