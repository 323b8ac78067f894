"""Names of the MLflow tags, params and metrics of operation runs.

The ``feast.*`` names are the ones Feast's own ops logging uses, so queries written for
Feast's runs also find ours.
"""

from __future__ import annotations

AUDIT_ID = "featurelineage.audit_id"
"""Identifies the operation: the key of exactly-once delivery."""
ATTEMPTS = "featurelineage.attempts"
"""Attempts of the operation (a Job's retries) recorded in its one run; the last one's outcome is the run's."""
OUTCOME = "featurelineage.outcome"  # succeeded | failed
ERROR = "featurelineage.error"
GIT_COMMIT = "featurelineage.git.commit"
DURATION_SEC = "featurelineage.duration_sec"  # metric

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
