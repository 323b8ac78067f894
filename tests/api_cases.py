"""Good and bad manifests for every validation rule of the featurelineage.io API.

One table for two consumers:

- the unit tests validate each manifest with `feast_lineage.api.validate_manifest`:
  a GoodCase must pass; a BadCase must raise ManifestError with an error whose
  path equals `field` and whose message contains `message`;
- the cluster tests create each manifest on a real API server: a GoodCase must
  be accepted; a BadCase with `server` set must be rejected with an error that
  contains `server_message`. Skip BadCases with `server=None`: operator-side
  checks the schema cannot express (the server accepts them), status (dropped
  on create) and type meta (a client finds no resource for it).
  UpdateCases create `old`, then update it to `new`.

When a manifest breaks a schema rule the API server skips the CEL rules, so
each case breaks exactly one rule.

Manifests carry no namespace, and every metadata.name is unique across the
tables, so a cluster test can create them all in one namespace.
"""

import copy
from dataclasses import dataclass
from typing import Any, Literal

from feast_lineage.api.materialization_job import (
    INCREMENTAL_NO_START,
    RANGE_NEEDS_WINDOW,
    SPEC_IMMUTABLE,
    START_BEFORE_END,
)
from feast_lineage.api.mlflow_config import CREDENTIALS_PAIRED, CREDENTIALS_SOME_KEY, TRACKING_URI_NO_USER_INFO
from feast_lineage.api.repo import GIT_PATH_RELATIVE, REPO_EXACTLY_ONE

Manifest = dict[str, Any]

ServerCheck = Literal["schema", "cel", "strict"]
"""How the API server rejects a manifest: its OpenAPI schema, a CEL rule, or, for unknown fields, only
with fieldValidation=Strict (kubectl's default; other clients get a warning and the field is dropped)."""

# Fragments of the API server's messages for schema rules.
SERVER_REQUIRED = "Required value"
SERVER_ENUM = "Unsupported value"
SERVER_PATTERN = "should match"
SERVER_MINIMUM = "should be greater than or equal to"
SERVER_MAXIMUM = "should be less than or equal to"
SERVER_MIN_LENGTH = "should be at least"
SERVER_MAX_LENGTH = "Too long"
SERVER_MAX_ITEMS = "Too many"
SERVER_TYPE = "must be of type"
SERVER_DUPLICATE = "Duplicate value"
SERVER_UNKNOWN_FIELD = "unknown field"

# Fragments of pydantic's messages, as validate_manifest reports them.
REQUIRED = "Field required"
PATTERN = "String should match pattern"
MINIMUM = "greater than or equal to"
MAXIMUM = "less than or equal to"
EXTRA = "Extra inputs are not permitted"
DUPLICATE = "duplicate"


@dataclass(frozen=True)
class GoodCase:
    """A manifest that both the models and the API server accept."""

    id: str
    manifest: Manifest


@dataclass(frozen=True)
class BadCase:
    """A manifest that breaks exactly one rule."""

    id: str
    manifest: Manifest
    field: str
    """Path validate_manifest reports, e.g. `spec.repo` or `spec.runner.env[0].name`."""
    message: str
    """Fragment of validate_manifest's message for that path."""
    server: ServerCheck | None
    """How the API server rejects the manifest; None when it does not (see the module docstring)."""
    server_message: str = ""
    """Fragment of the API server's error; CEL rules give their own message."""


@dataclass(frozen=True)
class UpdateCase:
    """An update of an existing object: rejected when `server_message` is set, else accepted."""

    id: str
    old: Manifest
    new: Manifest
    server_message: str | None


REMOVE = object()
"""Value in a change set that deletes the key."""


def changed(manifest: Manifest, changes: dict[str, Any]) -> Manifest:
    """A deep copy of `manifest` with each dotted path set to its value (or removed)."""
    result = copy.deepcopy(manifest)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = result
        for key in parents:
            node = node.setdefault(key, {})
        if value is REMOVE:
            node.pop(last, None)
        else:
            node[last] = copy.deepcopy(value)
    return result


def named(manifest: Manifest, name: str) -> Manifest:
    return changed(manifest, {"metadata.name": name})


MINIMAL_PROJECT: Manifest = {
    "apiVersion": "featurelineage.io/v1alpha1",
    "kind": "FeatureStoreProject",
    "metadata": {"name": "minimal"},
    "spec": {
        "project": "driver_stats",
        "repo": {"configMap": {"name": "driver-stats-repo"}},
        "featureStore": {"registry": {"path": "/tmp/feast-lineage-cases/registry.db"}},
    },
}

