"""The runner's settings, read only from the contract's environment variables."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from feast_lineage import contract
from feast_lineage.audit.mlflow_rest import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, Credentials
from feast_lineage.runner.errors import BadInput

Operation = Literal["apply", "materialize"]
RepoKind = Literal["configMap", "git", "image"]
DEFAULT_RESULT_PATH = "/dev/termination-log"


@dataclass(frozen=True)
class GitSettings:
    url: str
    revision: str | None
    commit: str | None
    path: str
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    protocols: tuple[str, ...] = ("git", "https", "ssh")


@dataclass(frozen=True)
class MaterializeSettings:
    mode: Literal["Incremental", "Range"]
    start: str | None
    end: str | None
    feature_views: list[str]


@dataclass(frozen=True)
class MlflowSettings:
    tracking_uri: str | None
    log_operations: bool
    experiment: str | None
    timeout: float
    max_retries: int
    credentials: Credentials = field(default_factory=Credentials)


@dataclass(frozen=True)
class ImpactSettings:
    """Apply only: spec.applyPolicy.onImpact, the approved plan hash, and the project's namespace."""

    policy: Literal["Allow", "Warn", "Block"]
    approved_plan: str | None
    namespace: str


@dataclass(frozen=True)
class RunnerSettings:
    operation: Operation
    config_path: Path
    workspace: Path
    repo_kind: RepoKind
    repo_dir: Path | None
    git: GitSettings | None
    provenance: dict[str, str]
    audit_id: str
    mlflow: MlflowSettings
    materialize: MaterializeSettings | None
    impact: ImpactSettings | None = None
    """None when the operator asked for no impact analysis."""
    repo_digest: str | None = None
    """configMap: the content digest the operator recorded; the mounted files must have exactly it."""


def result_path(env: Mapping[str, str]) -> Path:
    return Path(env.get(contract.ENV_RESULT_PATH) or DEFAULT_RESULT_PATH)


def read_settings(operation: str, env: Mapping[str, str]) -> RunnerSettings:
    """Settings for ``operation``; raises :class:`BadInput` naming the first missing or invalid variable."""
    if operation not in ("apply", "materialize"):
        raise BadInput(f"unknown operation {operation!r}; expected apply or materialize")
    declared = env.get(contract.ENV_OPERATION)
    if declared and declared != operation:
        raise BadInput(f"{contract.ENV_OPERATION}={declared} but the runner was started for {operation}")
    kind = _required(env, contract.ENV_REPO_KIND)
    if kind not in ("configMap", "git", "image"):
        raise BadInput(f"{contract.ENV_REPO_KIND} must be configMap, git or image, not {kind!r}")
    repo_dir = None if kind == "git" else Path(_required(env, contract.ENV_REPO_DIR))
    return RunnerSettings(
        operation="apply" if operation == "apply" else "materialize",
        config_path=Path(_required(env, contract.ENV_CONFIG_PATH)),
        workspace=Path(env.get(contract.ENV_WORKSPACE) or contract.WORKSPACE_MOUNT),
        repo_kind=cast(RepoKind, kind),
        repo_dir=repo_dir,
        repo_digest=env.get(contract.ENV_REPO_DIGEST) or None,
        git=_git(env) if kind == "git" else None,
        provenance=_provenance(env),
        # Without an id from the operator, a fresh one still makes this run's delivery exactly-once.
        audit_id=env.get(contract.ENV_AUDIT_ID) or uuid.uuid4().hex,
        mlflow=_mlflow(env),
        materialize=_materialize(env) if operation == "materialize" else None,
        impact=_impact(env) if operation == "apply" else None,
    )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise BadInput(f"environment variable {name} is not set")
    return value


def _commit(value: str | None) -> str | None:
    """The commit the operator resolved: a full SHA-1 or SHA-256 object name, or nothing."""
    if not value:
        return None
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", value):
        raise BadInput(f"environment variable {contract.ENV_GIT_COMMIT} is not a full commit object name")
    return value


def _git(env: Mapping[str, str]) -> GitSettings:
    return GitSettings(
        url=_required(env, contract.ENV_GIT_URL),
        revision=env.get(contract.ENV_GIT_REVISION) or None,
        commit=_commit(env.get(contract.ENV_GIT_COMMIT)),
        path=env.get(contract.ENV_GIT_PATH) or ".",
        protocols=tuple(p for p in env.get(contract.ENV_GIT_ALLOW_PROTOCOL, "git:https:ssh").split(":") if p),
        username=env.get(contract.ENV_GIT_USERNAME) or None,
        password=env.get(contract.ENV_GIT_PASSWORD) or None,
        token=env.get(contract.ENV_GIT_TOKEN) or None,
    )


