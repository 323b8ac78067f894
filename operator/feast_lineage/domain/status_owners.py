"""Who writes which top-level status field, and the status a write stores.

A status is written whole: each writer builds its fields from the typed status
model and the write replaces them, nested objects included, so nothing a new
value leaves out survives from an old one. Several writers share a
FeatureStoreProject's status, each owning some top-level fields; a write keeps
every field it does not own exactly as it read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from feast_lineage.api import FeatureStoreProjectStatus, MaterializationJobStatus, StatusModel

PROJECT_SCHEDULE = frozenset({"schedule"})
"""The schedule tick."""
PROJECT_LAST_MATERIALIZATION = frozenset({"lastMaterialization"})
"""The MaterializationJob reconciler, when one of the project's runs finishes."""
PROJECT_INJECTION = frozenset({"injection"})
"""The pod monitor of the injection webhook."""
PROJECT_AUDIT = frozenset({"pendingAudit", "undeliverableAudit", "lastApply", "lastSuccessfulApply"})
"""Audit redelivery: the records it delivered or set aside, and the run it made for the last (successful) apply."""
PROJECT_RECONCILER = (
    FeatureStoreProjectStatus.field_names() - PROJECT_SCHEDULE - PROJECT_LAST_MATERIALIZATION - (PROJECT_INJECTION)
)
"""The project reconciler: everything else, including fields added later."""

RUN_RECONCILER = MaterializationJobStatus.field_names()
RUN_AUDIT = frozenset({"pendingAudit", "undeliverableAudit", "mlflow"})


def stored_status(read: Mapping[str, Any] | None, new: StatusModel, owned: frozenset[str]) -> dict[str, Any]:
    """The status to store: the ``owned`` fields exactly as ``new`` has them (absent when unset), every
    other field as it was read."""
    written = new.to_k8s()
    kept = {key: value for key, value in (read or {}).items() if key not in owned}
    return {**kept, **{key: value for key, value in written.items() if key in owned}}


def owned_part(status: Mapping[str, Any] | None, owned: frozenset[str]) -> dict[str, Any]:
    return {key: value for key, value in (status or {}).items() if key in owned}