MINIMAL_JOB: Manifest = {
    "apiVersion": "featurelineage.io/v1alpha1",
    "kind": "MaterializationJob",
    "metadata": {"name": "minimal"},
    "spec": {
        "projectRef": {"name": "driver-stats"},
        "mode": "Range",
        "startTime": "2026-11-02T00:00:00Z",
        "endTime": "2026-11-09T00:00:00Z",
    },
}

FULL_PROJECT_SPEC: dict[str, Any] = {
    "project": "driver_stats",
    "repo": {
        "git": {
            "url": "https://git.example.com/data/features.git",
            "revision": "v1.2.0",
            "path": "driver_stats/feature_repo",
            "secretRef": {"name": "git-credentials"},
        }
    },
    "featureStore": {
        "provider": "local",
        "registry": {
            "registryType": "sql",
            "path": "postgresql://feast:${REGISTRY_PASSWORD}@postgres:5432/feast",
            "cacheTtlSeconds": 60,
        },
        "onlineStore": {
            "type": "redis",
            "settings": {"connection_string": "redis:6379,password=${REDIS_PASSWORD}", "key_ttl_seconds": 86400},
        },
        "offlineStore": {"type": "file"},
        "entityKeySerializationVersion": 3,
        "secretEnv": [
            {"name": "REGISTRY_PASSWORD", "secretKeyRef": {"name": "feast-db", "key": "password"}},
            {"name": "REDIS_PASSWORD", "secretKeyRef": {"name": "feast-redis", "key": "password"}},
        ],
    },
    "mlflow": {
        "enabled": True,
        "trackingUri": "http://mlflow.mlflow.svc:5000",
        "credentials": {"secretName": "mlflow-auth", "usernameKey": "username", "passwordKey": "password"},
        "autoLog": True,
        "autoLogEntityDf": True,
        "entityDfMaxRows": 50000,
        "logOperations": True,
        "opsExperimentSuffix": "-ops",
        "requestTimeoutSeconds": 5,
        "maxRetries": 2,
    },
    "materialization": {
        "schedule": "15 * * * *",
        "timeZone": "Europe/Berlin",
        "startingDeadlineSeconds": 600,
        "concurrencyPolicy": "Replace",
        "suspend": False,
        "featureViews": ["driver_hourly_stats"],
        "successfulRunsHistoryLimit": 5,
        "failedRunsHistoryLimit": 2,
    },
    "runner": {
        "image": "registry.example.com/feast-lineage-runner:0.1.0",
        "imagePullPolicy": "IfNotPresent",
        "serviceAccountName": "feast-runner",
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": 1, "memory": "1Gi"}},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "feast", "effect": "NoSchedule"}],
        "volumes": [{"name": "registry", "persistentVolumeClaim": {"claimName": "feast-registry"}}],
        "volumeMounts": [{"name": "registry", "mountPath": "/var/lib/feast"}],
        "backoffLimit": 2,
        "activeDeadlineSeconds": 3600,
        "env": [{"name": "FEAST_USAGE", "value": "False"}],
    },
    "injection": {"enabled": True, "namespaceDefault": True, "mountPath": "/etc/feast"},
}

VALID_STATUS: dict[str, Any] = {
    "observedGeneration": 3,
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "observedGeneration": 3,
            "lastTransitionTime": "2026-11-09T10:00:00Z",
            "reason": "Applied",
            "message": "",
        }
    ],
    "lastApply": {
        "revision": "v1.2.0",
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "time": "2026-11-09T10:00:00Z",
        "jobName": "driver-stats-apply-1a2b3c",
        "trigger": "SpecChanged",
        "mlflow": {"experiment": "driver_stats-feast-ops", "runId": "abc123", "runUrl": "http://mlflow/#/runs/1"},
        "changes": {"featureViews": ["driver_hourly_stats"], "featureServices": [], "entities": ["driver"]},
        "durationSeconds": 12.5,
    },
    "featureViews": ["driver_daily_trips", "driver_hourly_stats"],
    "pendingAudit": [{"operation": "apply", "time": "2026-11-09T10:00:00Z"}],
}


def project(name: str, changes: dict[str, Any] | None = None) -> Manifest:
    return named(changed(MINIMAL_PROJECT, changes or {}), f"fsp-{name}")


def job(name: str, changes: dict[str, Any] | None = None) -> Manifest:
    return named(changed(MINIMAL_JOB, changes or {}), f"mj-{name}")


