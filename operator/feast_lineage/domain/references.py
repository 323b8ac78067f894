"""The objects a project's spec refers to, by name: what the operator watches on its behalf."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def referenced_config_maps(spec: Mapping[str, Any]) -> list[str]:
    """ConfigMaps a project reads (its repo, a Git CA or known_hosts), from the raw spec."""
    repo = spec.get("repo") or {}
    names = []
    if isinstance(repo.get("configMap"), Mapping) and repo["configMap"].get("name"):
        names.append(str(repo["configMap"]["name"]))
    git = repo.get("git") or {}
    for key in ("caBundleRef", "knownHostsRef"):
        ref = git.get(key)
        if isinstance(ref, Mapping) and ref.get("name"):
            names.append(str(ref["name"]))
    return sorted(set(names))
