"""Loading a Feast feature repo: its configuration and its Python modules, with one-line errors."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from feast_lineage.contract import FEATURE_STORE_YAML
from feast_lineage.runner.errors import OperationFailed, exception_line

IMPORT_FAILED = "feature repo failed to import:"
CONFIG_INVALID = "feature_store.yaml is invalid:"


def project_name(repo: Path) -> str | None:
    """The ``project`` of the repo's feature_store.yaml, read without Feast (for failure reports)."""
    try:
        raw = yaml.safe_load(os.path.expandvars((repo / FEATURE_STORE_YAML).read_text()))
    except (OSError, yaml.YAMLError):
        return None
    project = raw.get("project") if isinstance(raw, dict) else None
    return project if isinstance(project, str) else None


def load_config(repo: Path) -> Any:
    """Feast's ``RepoConfig`` for ``repo``; an unknown store type is named rather than reported as a class error."""
    from feast.repo_config import load_repo_config

    _check_store_types(repo / FEATURE_STORE_YAML)
    try:
        return load_repo_config(repo, repo / FEATURE_STORE_YAML)
    except Exception as error:
        raise OperationFailed(f"{CONFIG_INVALID} {exception_line(error)}") from error


def _check_store_types(config_path: Path) -> None:
    from feast.repo_config import OFFLINE_STORE_CLASS_FOR_TYPE, ONLINE_STORE_CLASS_FOR_TYPE

    try:
        raw = yaml.safe_load(os.path.expandvars(config_path.read_text()))
    except yaml.YAMLError as error:
        raise OperationFailed(f"{CONFIG_INVALID} {exception_line(error)}") from None
    if not isinstance(raw, dict):
        raise OperationFailed(f"{CONFIG_INVALID} not a YAML mapping")
    for section, known in (
        ("online_store", ONLINE_STORE_CLASS_FOR_TYPE),
        ("offline_store", OFFLINE_STORE_CLASS_FOR_TYPE),
    ):
        store = raw.get(section)
        kind = store.get("type") if isinstance(store, dict) else store
        # A dotted name is a class path, which Feast imports itself.
        if isinstance(kind, str) and "." not in kind and kind not in known:
            section_name = section.replace("_", " ")
            # Feast's table also maps legacy class paths; only the short names are worth suggesting.
            names = sorted(name for name in known if not name.startswith("feast."))
            raise OperationFailed(
                f"{CONFIG_INVALID} unknown {section_name} type {kind!r}; Feast knows {', '.join(names)}"
            )


@contextlib.contextmanager
def inside_repo(repo: Path) -> Iterator[None]:
    """Make ``repo`` the working directory and importable, as ``feast`` does, and undo it afterwards.

    Feast imports repo files by module name relative to the working directory; modules of an
    earlier repo with the same names are dropped first so that this repo's files are the ones read.
    """
    previous_cwd = Path.cwd()
    forget_repo_modules(repo)
    sys.path.insert(0, str(repo))
    os.chdir(repo)
    try:
        yield
    finally:
        os.chdir(previous_cwd)
        with contextlib.suppress(ValueError):
            sys.path.remove(str(repo))


def forget_repo_modules(repo: Path) -> None:
    names: set[str] = set()
    for path in repo.rglob("*.py"):
        parts = path.relative_to(repo).with_suffix("").parts
        names.update(".".join(parts[: depth + 1]) for depth in range(len(parts)))
    for name in list(sys.modules):
        if name in names or name.split(".")[0] in names:
            del sys.modules[name]
    importlib.invalidate_caches()


def parse_repo(repo: Path) -> Any:
    """Feast's ``RepoContents`` of ``repo`` (call inside :func:`inside_repo`); import errors become one line."""
    from feast.repo_operations import parse_repo as feast_parse_repo

    sys.dont_write_bytecode = True
    try:
        return feast_parse_repo(repo)
    except SystemExit as error:
        raise OperationFailed(f"{IMPORT_FAILED} exited with status {error.code}") from None
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt):
            raise
        raise OperationFailed(f"{IMPORT_FAILED} {exception_line(error)}") from error
