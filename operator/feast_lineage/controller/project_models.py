"""A run's pass reads its project as pydantic models; these are validated once per project version.

A pass that starts a run read the project's status as a model five times (its peers, its snapshot,
its provenance, the decision, the Job's revision) and its spec once more to render the Job: with a
project that lists hundreds of feature views, the largest share of the pass's own CPU after its
requests. A burst of runs reads the same few projects at the same resourceVersion, so the models are
kept by project UID and resourceVersion, for the few projects used last (``SIZE``): a project lists
up to hundreds of views, and a thousand projects' models would cost what the packed copies of
:mod:`.project_cache` save.

The status model is made from the fields a run's pass reads (:data:`.project_cache.KEPT_STATUS`),
whether the project came from the watch's copy or a fresh GET: the same version gives the same
model either way. Models handed out are shared between threads: callers read them, never change them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from feast_lineage.api import FeatureStoreProject, FeatureStoreProjectStatus
from feast_lineage.controller.project_cache import kept_status

Obj = dict[str, Any]
SIZE = 32
"""Projects whose models are kept: those of a burst's runs, not every project's."""
SPEC_KEYS = ("apiVersion", "kind", "metadata", "spec")
M = TypeVar("M")


def version_of(project: Obj) -> tuple[str, str] | None:
    """The project's UID and resourceVersion; None when it lacks either (nothing to key a model on)."""
    meta = project.get("metadata") or {}
    uid, version = meta.get("uid"), meta.get("resourceVersion")
    return (str(uid), str(version)) if uid and version else None


class ProjectModels:
    """The models of the projects used last, by UID and resourceVersion. Thread-safe."""

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._statuses: OrderedDict[tuple[str, str], FeatureStoreProjectStatus] = OrderedDict()
        self._projects: OrderedDict[tuple[str, str], FeatureStoreProject] = OrderedDict()

    def status(self, project: Obj) -> FeatureStoreProjectStatus:
        """The status fields a run reads, as a model (shared: read it, never change it)."""
        return self._kept(
            self._statuses,
            project,
            lambda: FeatureStoreProjectStatus.from_k8s(kept_status(project.get("status") or {})),
        )

    def project(self, project: Obj) -> FeatureStoreProject:
        """The project's identity and spec as a model (shared: read it, never change it); raises
        ``ValidationError`` as ``model_validate`` does, every time it is asked (nothing is kept)."""
        return self._kept(
            self._projects, project, lambda: FeatureStoreProject.model_validate({k: project[k] for k in SPEC_KEYS})
        )

    def _kept(self, kept: OrderedDict[tuple[str, str], M], project: Obj, make: Callable[[], M]) -> M:
        key = version_of(project)
        if key is not None:
            with self._lock:
                model = kept.get(key)
                if model is not None:
                    kept.move_to_end(key)
                    return model
        model = make()
        if key is not None:
            with self._lock:
                kept[key] = model
                while len(kept) > self.size:
                    kept.popitem(last=False)
        return model
