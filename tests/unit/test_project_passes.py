"""Which periodic passes a project needs, and what a schedule tick keeps of it."""

from __future__ import annotations

from typing import Any

from feast_lineage.controller.project_passes import (
    APPLYING,
    AUDIT,
    RESYNC,
    SCHEDULE,
    SECRET_RETRY,
    SOURCE_RETRY,
    LastSeen,
    project_purposes,
    schedule_view,
)


def condition(kind: str, status: str, reason: str = "") -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason}


def test_a_settled_project_is_only_resynced() -> None:
    status = {"conditions": [condition("Ready", "True"), condition("Reconciling", "False")]}
    assert project_purposes({}, status) == {RESYNC}


def test_an_apply_in_flight_is_polled_but_one_awaiting_approval_is_not() -> None:
    assert APPLYING in project_purposes({}, {"conditions": [condition("Reconciling", "True", "Applying")]})
    waiting = {"conditions": [condition("Reconciling", "True", "AwaitingApproval")]}
    assert APPLYING not in project_purposes({}, waiting)


def test_each_kind_of_wait_has_its_own_retry() -> None:
    assert SOURCE_RETRY in project_purposes({}, {"conditions": [condition("SourceAvailable", "False")]})
    assert SECRET_RETRY in project_purposes({}, {"conditions": [condition("Stalled", "True", "SecretNotFound")]})
    assert SECRET_RETRY not in project_purposes({}, {"conditions": [condition("Stalled", "True", "InvalidSpec")]})
    assert AUDIT in project_purposes({}, {"pendingAudit": [{"id": "x"}]})
    assert SCHEDULE in project_purposes({"materialization": {"schedule": "0 3 * * *"}}, {})


def test_the_schedule_view_drops_managed_fields_and_annotations() -> None:
    body = {
        "apiVersion": "featurelineage.io/v1alpha1",
        "kind": "FeatureStoreProject",
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "uid": "u",
            "resourceVersion": "7",
            "creationTimestamp": "2026-11-27T00:00:00Z",
            "managedFields": [{"manager": "kubectl"}],
            "annotations": {"kopf": "last-handled-configuration"},
        },
        "spec": {"materialization": {"schedule": "0 3 * * *"}},
        "status": {"schedule": {"lastRun": "r"}},
    }
    view = schedule_view(body)
    assert view["metadata"] == {
        "name": "p",
        "namespace": "ns",
        "uid": "u",
        "resourceVersion": "7",
        "creationTimestamp": "2026-11-27T00:00:00Z",
    }
    assert view["spec"] == body["spec"] and view["status"] == body["status"]
    seen = LastSeen()
    seen.observe("ns", "p", body)
    assert seen.get("ns", "p") == view
    seen.observe("ns", "p", None)
    assert seen.get("ns", "p") is None and len(seen) == 0
