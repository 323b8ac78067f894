"""Assembling the feature repo in the workspace, from a ConfigMap mount, Git or a path in the image."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from feast_lineage import contract
from feast_lineage.runner.errors import BadInput, OperationFailed
from feast_lineage.runner.git_source import checkout
from feast_lineage.runner.settings import RunnerSettings

_IMAGE_IGNORED = shutil.ignore_patterns("__pycache__", ".git", contract.FEATURE_STORE_YAML)


@dataclass(frozen=True)
class FetchedRepo:
    path: Path
    """The feature repo, with the rendered feature_store.yaml in it."""
    git_commit: str | None = None
    unavailable: str | None = None
    """Why the Git repo could not be fetched, when ``path`` holds feature_store.yaml alone."""


def fetch_repo(settings: RunnerSettings, registry_suffices: bool = False) -> FetchedRepo:
    """Copy or check out the repo into ``<workspace>/repo`` and put feature_store.yaml in it.

    ``registry_suffices``: a materialization reads its definitions from the registry, so when the Git
    server cannot be reached it goes on with feature_store.yaml alone (file sources with absolute or
    remote paths still work; one relative to the repo fails and says so).
    """
    if not settings.config_path.is_file():
        raise BadInput(f"feature_store.yaml not found at {settings.config_path} ({contract.ENV_CONFIG_PATH})")
    root = settings.workspace / "repo"
    if root.exists():
        shutil.rmtree(root)
    commit = None
    if settings.repo_kind == "git":
        assert settings.git is not None
        try:
            commit = checkout(settings.git, root, settings.workspace / ".git-helper")
        except OperationFailed as error:
            if not registry_suffices:
                raise
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            shutil.copyfile(settings.config_path, root / contract.FEATURE_STORE_YAML)
            return FetchedRepo(path=root, git_commit=settings.git.commit, unavailable=str(error))
        repo = (root / settings.git.path).resolve()
        if not repo.is_relative_to(root.resolve()):
            raise BadInput(f"{contract.ENV_GIT_PATH} leaves the repository: {settings.git.path}")
        if not repo.is_dir():
            raise OperationFailed(f"path {settings.git.path!r} is not a directory in commit {commit}")
    else:
        assert settings.repo_dir is not None
        source = settings.repo_dir
        if not source.is_dir():
            raise OperationFailed(f"feature repo directory {source} does not exist")
        repo = root
        if settings.repo_kind == "configMap":
            copied = copy_configmap_files(source, repo)
            check_digest(repo, copied, settings.repo_digest)
        else:
            shutil.copytree(source, repo, ignore=_IMAGE_IGNORED)
    shutil.copyfile(settings.config_path, repo / contract.FEATURE_STORE_YAML)
    return FetchedRepo(path=repo, git_commit=commit)


def check_digest(repo: Path, names: list[str], expected: str | None) -> None:
    """The files are the content the operator recorded, or the run does not start: what ran is what
    the record says. (A snapshot is immutable; this catches one someone made under its name.)"""
    if expected is None:
        return
    actual = contract.repo_digest({name: (repo / name).read_bytes() for name in names})
    if actual != expected:
        raise BadInput(
            f"the mounted repo has content {actual[:12]}, not the recorded revision's {expected[:12]}; "
            "refusing to run other content than the record names"
        )


def copy_configmap_files(mount: Path, destination: Path) -> list[str]:
    """Copy the keys of a mounted ConfigMap; returns the names copied.

    Kubernetes mounts each key as a symlink into a hidden ``..data`` directory that it swaps
    atomically on updates; only the visible top-level names are the keys.
    """
    destination.mkdir(parents=True, exist_ok=True)
    copied: list[str] = []
    for entry in sorted(mount.iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        shutil.copyfile(entry, destination / entry.name)
        copied.append(entry.name)
    return copied
