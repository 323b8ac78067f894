"""Render the Kubernetes Job that runs ``feast-lineage runner <operation>`` for a project.

Secrets reach the pod only as ``secretKeyRef`` env vars, each named by the spec;
the repo and the rendered ``feature_store.yaml`` arrive as read-only volumes; the
pod runs with the restricted security profile and without an API token, since
the runner never talks to Kubernetes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from feast_lineage import contract
from feast_lineage.api import FeatureStoreProject, MlflowConfig
from feast_lineage.domain.apply_plan import RepoIdentity
from feast_lineage.domain.tenancy import git_protocol

_RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


DEFAULT_RESOURCES: dict[str, dict[str, int | str]] = {
    "requests": {"cpu": "250m", "memory": "512Mi"},
    "limits": {"cpu": "2", "memory": "2Gi"},
}
"""Bounds of a runner container whose project sets no spec.runner.resources (Feast alone takes ~200Mi)."""
DEFAULT_DEADLINE_SECONDS = {"apply": 3600, "materialize": 6 * 3600}
"""activeDeadlineSeconds when neither the run nor spec.runner sets one: no Job runs forever."""
DEFAULT_WORKSPACE_SIZE_LIMIT = "2Gi"


@dataclass(frozen=True)
class RunnerJobRequest:
    """Everything about one runner Job that does not come from the project spec."""

    operation: str  # apply | materialize
    job_name: str
    runner_image: str
    runner_config_map: str
    repo: RepoIdentity
    provenance: dict[str, str]
    audit_id: str
    labels: dict[str, str]
    annotations: dict[str, str]
    owner: dict[str, Any]
    backoff_limit: int
    tracking_uri: str | None = None
    """The project's tracking URI, or the operator's default for projects without one."""
    active_deadline_seconds: int | None = None
    extra_env: list[dict[str, Any]] = field(default_factory=list)
    git_protocols: tuple[str, ...] = ("git", "https", "ssh")
    """Protocols the runner's git may use (the administrator's allow-list)."""
    repo_snapshot: str | None = None
    """ConfigMap source: the immutable snapshot of ``repo`` to mount (never the live ConfigMap)."""


def _secret_env(name: str, secret: str, key: str, optional: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def _value_env(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def mlflow_env(project: FeatureStoreProject, tracking_uri: str | None) -> list[dict[str, Any]]:
    """MLflow client settings: tracking URI, bounded timeouts, credentials by reference."""
    mlflow = project.spec.mlflow
    env = [
        _value_env(contract.MLFLOW_ENV_TIMEOUT, str(mlflow.request_timeout_seconds)),
        _value_env(contract.MLFLOW_ENV_MAX_RETRIES, str(mlflow.max_retries)),
    ]
    if tracking_uri:
        env.append(_value_env(contract.MLFLOW_ENV_TRACKING_URI, tracking_uri))
    return env + mlflow_credentials_env(mlflow)


def mlflow_credentials_env(mlflow: MlflowConfig) -> list[dict[str, Any]]:
    """MLFLOW_TRACKING_USERNAME/_PASSWORD/_TOKEN by secretKeyRef, as spec.mlflow.credentials names them."""
    credentials = mlflow.credentials
    if credentials is None:
        return []
    return [
        _secret_env(variable, credentials.secret_name, key)
        for variable, key in (
            (contract.MLFLOW_ENV_USERNAME, credentials.username_key),
            (contract.MLFLOW_ENV_PASSWORD, credentials.password_key),
            (contract.MLFLOW_ENV_TOKEN, credentials.token_key),
        )
        if key
    ]


def store_secret_env(project: FeatureStoreProject) -> list[dict[str, Any]]:
    """The spec's secretEnv entries, which feature_store.yaml references as ${NAME}."""
    return [
        _secret_env(entry.name, entry.secret_key_ref.name, entry.secret_key_ref.key)
        for entry in project.spec.feature_store.secret_env
    ]


