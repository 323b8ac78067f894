"""What the operator hands a runner pod, and what the runner hands back.

The operator renders Jobs whose container runs ``feast-lineage runner <operation>``
with the environment variables and mounts named here; the runner reports a
:class:`RunnerResult` as JSON in its termination message, which the operator
copies into status. Both sides import this module, which sits below both and imports
nothing of the package, so the two never drift and the result channel has one owner.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# -- mounts --------------------------------------------------------------------------------------

CONFIG_MOUNT = "/etc/feast-lineage/config"
"""The runner ConfigMap (key ``feature_store.yaml``) is mounted here."""
REPO_CONFIGMAP_MOUNT = "/etc/feast-lineage/repo"
"""A ``repo.configMap`` source is mounted here (one file per key)."""
WORKSPACE_MOUNT = "/workspace"
"""A writable emptyDir: the runner assembles the feature repo under it and uses it as HOME."""
FEATURE_STORE_YAML = "feature_store.yaml"

# -- environment ---------------------------------------------------------------------------------

ENV_OPERATION = "FEAST_LINEAGE_OPERATION"  # apply | materialize
ENV_CONFIG_PATH = "FEAST_LINEAGE_CONFIG"  # path of the rendered feature_store.yaml
ENV_WORKSPACE = "FEAST_LINEAGE_WORKSPACE"
ENV_RESULT_PATH = "FEAST_LINEAGE_RESULT_PATH"  # default /dev/termination-log
ENV_REPO_KIND = "FEAST_LINEAGE_REPO_KIND"  # configMap | git | image
ENV_REPO_DIR = "FEAST_LINEAGE_REPO_DIR"  # configMap mount or image path
ENV_REPO_DIGEST = "FEAST_LINEAGE_REPO_DIGEST"  # configMap: repo_digest of the snapshot the operator mounted
ENV_GIT_URL = "FEAST_LINEAGE_GIT_URL"
ENV_GIT_REVISION = "FEAST_LINEAGE_GIT_REVISION"
ENV_GIT_COMMIT = "FEAST_LINEAGE_GIT_COMMIT"  # the commit the operator resolved; checked out exactly
ENV_GIT_PATH = "FEAST_LINEAGE_GIT_PATH"
ENV_GIT_USERNAME = "FEAST_LINEAGE_GIT_USERNAME"  # from the git Secret, by secretKeyRef
ENV_GIT_PASSWORD = "FEAST_LINEAGE_GIT_PASSWORD"
ENV_GIT_TOKEN = "FEAST_LINEAGE_GIT_TOKEN"
ENV_GIT_ALLOW_PROTOCOL = "FEAST_LINEAGE_GIT_ALLOW_PROTOCOL"  # colon-separated, as GIT_ALLOW_PROTOCOL
GIT_TRUST_MOUNT = "/etc/feast-lineage/git"
"""repo.git.caBundleRef (ca.crt), knownHostsRef (known_hosts) and the ssh key (ssh-privatekey) are mounted here."""
GIT_CA_FILE = "ca.crt"
GIT_KNOWN_HOSTS_FILE = "known_hosts"
GIT_SSH_KEY = "ssh-privatekey"
"""Key of repo.git.secretRef holding an ssh private key (the kubernetes.io/ssh-auth convention)."""
ENV_SECRET_NAMES = "FEAST_LINEAGE_SECRET_ENV"
"""Comma-separated names of the variables set from Secrets: the runner redacts their values from all it writes."""
ENV_PROVENANCE = "FEAST_LINEAGE_PROVENANCE"  # JSON object of MLflow tags rendered by the operator
ENV_AUDIT_ID = "FEAST_LINEAGE_AUDIT_ID"  # unique per operation: makes MLflow delivery exactly-once
ENV_LOG_OPERATIONS = "FEAST_LINEAGE_LOG_OPERATIONS"  # "true" | "false"
ENV_OPS_EXPERIMENT = "FEAST_LINEAGE_OPS_EXPERIMENT"  # <project><opsExperimentSuffix>
# Materialization only.
ENV_MATERIALIZE_MODE = "FEAST_LINEAGE_MATERIALIZE_MODE"  # Incremental | Range
ENV_MATERIALIZE_START = "FEAST_LINEAGE_MATERIALIZE_START"  # RFC 3339
ENV_MATERIALIZE_END = "FEAST_LINEAGE_MATERIALIZE_END"  # RFC 3339
ENV_FEATURE_VIEWS = "FEAST_LINEAGE_FEATURE_VIEWS"  # comma-separated; empty = what `feast materialize` picks
# Apply only: impact analysis before the registry is written.
ENV_ON_IMPACT = "FEAST_LINEAGE_ON_IMPACT"  # Allow | Warn | Block (spec.applyPolicy.onImpact)
ENV_APPROVED_PLAN = "FEAST_LINEAGE_APPROVED_PLAN"  # the plan hash an approver approved, if any
ENV_NAMESPACE = "FEAST_LINEAGE_NAMESPACE"  # the project's namespace: models are matched within it
# MLflow's own client settings, set by the operator from spec.mlflow.
MLFLOW_ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"
MLFLOW_ENV_TIMEOUT = "MLFLOW_HTTP_REQUEST_TIMEOUT"
MLFLOW_ENV_MAX_RETRIES = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
MLFLOW_ENV_USERNAME = "MLFLOW_TRACKING_USERNAME"
MLFLOW_ENV_PASSWORD = "MLFLOW_TRACKING_PASSWORD"
MLFLOW_ENV_TOKEN = "MLFLOW_TRACKING_TOKEN"
MLFLOW_ENV_SERVER_CERT_PATH = "MLFLOW_TRACKING_SERVER_CERT_PATH"  # CA bundle for an https server
MLFLOW_ENV_INSECURE_TLS = "MLFLOW_TRACKING_INSECURE_TLS"  # "true" skips TLS verification

TERMINATION_MESSAGE_LIMIT = 4096
"""Kubernetes keeps at most this many bytes of a termination message."""


def repo_digest(files: Mapping[str, bytes]) -> str:
    """The content address of a ConfigMap-sourced repo: sha256 over its keys and their bytes.

    The operator computes it from the ConfigMap it snapshots (``data`` as UTF-8, ``binaryData``
    decoded) and the runner from the files it finds mounted, so both name the same content the same
    way and the runner refuses a mount that is not what the operator recorded.
    """
    digest = hashlib.sha256()
    for key in sorted(files):
        content = files[key]
        digest.update(f"{len(key)}:{key}:{len(content)}:".encode())
        digest.update(content)
    return digest.hexdigest()


class _Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


CHANGE_CREATED = "+"
CHANGE_UPDATED = "~"
CHANGE_DELETED = "-"
"""Prefixes of the names in ``RunnerResult.changes``: ``+name`` created, ``~name`` updated, ``-name`` deleted."""
TRUNCATED_MARKER = "...(+{count})"
"""Last item of a list the runner shortened to fit the termination message: ``count`` items were dropped."""


class ObjectChanges(_Wire):
    """Names of Feast objects, by kind (feature views include on-demand and stream feature views).

    In ``changes`` each name carries a ``CHANGE_*`` prefix; in ``current`` names are plain.
    """

    feature_views: list[str] = Field(default_factory=list, alias="featureViews")
    feature_services: list[str] = Field(default_factory=list, alias="featureServices")
    entities: list[str] = Field(default_factory=list)


class ObjectCounts(_Wire):
    """How many Feast objects of each kind: small whatever the registry holds, so it always fits."""

    feature_views: int = Field(alias="featureViews")
    feature_services: int = Field(alias="featureServices")
    entities: int


class MlflowRun(_Wire):
    experiment: str
    experiment_id: str | None = Field(default=None, alias="experimentId")
    run_id: str = Field(alias="runId")
    run_url: str | None = Field(default=None, alias="runUrl")


IMPACT_LIST_LIMIT = 20
"""At most this many objects and model versions in an impact report (``truncated`` counts the rest)."""


class ImpactedModel(_Wire):
    """A registered model version that depends on a feature service an apply changes or deletes."""

    name: str
    version: str
    feature_service: str = Field(alias="featureService")


class ImpactReport(_Wire):
    """What an apply would change that registered models depend on, computed before it writes anything."""

    plan_hash: str = Field(alias="planHash")
    """Identifies the planned change exactly: an approval names it."""
    policy: Literal["Allow", "Warn", "Block"] = "Warn"
    """The onImpact policy the plan was judged by."""
    objects: list[str] = Field(default_factory=list)
    """Changed or deleted feature views and services models can depend on, ``~name``/``-name`` notation."""
    feature_services: list[str] = Field(default_factory=list, alias="featureServices")
    """Existing feature services the change affects (changed, deleted, or including a changed view)."""
    models: list[ImpactedModel] = Field(default_factory=list)
    """Registered model versions of the project's namespace that use an affected feature service."""
    truncated: int = 0
    """Objects and model versions left out of the lists above."""
    error: str | None = None
    """Why the model versions could not all be listed (the analysis is then incomplete)."""
    held: bool = False
    """The apply stopped before writing: onImpact is Block and this plan was not approved."""