def _provenance(env: Mapping[str, str]) -> dict[str, str]:
    raw = env.get(contract.ENV_PROVENANCE, "").strip()
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as error:
        raise BadInput(f"{contract.ENV_PROVENANCE} is not JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise BadInput(f"{contract.ENV_PROVENANCE} must be a JSON object of tag names to values")
    return {str(key): value if isinstance(value, str) else json.dumps(value) for key, value in parsed.items()}


def _mlflow(env: Mapping[str, str]) -> MlflowSettings:
    try:
        timeout = float(env.get(contract.MLFLOW_ENV_TIMEOUT) or DEFAULT_TIMEOUT)
        retries = int(env.get(contract.MLFLOW_ENV_MAX_RETRIES) or DEFAULT_MAX_RETRIES)
    except ValueError:
        raise BadInput(
            f"{contract.MLFLOW_ENV_TIMEOUT} must be a number and {contract.MLFLOW_ENV_MAX_RETRIES} an integer"
        ) from None
    if timeout <= 0 or retries < 0:
        raise BadInput(f"{contract.MLFLOW_ENV_TIMEOUT} must be positive and {contract.MLFLOW_ENV_MAX_RETRIES} >= 0")
    return MlflowSettings(
        tracking_uri=env.get(contract.MLFLOW_ENV_TRACKING_URI) or None,
        log_operations=env.get(contract.ENV_LOG_OPERATIONS, "").strip().lower() == "true",
        experiment=env.get(contract.ENV_OPS_EXPERIMENT) or None,
        timeout=timeout,
        max_retries=retries,
        credentials=Credentials.from_env(env),
    )


def _materialize(env: Mapping[str, str]) -> MaterializeSettings:
    mode = env.get(contract.ENV_MATERIALIZE_MODE) or "Incremental"
    if mode not in ("Incremental", "Range"):
        raise BadInput(f"{contract.ENV_MATERIALIZE_MODE} must be Incremental or Range, not {mode!r}")
    start = env.get(contract.ENV_MATERIALIZE_START) or None
    if mode == "Range" and start is None:
        raise BadInput(f"mode Range needs {contract.ENV_MATERIALIZE_START}")
    if mode == "Incremental" and start is not None:
        raise BadInput(
            f"mode Incremental continues from the last materialized time; unset {contract.ENV_MATERIALIZE_START}"
        )
    if mode == "Range" and not env.get(contract.ENV_MATERIALIZE_END):
        raise BadInput(f"mode Range needs {contract.ENV_MATERIALIZE_END}")
    views = [name.strip() for name in env.get(contract.ENV_FEATURE_VIEWS, "").split(",") if name.strip()]
    return MaterializeSettings(
        mode="Range" if mode == "Range" else "Incremental",
        start=start,
        end=env.get(contract.ENV_MATERIALIZE_END) or None,
        feature_views=views,
    )


CREDENTIAL_VARIABLES = (
    contract.ENV_GIT_USERNAME,
    contract.ENV_GIT_PASSWORD,
    contract.ENV_GIT_TOKEN,
    contract.MLFLOW_ENV_USERNAME,
    contract.MLFLOW_ENV_PASSWORD,
    contract.MLFLOW_ENV_TOKEN,
)


def secret_values(env: Mapping[str, str]) -> list[str]:
    """Values of the variables that came from Secrets: the credentials, and those the operator names."""
    named = [name.strip() for name in env.get(contract.ENV_SECRET_NAMES, "").split(",") if name.strip()]
    return [env[name] for name in (*CREDENTIAL_VARIABLES, *named) if env.get(name)]


def _impact(env: Mapping[str, str]) -> ImpactSettings | None:
    policy = env.get(contract.ENV_ON_IMPACT, "").strip()
    if not policy:
        return None
    if policy not in ("Allow", "Warn", "Block"):
        raise BadInput(f"{contract.ENV_ON_IMPACT} must be Allow, Warn or Block, not {policy!r}")
    return ImpactSettings(
        policy="Allow" if policy == "Allow" else "Block" if policy == "Block" else "Warn",
        approved_plan=env.get(contract.ENV_APPROVED_PLAN, "").strip() or None,
        namespace=_required(env, contract.ENV_NAMESPACE),
    )
