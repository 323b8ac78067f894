"""The run finalizer, kept by the operator itself: on from a run's start, off once its audit record
is delivered (or abandoned by a deletion). Which step a run needs is
:func:`~feast_lineage.domain.materialization_state.finalizer_step`'s decision. Projects carry the same
finalizer, held and released with the same patches (``plural=``; see :mod:`.project_watch`).

Each step is one JSON merge patch of the run's ``metadata``, conditional on the resourceVersion the
decision was made on: a run changed since (409) or gone (404) is decided again from its next watch
event. A merge patch replaces the finalizer list whole, which the condition makes safe: a finalizer
someone else added meanwhile is never dropped.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client.exceptions import ApiException

from feast_lineage.api import GROUP, MATERIALIZATION_JOB_PLURAL, VERSION
from feast_lineage.controller.kube import Kube, Obj
from feast_lineage.controller.metrics import RUNS_SETTLED
from feast_lineage.domain.labels import ANNOTATION_SCHEDULED_TIME, LABEL_SETTLED


def patch_metadata(
    kube: Kube, body: Obj, metadata: dict[str, Any], plural: str = MATERIALIZATION_JOB_PLURAL
) -> Obj | None:
    """Merge ``metadata`` into the object (a run, unless ``plural`` says otherwise) as ``body`` has
    it; the object as patched, or None if it changed or went."""
    meta = body.get("metadata") or {}
    patch = {"metadata": {**metadata, "resourceVersion": meta.get("resourceVersion")}}
    try:
        response = kube.custom.patch_namespaced_custom_object(
            GROUP, VERSION, meta.get("namespace", ""), plural, meta.get("name", ""), patch
        )
    except ApiException as error:
        if error.status in (404, 409):
            return None
        raise
    return dict(json.loads(response.data))


def _without(body: Obj, finalizer: str) -> list[str] | None:
    """The run's finalizers but ``finalizer`` (None when none are left: the field goes)."""
    rest = [f for f in (body.get("metadata") or {}).get("finalizers") or [] if f != finalizer]
    return rest or None


def hold(kube: Kube, body: Obj, finalizer: str, plural: str = MATERIALIZATION_JOB_PLURAL) -> Obj | None:
    """Put ``finalizer`` on; the object as patched, or None if it changed or went meanwhile."""
    current = list((body.get("metadata") or {}).get("finalizers") or [])
    return patch_metadata(kube, body, {"finalizers": [*current, finalizer]}, plural)


def release(kube: Kube, body: Obj, finalizer: str, plural: str = MATERIALIZATION_JOB_PLURAL) -> bool:
    """Take ``finalizer`` off (a deletion then completes); False if the object changed or went meanwhile."""
    return patch_metadata(kube, body, {"finalizers": _without(body, finalizer)}, plural) is not None


def settle(kube: Kube, body: Obj, finalizer: str, when: str) -> bool:
    """Take ``finalizer`` off a run that is done, and label it settled in the same patch (out of the
    watch from then on), unless a schedule made it (the schedule counts it until it prunes it)."""
    scheduled = ANNOTATION_SCHEDULED_TIME in ((body.get("metadata") or {}).get("annotations") or {})
    metadata: dict[str, Any] = {"finalizers": _without(body, finalizer)}
    if not scheduled:
        metadata["labels"] = {LABEL_SETTLED: "true"}
    if patch_metadata(kube, body, metadata) is None:
        return False
    if not scheduled:
        RUNS_SETTLED.labels(when=when).inc()
    return True
