"""Filling :class:`.indexes.Indexes` before any handler or run pass starts, and checking what that left.

Runs may start only next to the active runs they know of, so the indexes must be complete before
the first pass: a paged list of projects and runs fills them, one page in memory at a time (only
the summaries stay). A run deleted between that list and the watches' own lists (Kopf's of
projects, :mod:`.run_watch`'s of runs) gets no watch event; the runs the list kept that no watch
event has confirmed are looked up again, and those gone dropped.

Runs are listed as the run watch selects them, without the settled ones (:mod:`.settled_runs`).
History written before that label existed is listed once more: its settled runs are labelled
here, page by page, so that no later list holds the history.

What a page costs is what a start's memory peaks at, and the interpreter keeps that peak: one page
is alive at a time (the next is read only once the last is dropped), and projects, about twice
the size of a run decoded (their status lists feature views, Kopf's annotations copy the spec),
come in smaller pages than runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from feast_lineage.api import FEATURE_STORE_PROJECT_PLURAL, GROUP, MATERIALIZATION_JOB_PLURAL, VERSION
from feast_lineage.controller import settled_runs
from feast_lineage.controller.indexes import Indexes, Obj
from feast_lineage.controller.kube import Kube, read
from feast_lineage.controller.list_watch import scopes
from feast_lineage.domain.labels import LABEL_SETTLED, RUN_FINALIZER
from feast_lineage.domain.materialization_state import needs_settled_label

log = logging.getLogger(__name__)
PAGE = 500
"""Runs per list request: a page's bodies are held only while it is indexed (about 6 MiB decoded)."""
PROJECT_PAGE = 100
"""Projects per list request: about 23 KiB each decoded, so 2.3 MiB a page."""
UNSETTLED = f"!{LABEL_SETTLED}"
"""The label selector of the operator's watch of runs: every run but the settled history."""


def _pages(
    kube: Kube, plural: str, namespaces: list[str], limit: int, selector: str | None = None
) -> Iterator[list[Obj]]:
    """Each page's items. The caller drops a page before asking for the next (``del``): this
    generator holds none while it reads the next, so one page is alive at a time, not two."""
    for namespace in scopes(namespaces):  # None: the whole cluster
        token: str | None = None
        while True:
            paging = {"limit": limit, "continue": token, "label_selector": selector}
            if namespace is None:
                page = read(kube.custom.list_cluster_custom_object, GROUP, VERSION, plural, **paging)
            else:
                page = read(kube.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, plural, **paging)
            page = page or {}  # None: the resource is not served (yet)
            token = (page.get("metadata") or {}).get("continue") or None
            items = list(page.get("items") or [])
            del page
            yield items
            del items
            if token is None:
                break


def fill(kube: Kube, indexes: Indexes, namespaces: list[str]) -> tuple[int, int, int]:
    """Index every project and unsettled run of the watched namespaces, and label the settled runs
    among them; returns how many projects and runs were listed, and how many runs labelled."""
    projects = runs = labelled = 0
    for page in _pages(kube, FEATURE_STORE_PROJECT_PLURAL, namespaces, PROJECT_PAGE):
        projects += _index_projects(indexes, page)
        del page  # before the next page is read
    for page in _pages(kube, MATERIALIZATION_JOB_PLURAL, namespaces, PAGE, UNSETTLED):
        runs += len(page)
        labelled += _index_runs(kube, indexes, page)
        del page
    return projects, runs, labelled


def _index_projects(indexes: Indexes, page: list[Obj]) -> int:
    for body in page:
        meta = body.get("metadata") or {}
        indexes.observe_project(meta.get("namespace", ""), meta.get("name", ""), dict(body.get("spec") or {}))
    return len(page)


def _index_runs(kube: Kube, indexes: Indexes, page: list[Obj]) -> int:
    """Index a page of runs; label its settled ones. Returns how many were labelled."""
    settled = [body for body in page if needs_settled_label(None, body, RUN_FINALIZER)]
    for body in page:
        meta = body.get("metadata") or {}
        indexes.observe_run(meta.get("namespace", ""), meta.get("name", ""), body, listed=True)
    return settled_runs.label_all(kube, settled) if settled else 0


def drop_vanished(kube: Kube, indexes: Indexes) -> int:
    """Look up each listed run no watch event has confirmed; drop those that no longer exist."""
    dropped = 0
    for namespace, name in indexes.unconfirmed_runs():
        if kube.get_custom(MATERIALIZATION_JOB_PLURAL, namespace, name) is None:
            dropped += indexes.forget_unconfirmed(namespace, name)
    return dropped


def confirm_in_background(kube: Kube, indexes: Indexes, interval: float, stop: threading.Event) -> threading.Thread:
    """Every ``interval`` seconds, :func:`drop_vanished` until every listed run is confirmed."""

    def loop() -> None:
        while indexes.unconfirmed_runs() and not stop.wait(interval):
            try:
                dropped = drop_vanished(kube, indexes)
            except Exception:  # an API server that is away now is asked again next time
                log.warning("checking listed runs failed; retrying", exc_info=True)
                continue
            if dropped:
                log.info("dropped %d listed run(s) deleted before the watch started", dropped)

    thread = threading.Thread(target=loop, name="index-confirmation", daemon=True)
    thread.start()
    return thread
