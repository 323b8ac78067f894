"""Kubernetes Events for condition transitions (never for a resync that changed nothing)."""

from __future__ import annotations

import logging

from kubernetes.client.exceptions import ApiException

from feast_lineage.controller.kube import Kube, Obj
from feast_lineage.controller.logs import object_fields
from feast_lineage.domain.conditions import READY, RECONCILING, STALLED, Transition
from feast_lineage.domain.project_state import SOURCE_AVAILABLE
from feast_lineage.domain.runner_outcome import JobObservation
from feast_lineage.redaction import KNOWN
from feast_lineage.timestamps import now_rfc3339

log = logging.getLogger(__name__)
COMPONENT = "feast-lineage-operator"


def _event_type(transition: Transition) -> str | None:
    if transition.type == STALLED and transition.status:
        return "Warning"
    if transition.type == SOURCE_AVAILABLE and not transition.status:
        return "Warning"
    if transition.type in (READY, RECONCILING) and transition.status:
        return "Normal"
    return None


def emit(kube: Kube, body: Obj, event_type: str, reason: str, message: str) -> None:
    meta = body["metadata"]
    now = now_rfc3339()
    event = {
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": body["apiVersion"],
            "kind": body["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": event_type,
        "reason": reason,
        "message": KNOWN.redact(message)[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        kube.create_event(meta["namespace"], event)
    except ApiException as error:  # an Event is worth a log line, not a failed reconcile
        log.warning(
            "could not record event %s: %s", reason, error.reason, extra=object_fields(meta["namespace"], meta["name"])
        )


def emit_transitions(kube: Kube, body: Obj, transitions: list[Transition]) -> None:
    emitted: set[tuple[str, str, str]] = set()
    for transition in transitions:
        event_type = _event_type(transition)
        key = (event_type or "", transition.reason, transition.message)
        if event_type is not None and key not in emitted:  # Stalled and SourceAvailable may say the same
            emitted.add(key)
            emit(kube, body, event_type, transition.reason, transition.message)


def report_distrusted(kube: Kube, body: Obj, job: JobObservation) -> None:
    """A Warning Event and a log line naming what a runner reported against its Job (and was ignored)."""
    if not job.distrusted:
        return
    message = f"ignored what the runner of Job {job.name} reported: " + "; ".join(job.distrusted)
    meta = body["metadata"]
    log.warning("%s", message, extra=object_fields(meta["namespace"], meta["name"], meta.get("generation")))
    emit(kube, body, "Warning", "UntrustedResult", message)
