"""What a run's pass reads of its project and of the project's repo snapshots, fed by the watch.

The operator's watches deliver every project event and every ConfigMap event anyway; keeping what a
run's pass needs of them saves the pass a GET of the project and one of the snapshot ConfigMap.

Each entry is a copy a few milliseconds old at most, and the pass trusts it only where a copy that
old cannot make a wrong verdict (see :func:`~feast_lineage.domain.materialization_state.holds_on_copy`):
a run started on the copy's applied revision is the run the API server would have started had it
been created those milliseconds earlier, and a run told to wait for a peer is looked at again. Any
other verdict (the project missing, not ready, or refusing the run) is made again on a fresh read
before it is written, and so is a snapshot the index does not know: a cold or lagging cache costs a
GET, never a wrong verdict.

Every method is thread-safe: the watch handlers run on the watches' threads, the readers on pass
and scheduler threads.
"""

from __future__ import annotations

import json
import threading
import zlib
from typing import Any

from feast_lineage.api import FEATURE_STORE_PROJECT_KIND
from feast_lineage.domain import labels
from feast_lineage.domain.repo_snapshot import SNAPSHOT_COMPONENT

Obj = dict[str, Any]
Key = tuple[str, str]
"""(namespace, name)"""

COMPRESSION_LEVEL = 1
"""zlib's fastest: most of what a higher level would save is the repeated names it finds anyway."""
KEPT_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation")
KEPT_STATUS = (
    # Whether the project is Ready, and what its registry holds (a run runs against the last
    # successful apply: its revision, snapshot, commit, Job and MLflow run).
    "conditions",
    "appliedSpecHash",
    "lastApply",
    "lastSuccessfulApply",
    # Which views a run may name and which it materializes when it names none.
    "featureViews",
    "featureViewCount",
    "materializedFeatureViews",
    "unmaterializableFeatureViews",
)
"""The status fields a run's pass reads. The rest (pending audit records, the schedule, the last
materialization, feature services, entities, injection) is the project's own business and can be
large; the pass that writes the project's status reads it fresh."""
APPLY_RECORDS = ("lastApply", "lastSuccessfulApply")
DROPPED_FROM_APPLY = ("changes", "impact", "error")
"""What an apply changed, its impact and its error: read by no run (a run reads the revision, its
snapshot, commit, Job, audit id and MLflow run), and the largest parts of an apply's record."""


def kept_status(status: Obj) -> Obj:
    kept = {key: status[key] for key in KEPT_STATUS if key in status}
    for key in APPLY_RECORDS:
        if isinstance(kept.get(key), dict):
            kept[key] = {field: value for field, value in kept[key].items() if field not in DROPPED_FROM_APPLY}
    return kept


def stripped(body: Obj) -> Obj:
    """The project as a run's pass reads it: its identity, its spec whole (the Job is rendered from
    it), and the status fields the decision reads. Shares its values with ``body``."""
    meta = body.get("metadata") or {}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {key: meta[key] for key in KEPT_METADATA if key in meta},
        "spec": dict(body.get("spec") or {}),
        "status": kept_status(body.get("status") or {}),
    }


def pack(project: Obj) -> bytes:
    """A stripped project as compressed JSON: a tenth of its size as Python objects (a str is 49
    bytes before its first character, and a project lists up to hundreds of feature view names,
    twice), for some 50 microseconds per read - against the GET it saves, nothing."""
    # default=dict: a mapping view (Kopf's) is written as the mapping it is.
    text = json.dumps(project, separators=(",", ":"), default=dict)
    return zlib.compress(text.encode(), COMPRESSION_LEVEL)


def unpack(packed: bytes) -> Obj:
    return dict(json.loads(zlib.decompress(packed)))


class ProjectCache:
    """The stripped projects, by namespace and name, as the watch last delivered them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._projects: dict[Key, bytes] = {}

    def observe(self, namespace: str, name: str, body: Obj | None) -> None:
        """A project as last seen (``None``: deleted)."""
        entry = None if body is None else pack(stripped(body))
        with self._lock:
            if entry is None:
                self._projects.pop((namespace, name), None)
            else:
                self._projects[(namespace, name)] = entry

    def get(self, namespace: str, name: str) -> Obj | None:
        """The project as last seen, the caller's own copy; ``None`` if the watch has not delivered
        it (or it went)."""
        with self._lock:
            packed = self._projects.get((namespace, name))
        return None if packed is None else unpack(packed)

    def __len__(self) -> int:
        with self._lock:
            return len(self._projects)


def snapshot_owner(body: Obj) -> str | None:
    """The UID of the project a repo snapshot ConfigMap belongs to; ``None`` for any other ConfigMap."""
    meta = body.get("metadata") or {}
    if (meta.get("labels") or {}).get(labels.LABEL_COMPONENT) != SNAPSHOT_COMPONENT:
        return None
    return labels.controller_owner_uid(meta, FEATURE_STORE_PROJECT_KIND)


class SnapshotIndex:
    """The repo snapshot ConfigMaps that exist, and the project (UID) that controls each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[Key, str] = {}

    def observe(self, namespace: str, name: str, body: Obj | None) -> None:
        """A ConfigMap as last seen (``None``: deleted); only project-owned snapshots are kept."""
        owner = None if body is None else snapshot_owner(body)
        with self._lock:
            if owner is None:
                self._owners.pop((namespace, name), None)
            else:
                self._owners[(namespace, name)] = owner

    def owned_by(self, namespace: str, name: str, uid: str) -> bool:
        """Whether the watch last saw ``name`` exist and controlled by the project ``uid``. False
        proves nothing (not seen yet): the caller reads the ConfigMap before calling it gone."""
        with self._lock:
            return self._owners.get((namespace, name)) == uid

    def __len__(self) -> int:
        with self._lock:
            return len(self._owners)


__all__ = ["KEPT_STATUS", "ProjectCache", "SnapshotIndex", "pack", "snapshot_owner", "stripped", "unpack"]
