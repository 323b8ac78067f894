"""Read what a project refers to: its repo's identity and the Secrets it needs.

A missing or unusable input becomes an :class:`InputProblem` naming the object,
never an exception, so the project shows it as ``Stalled`` and recovers by
itself once the input is fixed.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence

from feast_lineage.api import FeatureStoreProject
from feast_lineage.contract import GIT_SSH_KEY as SSH_KEY
from feast_lineage.controller.git_remote import GitCredentials, GitError, resolve_commit
from feast_lineage.controller.git_resolver import GitRequest
from feast_lineage.controller.kube import Kube, read
from feast_lineage.domain.apply_plan import RepoIdentity, configmap_identity
from feast_lineage.domain.project_state import InputProblem
from feast_lineage.git_credentials import DEFAULT_PROTOCOLS
from feast_lineage.redaction import KNOWN


def _decoded(data: dict[str, str]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode("utf-8", "replace") for key, value in data.items()}


class _Secrets:
    """Secret reads for one reconcile, each Secret fetched once."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self._cache: dict[str, dict[str, str] | None] = {}

    def data(self, name: str) -> dict[str, str] | None:
        if name not in self._cache:
            secret = read(self.kube.core.read_namespaced_secret, name, self.namespace)
            self._cache[name] = None if secret is None else dict(secret.get("data") or {})
            # Whatever a referenced Secret holds may be echoed by Feast, git or MLflow: redact it everywhere.
            KNOWN.learn(_decoded(self._cache[name] or {}).values())
        return self._cache[name]

    def value(self, name: str, key: str) -> str | None:
        return _decoded(self.data(name) or {}).get(key)

    def check(self, name: str, key: str, used_for: str) -> InputProblem | None:
        data = self.data(name)
        if data is None:
            return InputProblem(
                "SecretNotFound", f'Secret "{name}" ({used_for}) not found in namespace {self.namespace}'
            )
        if key not in data:
            return InputProblem("SecretKeyNotFound", f'Secret "{name}" ({used_for}) has no key "{key}"')
        return None


def required_secrets(project: FeatureStoreProject) -> list[tuple[str, str, str]]:
    """(secret, key, what it is for) for every Secret key the runner pods need."""
    needed = [
        (entry.secret_key_ref.name, entry.secret_key_ref.key, f"secretEnv {entry.name}")
        for entry in project.spec.feature_store.secret_env
    ]
    credentials = project.spec.mlflow.credentials
    if credentials is not None:
        for key in (credentials.username_key, credentials.password_key, credentials.token_key):
            if key:
                needed.append((credentials.secret_name, key, "mlflow.credentials"))
    return needed


def gather_inputs(
    kube: Kube,
    project: FeatureStoreProject,
    git_timeout: float,
    git_protocols: Sequence[str] = DEFAULT_PROTOCOLS,
    resolve_git: Callable[[GitRequest], str] | None = None,
) -> tuple[RepoIdentity | None, InputProblem | None]:
    """The project's repo identity, or the problem with its inputs. ``resolve_git`` answers a Git
    revision's commit (the operator's :class:`.GitResolver`, which may raise ``ResolutionPending``);
    without it, ``git ls-remote`` runs here."""
    namespace = project.metadata.namespace or "default"
    secrets = _Secrets(kube, namespace)
    for name, key, used_for in required_secrets(project):
        problem = secrets.check(name, key, used_for)
        if problem is not None:
            return None, problem
    source = project.spec.repo
    if source.config_map is not None:
        config_map = read(kube.core.read_namespaced_config_map, source.config_map.name, namespace)
        if config_map is None:
            return None, InputProblem(
                "RepoNotFound",
                f'ConfigMap "{source.config_map.name}" (repo.configMap) not found in namespace {namespace}',
            )
        data, binary_data = config_map.get("data") or {}, config_map.get("binaryData") or {}
        return configmap_identity(source.config_map.name, data, binary_data), None
    if source.git is not None:
        git = source.git
        trusted: dict[str, str | None] = {}
        for field_name, ref in (("ca_bundle", git.ca_bundle_ref), ("known_hosts", git.known_hosts_ref)):
            if ref is None:
                continue
            config_map = read(kube.core.read_namespaced_config_map, ref.name, namespace)
            value = ((config_map or {}).get("data") or {}).get(ref.key)
            if value is None:
                where = "repo.git.caBundleRef" if field_name == "ca_bundle" else "repo.git.knownHostsRef"
                return None, InputProblem(
                    "ConfigMapNotFound",
                    f'ConfigMap "{ref.name}" with key "{ref.key}" ({where}) not found in namespace {namespace}',
                )
            trusted[field_name] = value
        credentials = GitCredentials(**trusted)
        if git.secret_ref is not None:
            if secrets.data(git.secret_ref.name) is None:
                return None, InputProblem(
                    "SecretNotFound",
                    f'Secret "{git.secret_ref.name}" (repo.git.secretRef) not found in namespace {namespace}',
                )
            credentials = GitCredentials(
                username=secrets.value(git.secret_ref.name, "username"),
                password=secrets.value(git.secret_ref.name, "password"),
                token=secrets.value(git.secret_ref.name, "token"),
                ssh_key=secrets.value(git.secret_ref.name, SSH_KEY),
                **trusted,
            )
        request = GitRequest(git.url, git.revision, credentials, git_timeout, tuple(git_protocols))
        try:
            commit = resolve_git(request) if resolve_git is not None else _resolve_here(request)
        except GitError as error:
            return None, InputProblem(error.reason, error.message)
        return RepoIdentity("git", git.revision, f"{git.path}@{commit}", commit), None
    assert source.image is not None
    image = source.image.image or project.spec.runner.image or ""
    return RepoIdentity("image", f"{image or 'runner image'}:{source.image.path}", f"{image}|{source.image.path}"), None


def _resolve_here(request: GitRequest) -> str:
    return resolve_commit(request.url, request.revision, request.credentials, request.timeout, request.protocols)


def learn_secrets(kube: Kube, project: FeatureStoreProject) -> None:
    """Read every Secret ``project`` references, so their values are redacted from whatever the operator
    writes next (a MaterializationJob's status may be written before the project's next pass)."""
    secrets = _Secrets(kube, project.metadata.namespace or "default")
    names = {name for name, _, _ in required_secrets(project)}
    if project.spec.repo.git is not None and project.spec.repo.git.secret_ref is not None:
        names.add(project.spec.repo.git.secret_ref.name)
    for name in sorted(names):
        secrets.data(name)
