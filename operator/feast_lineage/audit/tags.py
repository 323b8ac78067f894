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
REASON = "featurelineage.reason"
"""The outcome's CamelCase reason, as status says it (Succeeded, MaterializationFailed, DeadlineExceeded, ...)."""
ROWS_WRITTEN = "featurelineage.rows_written"  # metric: all feature views
ROWS_WRITTEN_PREFIX = "featurelineage.rows_written."  # metric per feature view: <prefix><view>
GIT_COMMIT = "featurelineage.git.commit"
SNAPSHOT = "featurelineage.snapshot"
"""ConfigMap source: the immutable ConfigMap holding the repo content the operation ran."""
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

# Tags other processes put on runs and model versions, which impact analysis reads.
FEATURE_SERVICE = "feast.feature_service"
"""On training runs and on the model versions registered from them (Feast's ``register_model``)."""
RUN_NAMESPACE = "k8s.namespace"
"""On runs of injected pods (``MLFLOW_RUN_CONTEXT``): the namespace the pod ran in."""
RUN_FEAST_PROJECT = "featurelineage.feast_project"
"""On runs of injected pods: the Feast project whose client configuration the pod received."""
IMPACT_PLAN_HASH = "featurelineage.impact.plan_hash"
IMPACT_POLICY = "featurelineage.impact.policy"  # param: Allow | Warn | Block
IMPACT_OBJECTS = "featurelineage.impact.objects"
IMPACT_FEATURE_SERVICES = "featurelineage.impact.feature_services"
IMPACT_MODELS = "featurelineage.impact.models"  # name/version, comma-separated
IMPACT_ERROR = "featurelineage.impact.error"
IMPACT_HELD = "featurelineage.impact.held"  # "true" when the apply waited for approval
OUTCOME_HELD = "held"
"""``featurelineage.outcome`` of an apply that stopped before writing, awaiting approval."""


def run_name(operation: str, project: str, namespace: str | None, resource: str | None) -> str:
    """``<operation>_<project>`` as Feast names its runs, then where it came from: runs of two namespaces
    (or two resources) sharing a Feast project and experiment are told apart at a glance."""
    where = f"@{namespace}/{resource}" if namespace and resource else ""
    return f"{operation}_{project}{where}"[:250]
