"""The operator's own indexes of projects and runs, fed by the watch.

Kopf's ``@kopf.index`` makes every handler wait until every object of the indexed resource has
been indexed once, and that gate costs time quadratic in the objects listed (see
``benchmarks/kopf_index_gate.py``): at a thousand projects and ten thousand runs the operator
never started a pass. These indexes are filled from a paged list before Kopf starts its handlers
(:mod:`.index_loader`), then kept current from watch events: the watches' own lists (Kopf's of
projects, :mod:`.run_watch`'s of runs) start after that list, so each object's newer state comes
after it, and observing the same state again changes nothing.

Three look-ups, the same shapes the call sites read from Kopf's indexes before:
- the runs a project's decisions need (unfinished runs, and the runs its schedule made), as
  :func:`peer_summary` summaries;
- the project of each unfinished run (a Job's event names only its run);
- the projects that reference each ConfigMap.

Every method is thread-safe: the watch handlers run on Kopf's event loop and the run watch's
threads, the readers on worker and scheduler threads.
"""

from __future__ import annotations

import threading
from typing import Any

from feast_lineage.controller.materialization_reconciler import kept_in_index, peer_summary
from feast_lineage.domain.materialization_state import TERMINAL
from feast_lineage.domain.references import referenced_config_maps

Obj = dict[str, Any]
Key = tuple[str, str]
"""(namespace, name)"""


def project_of(spec: Obj) -> str:
    return str((spec.get("projectRef") or {}).get("name", ""))


class Indexes:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._peers: dict[Key, dict[str, Obj]] = {}  # (namespace, project) -> run name -> summary
        self._kept_in: dict[Key, str] = {}  # (namespace, run) -> the project whose peers hold it
        self._active: dict[Key, str] = {}  # (namespace, unfinished run) -> its project
        self._users: dict[Key, set[str]] = {}  # (namespace, ConfigMap) -> projects referencing it
        self._references: dict[Key, frozenset[str]] = {}  # (namespace, project) -> its ConfigMaps
        self._unconfirmed: set[Key] = set()  # runs kept from the list that no watch event confirmed yet

    # -- runs -------------------------------------------------------------------------------------

    def observe_run(self, namespace: str, name: str, body: Obj | None, *, listed: bool = False) -> None:
        """A run as last seen (``None``: deleted). ``listed``: from the list before the watch, which
        cannot report a deletion that happens before the watch's own list; such an entry stays unconfirmed
        until a watch event confirms it (see :meth:`forget_unconfirmed`)."""
        key = (namespace, name)
        with self._lock:
            self._drop_run(key)
            if listed:
                self._unconfirmed.add(key)
            else:
                self._unconfirmed.discard(key)
            if body is None:
                self._unconfirmed.discard(key)
                return
            meta, spec, status = (dict(body.get(part) or {}) for part in ("metadata", "spec", "status"))
            project = project_of(spec)
            if kept_in_index(meta, status):
                self._peers.setdefault((namespace, project), {})[name] = peer_summary(name, meta, spec, status)
                self._kept_in[key] = project
            else:
                self._unconfirmed.discard(key)
            if status.get("phase") not in TERMINAL:
                self._active[key] = project

    def _drop_run(self, key: Key) -> None:
        self._active.pop(key, None)
        project = self._kept_in.pop(key, None)
        if project is None:
            return
        bucket_key = (key[0], project)
        bucket = self._peers.get(bucket_key, {})
        bucket.pop(key[1], None)
        if not bucket:
            self._peers.pop(bucket_key, None)

    def peers(self, namespace: str, project: str) -> list[Obj]:
        """The summaries of the project's runs that decisions need (a copy: the caller may keep it)."""
        with self._lock:
            return list(self._peers.get((namespace, project), {}).values())

    def project_of_run(self, namespace: str, name: str) -> str | None:
        """The project of an unfinished run; ``None`` for a finished or unknown one."""
        with self._lock:
            return self._active.get((namespace, name))

    def unconfirmed_runs(self) -> list[Key]:
        with self._lock:
            return sorted(self._unconfirmed)

    def forget_unconfirmed(self, namespace: str, name: str) -> bool:
        """Drop a listed run that turned out not to exist, unless a watch event has seen it since."""
        key = (namespace, name)
        with self._lock:
            if key not in self._unconfirmed:
                return False
            self._unconfirmed.discard(key)
            self._drop_run(key)
            return True

    # -- projects ---------------------------------------------------------------------------------

    def observe_project(self, namespace: str, name: str, spec: Obj | None) -> None:
        """A project's spec as last seen (``None``: deleted)."""
        key = (namespace, name)
        wanted = frozenset() if spec is None else frozenset(referenced_config_maps(spec))
        with self._lock:
            before = self._references.pop(key, frozenset())
            for config_map in before - wanted:
                users = self._users.get((namespace, config_map), set())
                users.discard(name)
                if not users:
                    self._users.pop((namespace, config_map), None)
            for config_map in wanted:
                self._users.setdefault((namespace, config_map), set()).add(name)
            if wanted:
                self._references[key] = wanted

    def projects_using(self, namespace: str, config_map: str) -> set[str]:
        with self._lock:
            return set(self._users.get((namespace, config_map), set()))

    def sizes(self) -> dict[str, int]:
        """Entries per index (what the indexes cost grows with these)."""
        with self._lock:
            return {
                "runs_by_project": sum(len(bucket) for bucket in self._peers.values()),
                "project_of_run": len(self._active),
                "projects_by_configmap": sum(len(users) for users in self._users.values()),
                "unconfirmed": len(self._unconfirmed),
            }
