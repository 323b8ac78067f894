"""What a project author may ask the operator for: the administrator's policy and the author's own rights.

The operator acts with broad permissions on behalf of users with narrower ones. Two
questions guard that, both pure here and asked by the admission webhook (and, for the
policy, again by the reconciler, in case a spec got past admission):

- ``policy_violations``: does the spec use anything the administrator has not allowed
  (runner volume types, ServiceAccounts, tolerations, node selectors, Git protocols),
  or anything no one may ask for (reserved environment names, expansions of undeclared
  variables, credentials sent in clear text to a remote host)?
- ``required_access``: what must the requesting user be allowed to do alone (create pods
  in the namespace, since the repo is code that runs in a pod; get every Secret the
  spec references, since the operator reads some of them itself; obtain the token of the
  runner's ServiceAccount, since the repo's code runs as it)?
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from feast_lineage.api import FeatureStoreProjectSpec

DEFAULT_VOLUME_TYPES = frozenset({"configMap", "secret", "emptyDir", "persistentVolumeClaim"})
DEFAULT_GIT_PROTOCOLS = frozenset({"https", "ssh", "git"})

RESERVED_ENV_NAMES = frozenset(
    {"HOME", "PATH", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "TMPDIR", "SHELL", "USER", "LD_PRELOAD"}
)
RESERVED_ENV_PREFIXES = ("FEAST_LINEAGE_", "MLFLOW_", "GIT_", "LD_", "FEAST_FS_", "PYTHON", "SSL_", "REQUESTS_CA")
"""The runner's own settings, its provenance and audit id, and what changes how code, git, TLS or
MLflow behave: a project author may not shadow them through secretEnv or runner.env."""

_EXPANSION = re.compile(r"\$(\{)?([A-Za-z_][A-Za-z0-9_]*)(?(1)\})")
_HEX_COMMIT = re.compile(r"^([0-9a-f]{40}|[0-9a-f]{64})$")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:")


@dataclass(frozen=True)
class TenancyPolicy:
    """What the administrator lets project authors use (operator flags / chart values)."""

    runner_volume_types: frozenset[str] = DEFAULT_VOLUME_TYPES
    runner_service_accounts: frozenset[str] = frozenset()
    """ServiceAccounts runner pods may run as; none but the namespace default when empty."""
    allow_tolerations: bool = False
    node_selector_keys: frozenset[str] = frozenset()
    git_protocols: frozenset[str] = DEFAULT_GIT_PROTOCOLS
    """Add "file" only for demos: it lets the operator's ls-remote read its own filesystem."""


@dataclass(frozen=True)
class AccessCheck:
    """One thing the requesting user must be allowed to do, as a SubjectAccessReview asks it."""

    verb: str
    resource: str
    namespace: str
    name: str = ""
    subresource: str = ""
    group: str = ""
    why: str = ""

    def describe(self) -> str:
        what = self.resource + (f"/{self.subresource}" if self.subresource else "")
        target = f' "{self.name}"' if self.name else ""
        return f"{self.verb} {what}{target} in namespace {self.namespace}" + (f" ({self.why})" if self.why else "")


@dataclass
class _Findings:
    problems: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        self.problems.append(message)


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def git_protocol(url: str) -> str:
    if _SCP_LIKE.match(url):
        return "ssh"
    return urllib.parse.urlsplit(url).scheme.lower()


def check_revision(revision: str) -> str | None:
    """A branch, tag or commit; never something git could read as an option or a range."""
    if revision.startswith("-"):
        return f"repo.git.revision {revision!r} must not start with '-'"
    if any(c.isspace() for c in revision) or ".." in revision or any(c in revision for c in "~^:?*[\\"):
        return f"repo.git.revision {revision!r} is not a branch, tag or commit name"
    return None


def is_full_commit(value: str) -> bool:
    """A resolved commit must be a full SHA-1 or SHA-256 object name, nothing else."""
    return bool(_HEX_COMMIT.match(value))


