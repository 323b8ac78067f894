"""Rendering the Helm chart in tests, with the helm built for the local cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from feast_lineage.devcluster.binaries import HELM_VERSION, binaries_dir
from feast_lineage.install.manifest import helm_template

REPO_ROOT = Path(__file__).resolve().parent.parent
CHART = REPO_ROOT / "charts" / "feast-lineage-operator"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
MANIFEST = REPO_ROOT / "deploy" / "feast-lineage-operator.yaml"
RELEASE = "fl"
NAMESPACE = "feast-lineage-system"

Obj = dict[str, Any]


def helm() -> Path:
    path = binaries_dir("helm", HELM_VERSION) / "helm"
    if not path.exists():
        raise AssertionError(f"helm {HELM_VERSION} is not built at {path}: run `make binaries`")
    return path


def documents(text: str) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render(
    *values: str,
    values_file: Path | None = None,
    namespace: str = NAMESPACE,
    release: str = RELEASE,
    show_only: str | None = None,
) -> list[Obj]:
    """The chart's objects for ``--set`` ``values`` (and a values file)."""
    extra = ("--show-only", show_only) if show_only else ()
    text = helm_template(
        helm(),
        CHART,
        release=release,
        namespace=namespace,
        values=values,
        values_files=(values_file,) if values_file else (),
        extra=extra,
    )
    return documents(text)


def of_kind(objects: list[Obj], *kinds: str) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] in kinds]


def is_hook(obj: Obj) -> bool:
    return "helm.sh/hook" in (obj["metadata"].get("annotations") or {})


def one(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [obj for obj in of_kind(objects, kind) if name is None or obj["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} objects named {name or 'anything'}"
    return found[0]
