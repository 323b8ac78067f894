"""The finished history out of the operator's watch: the settled label on runs it is done with.

The watch of runs (the operator's own, see :mod:`.run_watch`, and the index loader's list)
selects ``!featurelineage.io/settled``: a run that gets the label is reported gone to the watch,
and no later list holds it, so ten thousand finished runs cost a start neither their bodies in
memory nor their handling. Which run gets it is
:func:`~feast_lineage.domain.materialization_state.finalizer_step`'s decision: the label comes with
the finalizer's removal (:func:`.run_finalizer.settle`), or alone on history from before it.

The patch is conditional on the resourceVersion the decision was made on: a run changed since
(deleted, or its label removed and put back by someone else) is decided again from its next event.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from feast_lineage.controller.kube import Kube, Obj
from feast_lineage.controller.metrics import RUNS_SETTLED
from feast_lineage.controller.run_finalizer import patch_metadata
from feast_lineage.domain.labels import LABEL_SETTLED

log = logging.getLogger(__name__)
CONCURRENCY = 8
"""Label patches at once when a start labels the history written before the label existed."""


def label_settled(kube: Kube, body: Obj, when: str) -> bool:
    """Label a settled run; False if it changed or went since ``body`` (its next event decides again)."""
    if patch_metadata(kube, body, {"labels": {LABEL_SETTLED: "true"}}) is None:
        return False
    RUNS_SETTLED.labels(when=when).inc()
    return True


def label_all(kube: Kube, bodies: Iterable[Obj]) -> int:
    """Label settled runs found at start, a few at a time; returns how many were labelled. A run that
    cannot be labelled now does not hold up the start: the watch lists it and labels it then."""

    def one(body: Obj) -> bool:
        try:
            return label_settled(kube, body, "start")
        except Exception:  # the API server refused or was away: the watch's listing tries again
            log.warning("labelling a settled run failed; its listing will", exc_info=True)
            return False

    with ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="settle") as pool:
        return sum(pool.map(one, bodies))