def _reserved(name: str) -> bool:
    return name in RESERVED_ENV_NAMES or name.startswith(RESERVED_ENV_PREFIXES)


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def policy_violations(spec: FeatureStoreProjectSpec, policy: TenancyPolicy) -> list[str]:
    found = _Findings()
    runner = spec.runner
    for volume in runner.volumes:
        kinds = [key for key in volume if key != "name"]
        for kind in kinds:
            if kind not in policy.runner_volume_types:
                allowed = ", ".join(sorted(policy.runner_volume_types))
                found.add(
                    f"spec.runner.volumes[{volume.get('name')}]: volume type {kind} is not allowed by the "
                    f"operator's settings (allowed: {allowed})"
                )
    if runner.service_account_name and runner.service_account_name not in policy.runner_service_accounts:
        found.add(
            f"spec.runner.serviceAccountName {runner.service_account_name!r} is not allowed by the operator's "
            "settings (an administrator lists the ServiceAccounts runner pods may use)"
        )
    if runner.tolerations and not policy.allow_tolerations:
        found.add("spec.runner.tolerations are not allowed by the operator's settings")
    for key in runner.node_selector:
        if key not in policy.node_selector_keys:
            found.add(f"spec.runner.nodeSelector key {key!r} is not allowed by the operator's settings")
    declared = {entry.name for entry in spec.feature_store.secret_env}
    for entry in spec.feature_store.secret_env:
        if _reserved(entry.name):
            found.add(f"spec.featureStore.secretEnv {entry.name}: the name is reserved for the runner's own settings")
    for env in runner.env:
        if _reserved(env.name):
            found.add(f"spec.runner.env {env.name}: the name is reserved for the runner's own settings")
    store = spec.feature_store.model_dump(mode="json", by_alias=True, exclude={"secret_env"})
    for path, text in _strings(store, "spec.featureStore"):
        for match in _EXPANSION.finditer(text):
            if match.group(2) not in declared:
                found.add(
                    f"{path}: {match.group(0)} is not a secretEnv name; only declared secretEnv names may be "
                    "expanded, so a config never reads other variables of a pod's environment"
                )
    _check_git(spec, policy, found)
    _check_mlflow(spec, found)
    return found.problems


def _check_git(spec: FeatureStoreProjectSpec, policy: TenancyPolicy, found: _Findings) -> None:
    git = spec.repo.git
    if git is None:
        return
    try:
        urllib.parse.urlsplit(git.url).port  # noqa: B018 - parses the host and port, as git will
    except ValueError as error:
        found.add(f"spec.repo.git.url is not a valid URL: {error}")
        return
    protocol = git_protocol(git.url)
    if protocol not in policy.git_protocols:
        allowed = ", ".join(sorted(policy.git_protocols))
        found.add(f"spec.repo.git.url: protocol {protocol or '(none)'} is not allowed (allowed: {allowed})")
    problem = check_revision(git.revision)
    if problem is not None:
        found.add(f"spec.{problem}")
    if (
        git.secret_ref is not None
        and protocol == "http"
        and not is_loopback_host(urllib.parse.urlsplit(git.url).hostname)
    ):
        found.add("spec.repo.git: credentials (secretRef) are only sent over https or ssh, not http")
    if protocol == "ssh" and git.known_hosts_ref is None:
        found.add("spec.repo.git.knownHostsRef is required for ssh: host keys are verified, never skipped")
    if urllib.parse.urlsplit(git.url).password:
        found.add("spec.repo.git.url must not carry a password; use secretRef")


def _check_mlflow(spec: FeatureStoreProjectSpec, found: _Findings) -> None:
    uri = spec.mlflow.tracking_uri
    if not uri:
        return
    try:
        parts = urllib.parse.urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018 - a bad port is as unusable as a bad host
    except ValueError as error:
        found.add(f"spec.mlflow.trackingUri is not a valid URL: {error}")
        return
    if parts.username or parts.password:
        found.add("spec.mlflow.trackingUri must not carry user info; use spec.mlflow.credentials")
    if spec.mlflow.credentials is not None and parts.scheme == "http" and not is_loopback_host(host):
        found.add("spec.mlflow.credentials are only sent over https (or to a loopback address), not http")


def referenced_secrets(spec: FeatureStoreProjectSpec) -> list[tuple[str, str]]:
    """(Secret name, what references it), each Secret once."""
    seen: dict[str, str] = {}
    for entry in spec.feature_store.secret_env:
        seen.setdefault(entry.secret_key_ref.name, f"spec.featureStore.secretEnv {entry.name}")
    if spec.repo.git is not None and spec.repo.git.secret_ref is not None:
        seen.setdefault(spec.repo.git.secret_ref.name, "spec.repo.git.secretRef")
    if spec.mlflow.credentials is not None:
        seen.setdefault(spec.mlflow.credentials.secret_name, "spec.mlflow.credentials")
    return list(seen.items())


def required_access(spec: FeatureStoreProjectSpec | None, namespace: str) -> list[AccessCheck]:
    """What the author must be able to do alone. A MaterializationJob (``spec`` None) runs the
    project's code in a pod, so its author must be able to create pods."""
    checks = [AccessCheck("create", "pods", namespace, why="the feature repo runs as code in a runner pod")]
    if spec is None:
        return checks
    for name, why in referenced_secrets(spec):
        checks.append(AccessCheck("get", "secrets", namespace, name=name, why=f"referenced by {why}"))
    if spec.runner.service_account_name:
        checks.append(
            AccessCheck(
                "create",
                "serviceaccounts",
                namespace,
                name=spec.runner.service_account_name,
                subresource="token",
                why="the feature repo runs as spec.runner.serviceAccountName",
            )
        )
    return checks