def _repo_env_and_volumes(
    project: FeatureStoreProject, request: RunnerJobRequest
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    source, repo, git_protocols = project.spec.repo, request.repo, request.git_protocols
    env = [_value_env(contract.ENV_REPO_KIND, repo.kind)]
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if source.config_map is not None:
        env.append(_value_env(contract.ENV_REPO_DIR, contract.REPO_CONFIGMAP_MOUNT))
        if repo.kind == "configMap" and repo.fingerprint:
            env.append(_value_env(contract.ENV_REPO_DIGEST, repo.fingerprint))
        volumes.append({"name": "repo", "configMap": {"name": request.repo_snapshot or source.config_map.name}})
        mounts.append({"name": "repo", "mountPath": contract.REPO_CONFIGMAP_MOUNT, "readOnly": True})
    elif source.git is not None:
        git = source.git
        env += [
            _value_env(contract.ENV_GIT_URL, git.url),
            _value_env(contract.ENV_GIT_REVISION, git.revision),
            _value_env(contract.ENV_GIT_PATH, git.path),
            _value_env(contract.ENV_GIT_ALLOW_PROTOCOL, ":".join(git_protocols)),
        ]
        if repo.commit:
            env.append(_value_env(contract.ENV_GIT_COMMIT, repo.commit))
        # Trust material as files: a projected volume of the CA and known_hosts ConfigMap keys and
        # the Secret's ssh key (optional: https Secrets have none), read-only and private.
        sources: list[dict[str, Any]] = []
        for ref, path in (
            (git.ca_bundle_ref, contract.GIT_CA_FILE),
            (git.known_hosts_ref, contract.GIT_KNOWN_HOSTS_FILE),
        ):
            if ref is not None:
                sources.append({"configMap": {"name": ref.name, "items": [{"key": ref.key, "path": path}]}})
        if git.secret_ref is not None and git_protocol(git.url) == "ssh":
            sources.append(
                {
                    "secret": {
                        "name": git.secret_ref.name,
                        "items": [{"key": contract.GIT_SSH_KEY, "path": contract.GIT_SSH_KEY, "mode": 0o400}],
                        "optional": True,
                    }
                }
            )
        if sources:
            volumes.append({"name": "git-trust", "projected": {"sources": sources, "defaultMode": 0o440}})
            mounts.append({"name": "git-trust", "mountPath": contract.GIT_TRUST_MOUNT, "readOnly": True})
        if git.secret_ref is not None:
            secret = git.secret_ref.name
            env += [
                _secret_env(contract.ENV_GIT_USERNAME, secret, "username", optional=True),
                _secret_env(contract.ENV_GIT_PASSWORD, secret, "password", optional=True),
                _secret_env(contract.ENV_GIT_TOKEN, secret, "token", optional=True),
            ]
    elif source.image is not None:
        env.append(_value_env(contract.ENV_REPO_DIR, source.image.path))
    return env, volumes, mounts


def render_runner_job(project: FeatureStoreProject, request: RunnerJobRequest) -> dict[str, Any]:
    spec = project.spec
    runner = spec.runner
    mlflow = spec.mlflow
    repo_env, repo_volumes, repo_mounts = _repo_env_and_volumes(project, request)
    env = [
        _value_env(contract.ENV_OPERATION, request.operation),
        _value_env(contract.ENV_CONFIG_PATH, f"{contract.CONFIG_MOUNT}/{contract.FEATURE_STORE_YAML}"),
        _value_env(contract.ENV_WORKSPACE, contract.WORKSPACE_MOUNT),
        _value_env("HOME", f"{contract.WORKSPACE_MOUNT}/home"),
        # The root filesystem is read-only: scratch files go to the workspace volume.
        _value_env("TMPDIR", f"{contract.WORKSPACE_MOUNT}/tmp"),
        *repo_env,
        _value_env(contract.ENV_PROVENANCE, json.dumps(request.provenance, sort_keys=True)),
        _value_env(contract.ENV_AUDIT_ID, request.audit_id),
        _value_env(contract.ENV_LOG_OPERATIONS, "true" if mlflow.log_operations else "false"),
        _value_env(contract.ENV_OPS_EXPERIMENT, f"{spec.project}{mlflow.ops_experiment_suffix}"),
        *mlflow_env(project, request.tracking_uri),
        *store_secret_env(project),
        *request.extra_env,
        *({"name": e.name, "value": e.value} for e in runner.env),
    ]
    secret_names = sorted(e["name"] for e in env if "secretKeyRef" in (e.get("valueFrom") or {}))
    env.append(_value_env(contract.ENV_SECRET_NAMES, ",".join(secret_names)))
    volumes = [
        {"name": "config", "configMap": {"name": request.runner_config_map}},
        {"name": "workspace", "emptyDir": {"sizeLimit": runner.workspace_size_limit or DEFAULT_WORKSPACE_SIZE_LIMIT}},
        *repo_volumes,
        *runner.volumes,
    ]
    mounts = [
        {"name": "config", "mountPath": contract.CONFIG_MOUNT, "readOnly": True},
        {"name": "workspace", "mountPath": contract.WORKSPACE_MOUNT},
        *repo_mounts,
        *runner.volume_mounts,
    ]
    container: dict[str, Any] = {
        "name": "runner",
        "image": (spec.repo.image.image if spec.repo.image and spec.repo.image.image else None)
        or runner.image
        or request.runner_image,
        "command": ["feast-lineage", "runner", request.operation],
        "env": env,
        "volumeMounts": mounts,
        "securityContext": _RESTRICTED_CONTAINER,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if runner.image_pull_policy:
        container["imagePullPolicy"] = runner.image_pull_policy
    container["resources"] = (
        runner.resources.model_dump(mode="json", exclude_defaults=True)
        if runner.resources is not None
        else {kind: dict(values) for kind, values in DEFAULT_RESOURCES.items()}
    )
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": volumes,
    }
    if runner.service_account_name:
        pod_spec["serviceAccountName"] = runner.service_account_name
    if runner.node_selector:
        pod_spec["nodeSelector"] = runner.node_selector
    if runner.tolerations:
        pod_spec["tolerations"] = runner.tolerations
    job_spec: dict[str, Any] = {
        "backoffLimit": request.backoff_limit,
        "activeDeadlineSeconds": request.active_deadline_seconds
        or runner.active_deadline_seconds
        or DEFAULT_DEADLINE_SECONDS.get(request.operation, DEFAULT_DEADLINE_SECONDS["materialize"]),
        "template": {"metadata": {"labels": request.labels}, "spec": pod_spec},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": request.job_name,
            "namespace": project.metadata.namespace,
            "labels": request.labels,
            "annotations": request.annotations,
            "ownerReferences": [request.owner],
        },
        "spec": job_spec,
    }