def bad_project(
    id: str,
    changes: dict[str, Any],
    field: str,
    message: str,
    server: ServerCheck | None,
    server_message: str = "",
) -> BadCase:
    return BadCase(f"fsp-{id}", project(id, changes), field, message, server, server_message)


def bad_job(
    id: str,
    changes: dict[str, Any],
    field: str,
    message: str,
    server: ServerCheck | None,
    server_message: str = "",
) -> BadCase:
    return BadCase(f"mj-{id}", job(id, changes), field, message, server, server_message)


GOOD_CASES: list[GoodCase] = [
    GoodCase("fsp-minimal", project("minimal")),
    GoodCase("fsp-full", project("full", {"spec": FULL_PROJECT_SPEC})),
    GoodCase(
        "fsp-image-repo-default-image",
        project("image-repo-default-image", {"spec.repo": {"image": {"path": "/opt/feature_repo"}}}),
    ),
    GoodCase(
        "fsp-git-ssh-default-revision",
        project("git-ssh-default-revision", {"spec.repo": {"git": {"url": "git@github.com:org/repo.git"}}}),
    ),
    GoodCase(
        "fsp-mlflow-token",
        project(
            "mlflow-token",
            {"spec.mlflow": {"trackingUri": "databricks", "credentials": {"secretName": "db", "tokenKey": "t"}}},
        ),
    ),
    GoodCase("fsp-schedule-macro", project("schedule-macro", {"spec.materialization": {"schedule": "@hourly"}})),
    GoodCase("fsp-with-status", project("with-status", {"status": VALID_STATUS})),
    GoodCase("mj-range", job("range")),
    GoodCase("mj-incremental", job("incremental", {"spec.mode": "Incremental", "spec.startTime": REMOVE})),
    GoodCase(
        "mj-incremental-no-end",
        job("incremental-no-end", {"spec.mode": "Incremental", "spec.startTime": REMOVE, "spec.endTime": REMOVE}),
    ),
    GoodCase(
        "mj-with-status",
        job(
            "with-status",
            {
                "status": {
                    "observedGeneration": 1,
                    "phase": "Succeeded",
                    "jobName": "mj-with-status-materialize",
                    "window": {"start": "2026-11-02T00:00:00Z", "end": "2026-11-09T00:00:00Z"},
                    "startTime": "2026-11-09T10:00:00Z",
                    "completionTime": "2026-11-09T10:01:00Z",
                    "durationSeconds": 60,
                    "mlflow": {"experiment": "driver_stats-feast-ops", "runId": "def456"},
                    "provenance": {"triggeredBy": "gitops", "gitRevision": "0123abc", "manager": "argocd"},
                }
            },
        ),
    ),
    GoodCase(
        "mj-range-offsets",
        job(
            "range-offsets",
            {
                "spec.startTime": "2026-11-02T01:00:00+01:00",
                "spec.endTime": "2026-11-02T00:30:00Z",
                "spec.featureViews": ["driver_hourly_stats", "driver_daily_trips"],
                "spec.backoffLimit": 10,
                "spec.activeDeadlineSeconds": 600,
            },
        ),
    ),
]

