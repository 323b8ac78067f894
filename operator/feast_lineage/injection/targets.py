"""The projects pods can ask for, kept in memory from the operator's watch of FeatureStoreProjects.

Admission must answer in milliseconds and never wait on the API server, so the webhook
reads only this map. Each entry is parsed once, when the project changes, not per pod.
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import ValidationError

from feast_lineage.api import FeatureStoreProjectSpec, validation_message
from feast_lineage.domain.injection import InjectionTarget
from feast_lineage.domain.labels import child_name


def target_from_body(body: dict[str, Any]) -> InjectionTarget:
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    # What the registry holds: the last successful apply (a later failed one changed nothing).
    last_apply = status.get("lastSuccessfulApply") or status.get("lastApply") or {}
    name = str(meta.get("name", ""))
    spec: FeatureStoreProjectSpec | None = None
    problem = None
    try:
        spec = FeatureStoreProjectSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        problem = validation_message(error)
    succeeded = last_apply.get("outcome") == "Succeeded"
    return InjectionTarget(
        namespace=str(meta.get("namespace", "")),
        name=name,
        spec=spec,
        problem=problem,
        client_config_map=child_name(name, "client-config"),
        revision=last_apply.get("revision") if succeeded else None,
        commit=last_apply.get("commit") if succeeded else None,
        apply_run_id=(last_apply.get("mlflow") or {}).get("runId") if succeeded else None,
        recorded_missed=int((status.get("injection") or {}).get("missedPods") or 0),
    )


class InjectionTargets:
    """Thread-safe map of (namespace, name) to the project as the webhook sees it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_namespace: dict[str, dict[str, InjectionTarget]] = {}
        self._ready = threading.Event()

    def upsert(self, body: dict[str, Any]) -> None:
        target = target_from_body(body)
        with self._lock:
            self._by_namespace.setdefault(target.namespace, {})[target.name] = target

    def remove(self, namespace: str, name: str) -> None:
        with self._lock:
            projects = self._by_namespace.get(namespace)
            if projects is not None:
                projects.pop(name, None)
                if not projects:
                    del self._by_namespace[namespace]

    def all(self) -> list[InjectionTarget]:
        with self._lock:
            return [target for projects in self._by_namespace.values() for target in projects.values()]

    def in_namespace(self, namespace: str) -> list[InjectionTarget]:
        with self._lock:
            return list((self._by_namespace.get(namespace) or {}).values())

    def get(self, namespace: str, name: str) -> InjectionTarget | None:
        with self._lock:
            return (self._by_namespace.get(namespace) or {}).get(name)