class RunnerResult(_Wire):
    """The compact JSON a runner writes to its termination message."""

    operation: Literal["apply", "materialize"]
    ok: bool
    error: str | None = None
    """One line naming what failed (for a Python error: its last line)."""
    duration_seconds: float = Field(alias="durationSeconds")
    git_commit: str | None = Field(default=None, alias="gitCommit")
    changes: ObjectChanges | None = None
    """apply: objects created, updated or deleted (by spec, not by timestamps)."""
    current: ObjectChanges | None = None
    """apply: every object in the registry afterwards (dropped when the names do not fit)."""
    counts: ObjectCounts | None = None
    """apply: how many objects the registry holds afterwards; kept when ``current`` is dropped."""
    default_materialized: list[str] | None = Field(default=None, alias="defaultMaterialized")
    """apply: the feature views ``feast materialize`` materializes when it is given none."""
    not_materializable: dict[str, str] | None = Field(default=None, alias="notMaterializable")
    """apply: feature views Feast refuses to materialize even by name, with its reason."""
    window_start: str | None = Field(default=None, alias="windowStart")
    """materialize: event-time window actually materialized."""
    window_end: str | None = Field(default=None, alias="windowEnd")
    feature_views: list[str] | None = Field(default=None, alias="featureViews")
    """materialize: feature views materialized."""
    rows_written: dict[str, int] | None = Field(default=None, alias="rowsWritten")
    """materialize: rows written to the online store, per feature view (counted by the runner)."""
    repo_unavailable: str | None = Field(default=None, alias="repoUnavailable")
    """materialize: why the repo could not be fetched; Feast then ran from the registry alone."""
    impact: ImpactReport | None = None
    """apply: what the change would do to registered models, planned before writing."""
    mlflow: MlflowRun | None = None
    """The ops run, when it was logged."""
    mlflow_error: str | None = Field(default=None, alias="mlflowError")
    audit: dict[str, Any] | None = None
    """The audit record, when MLflow could not take it: the operator keeps it and delivers it later."""

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)