PROJECT_CASES: list[BadCase] = [
    # spec.project
    bad_project("project-missing", {"spec.project": REMOVE}, "spec.project", REQUIRED, "schema", SERVER_REQUIRED),
    bad_project("project-pattern", {"spec.project": "driver-stats"}, "spec.project", PATTERN, "schema", SERVER_PATTERN),
    bad_project(
        "project-too-long", {"spec.project": "p" * 64}, "spec.project", "at most 63", "schema", SERVER_MAX_LENGTH
    ),
    # spec.repo
    bad_project("repo-missing", {"spec.repo": REMOVE}, "spec.repo", REQUIRED, "schema", SERVER_REQUIRED),
    bad_project("repo-none", {"spec.repo": {}}, "spec.repo", REPO_EXACTLY_ONE.message, "cel", REPO_EXACTLY_ONE.message),
    bad_project(
        "repo-two",
        {"spec.repo.git": {"url": "https://git.example.com/r.git"}},
        "spec.repo",
        REPO_EXACTLY_ONE.message,
        "cel",
        REPO_EXACTLY_ONE.message,
    ),
    bad_project(
        "repo-configmap-name",
        {"spec.repo.configMap.name": "Driver_Repo"},
        "spec.repo.configMap.name",
        PATTERN,
        "schema",
        SERVER_PATTERN,
    ),
    bad_project(
        "repo-configmap-name-missing",
        {"spec.repo.configMap": {}},
        "spec.repo.configMap.name",
        REQUIRED,
        "schema",
        SERVER_REQUIRED,
    ),
    bad_project(
        "repo-git-url-missing",
        {"spec.repo": {"git": {"revision": "main"}}},
        "spec.repo.git.url",
        REQUIRED,
        "schema",
        SERVER_REQUIRED,
    ),
    bad_project(
        "repo-git-url-pattern",
        {"spec.repo": {"git": {"url": "not a url"}}},
        "spec.repo.git.url",
        PATTERN,
        "schema",
        SERVER_PATTERN,
    ),
    bad_project(
        "repo-git-path-absolute",
        {"spec.repo": {"git": {"url": "https://git.example.com/r.git", "path": "/etc"}}},
        "spec.repo.git",
        GIT_PATH_RELATIVE.message,
        "cel",
        GIT_PATH_RELATIVE.message,
    ),
    bad_project(
        "repo-git-path-dotdot",
        {"spec.repo": {"git": {"url": "https://git.example.com/r.git", "path": "repo/../../etc"}}},
        "spec.repo.git",
        GIT_PATH_RELATIVE.message,
        "cel",
        GIT_PATH_RELATIVE.message,
    ),
    bad_project(
        "repo-git-revision-empty",
        {"spec.repo": {"git": {"url": "https://git.example.com/r.git", "revision": ""}}},
        "spec.repo.git.revision",
        "at least 1",
        "schema",
        SERVER_MIN_LENGTH,
    ),
    bad_project(
        "repo-git-secretref-name-missing",
        {"spec.repo": {"git": {"url": "https://git.example.com/r.git", "secretRef": {}}}},
        "spec.repo.git.secretRef.name",
        REQUIRED,
        "schema",
        SERVER_REQUIRED,
    ),
    bad_project(
        "repo-git-cabundleref-name-missing",
        {"spec.repo": {"git": {"url": "https://git.example.com/r.git", "caBundleRef": {"key": "k"}}}},
        "spec.repo.git.caBundleRef.name",
        REQUIRED,
        "schema",
        SERVER_REQUIRED,
    ),
    bad_project(
        "repo-git-cabundleref-key-missing",
        {"spec.repo": {"git": {"url": "https://git.example.com/r.git", "caBundleRef": {"name": "trust"}}}},
        "spec.repo.git.caBundleRef.key",
        REQUIRED,
        "schema",
        SERVER_REQUIRED,
    ),
    bad_project(
        "repo-git-knownhostsref-name-missing",
        {"spec.repo": {"git": {"url": "https://git.example.com/r.git", "knownHostsRef": {"key": "k"}}}},
        "spec.repo.git.knownHostsRef.name",
        REQUIRED,
        "schema",
        SERVER_REQUIRED,
    ),
    bad_project(
        "repo-git-knownhostsref-key-missing",
        {"spec.repo": {"git": {"url": "https://git.example.com/r.git", "knownHostsRef": {"name": "trust"}}}},
        "spec.repo.git.knownHostsRef.key",
        REQUIRED,
        "schema",
        SERVER_REQUIRED,
    ),
    bad_project(
        "repo-image-path-relative",
        {"spec.repo": {"image": {"path": "feature_repo"}}},
        "spec.repo.image.path",
        PATTERN,
        "schema",
        SERVER_PATTERN,
    ),
    bad_project(
        "repo-image-path-missing",
        {"spec.repo": {"image": {"image": "example/repo:1"}}},
        "spec.repo.image.path",
        REQUIRED,
        "schema",
        SERVER_REQUIRED,
    ),
    # spec.featureStore
    bad_project(
        "featurestore-missing",
        {"spec.featureStore": REMOVE},
        "spec.featureStore",
        REQUIRED,
        "schema",
        SERVER_REQUIRED,
    ),
    bad_project(
        "registry-missing",
        {"spec.featureStore.registry": REMOVE},
        "spec.featureStore.registry",
        REQUIRED,
        "schema",
        SERVER_REQUIRED,
    ),
    bad_project(
        "registry-path-missing",
        {"spec.featureStore.registry": {"registryType": "file"}},
        "spec.featureStore.registry.path",
        REQUIRED,
        "schema",
        SERVER_REQUIRED,
    ),
    bad_project(
        "registry-type-enum",
        {"spec.featureStore.registry.registryType": "s3"},
        "spec.featureStore.registry.registryType",
        "Input should be 'file', 'sql' or 'remote'",
        "schema",
        SERVER_ENUM,
    ),
    bad_project(
        "registry-cache-ttl-negative",
        {"spec.featureStore.registry.cacheTtlSeconds": -1},
        "spec.featureStore.registry.cacheTtlSeconds",
        MINIMUM,
        "schema",
        SERVER_MINIMUM,
    ),
    bad_project(
        "online-store-type-missing",
        {"spec.featureStore.onlineStore": {"settings": {"path": "online.db"}}},
        "spec.featureStore.onlineStore.type",
        REQUIRED,
        "schema",
        SERVER_REQUIRED,
    ),
    bad_project(
        "offline-store-type-missing",
        {"spec.featureStore.offlineStore": {}},
        "spec.featureStore.offlineStore.type",
        REQUIRED,
        "schema",
        SERVER_REQUIRED,
    ),
    bad_project(
        "entity-key-version-low",
        {"spec.featureStore.entityKeySerializationVersion": 0},
        "spec.featureStore.entityKeySerializationVersion",
        MINIMUM,
        "schema",
        SERVER_MINIMUM,
    ),
    bad_project(
        "entity-key-version-high",
        {"spec.featureStore.entityKeySerializationVersion": 4},
        "spec.featureStore.entityKeySerializationVersion",
        MAXIMUM,
        "schema",
        SERVER_MAXIMUM,
    ),
    bad_project(
        "secret-env-name-pattern",
        {"spec.featureStore.secretEnv": [{"name": "db_password", "secretKeyRef": {"name": "db", "key": "p"}}]},
        "spec.featureStore.secretEnv[0].name",
        PATTERN,
        "schema",
        SERVER_PATTERN,
    ),
    bad_project(
        "secret-env-duplicate",
        {
            "spec.featureStore.secretEnv": [
                {"name": "DB_PASSWORD", "secretKeyRef": {"name": "db", "key": "p"}},
                {"name": "DB_PASSWORD", "secretKeyRef": {"name": "db2", "key": "p"}},
            ]
        },
        "spec.featureStore.secretEnv",
        DUPLICATE,
        "schema",
        SERVER_DUPLICATE,
    ),
    bad_project(
        "secret-env-key-missing",
        {"spec.featureStore.secretEnv": [{"name": "DB_PASSWORD", "secretKeyRef": {"name": "db"}}]},
        "spec.featureStore.secretEnv[0].secretKeyRef.key",
        REQUIRED,
        "schema",
        SERVER_REQUIRED,
    ),
    bad_project(
        "secret-env-key-pattern",
        {"spec.featureStore.secretEnv": [{"name": "DB_PASSWORD", "secretKeyRef": {"name": "db", "key": "a/b"}}]},
        "spec.featureStore.secretEnv[0].secretKeyRef.key",
        PATTERN,
        "schema",
        SERVER_PATTERN,
    ),
    # spec.mlflow
    bad_project(
        "mlflow-enabled-type",
        {"spec.mlflow.enabled": "maybe"},
        "spec.mlflow.enabled",
        "valid boolean",
        "schema",
        SERVER_TYPE,
    ),
    bad_project(
        "mlflow-tracking-uri-pattern",
        {"spec.mlflow.trackingUri": "ftp://mlflow.example.com"},
        "spec.mlflow.trackingUri",
        PATTERN,
        "schema",
        SERVER_PATTERN,
    ),
    bad_project(
        # The refusal names the rule, never the URI: its user info may hold a password.
        "mlflow-tracking-uri-user-info",
        {"spec.mlflow.trackingUri": "https://alice:hunter2-canary@mlflow.example.com"},
        "spec.mlflow",
        TRACKING_URI_NO_USER_INFO.message,
        "cel",
        TRACKING_URI_NO_USER_INFO.message,
    ),
    bad_project(
        "mlflow-credentials-unpaired",
        {"spec.mlflow.credentials": {"secretName": "mlflow-auth", "usernameKey": "username"}},
        "spec.mlflow.credentials",
        CREDENTIALS_PAIRED.message,
        "cel",
        CREDENTIALS_PAIRED.message,
    ),
    bad_project(
        "mlflow-credentials-no-key",
        {"spec.mlflow.credentials": {"secretName": "mlflow-auth"}},
        "spec.mlflow.credentials",
        CREDENTIALS_SOME_KEY.message,
        "cel",
        CREDENTIALS_SOME_KEY.message,
    ),
    bad_project(
        "mlflow-credentials-secret-missing",
        {"spec.mlflow.credentials": {"tokenKey": "token"}},
        "spec.mlflow.credentials.secretName",
        REQUIRED,
        "schema",
        SERVER_REQUIRED,
    ),
    bad_project(
        "mlflow-entity-df-max-rows",
        {"spec.mlflow.entityDfMaxRows": 0},
        "spec.mlflow.entityDfMaxRows",
        MINIMUM,
        "schema",
        SERVER_MINIMUM,
    ),
    bad_project(
        "mlflow-ops-suffix-too-long",
        {"spec.mlflow.opsExperimentSuffix": "-" * 65},
        "spec.mlflow.opsExperimentSuffix",
        "at most 64",
        "schema",
        SERVER_MAX_LENGTH,
    ),
    bad_project(
        "mlflow-timeout-low",
        {"spec.mlflow.requestTimeoutSeconds": 0},
        "spec.mlflow.requestTimeoutSeconds",
        MINIMUM,
        "schema",
        SERVER_MINIMUM,
    ),
    bad_project(
        "mlflow-timeout-high",
        {"spec.mlflow.requestTimeoutSeconds": 301},
        "spec.mlflow.requestTimeoutSeconds",
        MAXIMUM,
        "schema",
        SERVER_MAXIMUM,
    ),
    bad_project(
        "mlflow-retries-low",
        {"spec.mlflow.maxRetries": -1},
        "spec.mlflow.maxRetries",
        MINIMUM,
        "schema",
        SERVER_MINIMUM,
    ),
    bad_project(
        "mlflow-retries-high",
        {"spec.mlflow.maxRetries": 11},
        "spec.mlflow.maxRetries",
        MAXIMUM,
        "schema",
        SERVER_MAXIMUM,
    ),
    # spec.materialization
    bad_project(
        "schedule-missing",
        {"spec.materialization": {"timeZone": "UTC"}},
        "spec.materialization.schedule",
        REQUIRED,
        "schema",
        SERVER_REQUIRED,
    ),
    bad_project(
        "schedule-shape",
        {"spec.materialization": {"schedule": "every hour"}},
        "spec.materialization.schedule",
        PATTERN,
        "schema",
        SERVER_PATTERN,
    ),
    bad_project(
        "schedule-field-range",
        {"spec.materialization": {"schedule": "61 * * * *"}},
        "spec.materialization.schedule",
        "invalid cron expression",
        None,
    ),
    bad_project(
        "time-zone-unknown",
        {"spec.materialization": {"schedule": "@daily", "timeZone": "Mars/Olympus_Mons"}},
        "spec.materialization.timeZone",
        "unknown time zone",
        None,
    ),
    bad_project(
        "time-zone-pattern",
        {"spec.materialization": {"schedule": "@daily", "timeZone": "UTC+1:00"}},
        "spec.materialization.timeZone",
        PATTERN,
        "schema",
        SERVER_PATTERN,
    ),
    bad_project(
        "starting-deadline-low",
        {"spec.materialization": {"schedule": "@daily", "startingDeadlineSeconds": 0}},
        "spec.materialization.startingDeadlineSeconds",
        MINIMUM,
        "schema",
        SERVER_MINIMUM,
    ),
    bad_project(
        "concurrency-policy-enum",
        {"spec.materialization": {"schedule": "@daily", "concurrencyPolicy": "Sometimes"}},
        "spec.materialization.concurrencyPolicy",
        "Input should be 'Forbid', 'Replace' or 'Allow'",
        "schema",
        SERVER_ENUM,
    ),
    bad_project(
        "schedule-feature-views-duplicate",
        {"spec.materialization": {"schedule": "@daily", "featureViews": ["a", "a"]}},
        "spec.materialization.featureViews",
        DUPLICATE,
        "schema",
        SERVER_DUPLICATE,
    ),
    bad_project(
        "successful-history-negative",
        {"spec.materialization": {"schedule": "@daily", "successfulRunsHistoryLimit": -1}},
        "spec.materialization.successfulRunsHistoryLimit",
        MINIMUM,
        "schema",
        SERVER_MINIMUM,
    ),
    bad_project(
        "failed-history-negative",
        {"spec.materialization": {"schedule": "@daily", "failedRunsHistoryLimit": -1}},
        "spec.materialization.failedRunsHistoryLimit",
        MINIMUM,
        "schema",
        SERVER_MINIMUM,
    ),
    # spec.runner
    bad_project(
        "runner-pull-policy-enum",
        {"spec.runner": {"imagePullPolicy": "Sometimes"}},
        "spec.runner.imagePullPolicy",
        "Input should be 'Always', 'IfNotPresent' or 'Never'",
        "schema",
        SERVER_ENUM,
    ),
    bad_project(
        "runner-backoff-low",
        {"spec.runner": {"backoffLimit": -1}},
        "spec.runner.backoffLimit",
        MINIMUM,
        "schema",
        SERVER_MINIMUM,
    ),
    bad_project(
        "runner-backoff-high",
        {"spec.runner": {"backoffLimit": 11}},
        "spec.runner.backoffLimit",
        MAXIMUM,
        "schema",
        SERVER_MAXIMUM,
    ),
    bad_project(
        "runner-backoff-string",
        {"spec.runner": {"backoffLimit": "3"}},
        "spec.runner.backoffLimit",
        "valid integer",
        "schema",
        SERVER_TYPE,
    ),
    bad_project(
        "runner-deadline-low",
        {"spec.runner": {"activeDeadlineSeconds": 0}},
        "spec.runner.activeDeadlineSeconds",
        MINIMUM,
        "schema",
        SERVER_MINIMUM,
    ),
    bad_project(
        "runner-quantity",
        {"spec.runner": {"resources": {"limits": {"cpu": "lots"}}}},
        "spec.runner.resources.limits.cpu",
        "should be an integer or match",
        "schema",
        SERVER_PATTERN,
    ),
    bad_project(
        "runner-env-name",
        {"spec.runner": {"env": [{"name": "1ST", "value": "x"}]}},
        "spec.runner.env[0].name",
        PATTERN,
        "schema",
        SERVER_PATTERN,
    ),
    bad_project(
        "runner-env-duplicate",
        {"spec.runner": {"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}},
        "spec.runner.env",
        DUPLICATE,
        "schema",
        SERVER_DUPLICATE,
    ),
    bad_project(
        "runner-node-selector-type",
        {"spec.runner": {"nodeSelector": {"disk": 1}}},
        "spec.runner.nodeSelector.disk",
        "valid string",
        "schema",
        SERVER_TYPE,
    ),
    # spec.injection
    bad_project(
        "injection-mount-path",
        {"spec.injection": {"mountPath": "etc/feast"}},
        "spec.injection.mountPath",
        PATTERN,
        "schema",
        SERVER_PATTERN,
    ),
    # unknown fields
    bad_project("unknown-spec-field", {"spec.registry": "x"}, "spec.registry", EXTRA, "strict", SERVER_UNKNOWN_FIELD),
    bad_project(
        "unknown-nested-field",
        {"spec.mlflow": {"tracking_uri": "http://mlflow:5000"}},
        "spec.mlflow.tracking_uri",
        EXTRA,
        "strict",
        SERVER_UNKNOWN_FIELD,
    ),
    # status: the server drops status on create, so only the models check it there.
    bad_project(
        "status-condition-status",
        {"status": {"conditions": [{**VALID_STATUS["conditions"][0], "status": "Maybe"}]}},
        "status.conditions[0].status",
        "Input should be 'True', 'False' or 'Unknown'",
        None,
    ),
    bad_project(
        "status-condition-duplicate",
        {"status": {"conditions": [VALID_STATUS["conditions"][0], VALID_STATUS["conditions"][0]]}},
        "status.conditions",
        DUPLICATE,
        None,
    ),
    bad_project(
        "status-condition-reason",
        {"status": {"conditions": [{**VALID_STATUS["conditions"][0], "reason": "not applied"}]}},
        "status.conditions[0].reason",
        PATTERN,
        None,
    ),
    # type meta
    bad_project("api-version", {"apiVersion": "featurelineage.io/v1"}, "apiVersion", "should be", None),
]

JOB_CASES: list[BadCase] = [
    bad_job("project-ref-missing", {"spec.projectRef": REMOVE}, "spec.projectRef", REQUIRED, "schema", SERVER_REQUIRED),
    bad_job(
        "project-ref-name-missing",
        {"spec.projectRef": {}},
        "spec.projectRef.name",
        REQUIRED,
        "schema",
        SERVER_REQUIRED,
    ),
    bad_job(
        "project-ref-name",
        {"spec.projectRef": {"name": "Driver Stats"}},
        "spec.projectRef.name",
        PATTERN,
        "schema",
        SERVER_PATTERN,
    ),
    bad_job(
        "mode-enum",
        {"spec.mode": "Full"},
        "spec.mode",
        "Input should be 'Incremental' or 'Range'",
        "schema",
        SERVER_ENUM,
    ),
    bad_job(
        "range-no-end",
        {"spec.endTime": REMOVE},
        "spec",
        RANGE_NEEDS_WINDOW.message,
        "cel",
        RANGE_NEEDS_WINDOW.message,
    ),
    bad_job(
        "range-no-window",
        {"spec.startTime": REMOVE, "spec.endTime": REMOVE},
        "spec",
        RANGE_NEEDS_WINDOW.message,
        "cel",
        RANGE_NEEDS_WINDOW.message,
    ),
    bad_job(
        "incremental-start",
        {"spec.mode": "Incremental"},
        "spec",
        INCREMENTAL_NO_START.message,
        "cel",
        INCREMENTAL_NO_START.message,
    ),
    bad_job(
        "start-equals-end",
        {"spec.endTime": "2026-11-02T00:00:00Z"},
        "spec",
        START_BEFORE_END.message,
        "cel",
        START_BEFORE_END.message,
    ),
    bad_job(
        "start-after-end",
        {"spec.startTime": "2026-11-09T00:00:00Z", "spec.endTime": "2026-11-09T00:30:00+01:00"},
        "spec",
        START_BEFORE_END.message,
        "cel",
        START_BEFORE_END.message,
    ),
    bad_job(
        "start-time-format",
        {"spec.startTime": "last monday"},
        "spec.startTime",
        "valid datetime",
        "schema",
        SERVER_TYPE,
    ),
    bad_job(
        "end-time-no-offset",
        {"spec.endTime": "2026-11-09T00:00:00"},
        "spec.endTime",
        "timezone",
        "schema",
        SERVER_TYPE,
    ),
    bad_job(
        "feature-views-duplicate",
        {"spec.featureViews": ["driver_hourly_stats", "driver_hourly_stats"]},
        "spec.featureViews",
        DUPLICATE,
        "schema",
        SERVER_DUPLICATE,
    ),
    bad_job(
        "feature-views-too-many",
        {"spec.featureViews": [f"view_{index}" for index in range(101)]},
        "spec.featureViews",
        "at most 100 items",
        "schema",
        SERVER_MAX_ITEMS,
    ),
    bad_job(
        "feature-view-empty",
        {"spec.featureViews": [""]},
        "spec.featureViews[0]",
        "at least 1 character",
        "schema",
        SERVER_MIN_LENGTH,
    ),
    bad_job("backoff-low", {"spec.backoffLimit": -1}, "spec.backoffLimit", MINIMUM, "schema", SERVER_MINIMUM),
    bad_job("backoff-high", {"spec.backoffLimit": 11}, "spec.backoffLimit", MAXIMUM, "schema", SERVER_MAXIMUM),
    bad_job(
        "deadline-low",
        {"spec.activeDeadlineSeconds": 0},
        "spec.activeDeadlineSeconds",
        MINIMUM,
        "schema",
        SERVER_MINIMUM,
    ),
    bad_job("unknown-spec-field", {"spec.window": "1d"}, "spec.window", EXTRA, "strict", SERVER_UNKNOWN_FIELD),
    bad_job(
        "status-phase",
        {"status": {"phase": "Done"}},
        "status.phase",
        "Input should be 'Pending', 'Running', 'Succeeded' or 'Failed'",
        None,
    ),
    bad_job(
        "status-triggered-by",
        {"status": {"provenance": {"triggeredBy": "cron"}}},
        "status.provenance.triggeredBy",
        "Input should be 'schedule', 'gitops' or 'manual'",
        None,
    ),
    bad_job("kind", {"kind": "MaterializationRun"}, "kind", "should be one of", None),
]

BAD_CASES: list[BadCase] = PROJECT_CASES + JOB_CASES

UPDATE_CASES: list[UpdateCase] = [
    UpdateCase(
        "mj-spec-immutable",
        job("update-spec"),
        job("update-spec", {"spec.endTime": "2026-11-10T00:00:00Z"}),
        SPEC_IMMUTABLE.message,
    ),
    UpdateCase(
        "mj-labels-mutable",
        job("update-labels"),
        job("update-labels", {"metadata.labels": {"team": "drivers"}}),
        None,
    ),
    UpdateCase(
        "fsp-spec-mutable",
        project("update-spec"),
        project("update-spec", {"spec.mlflow": {"logOperations": False}}),
        None,
    ),
]
