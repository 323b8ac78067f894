"""Which periodic passes a project needs, and what a schedule tick keeps of it."""

from __future__ import annotations

from typing import Any

from feast_lineage.api import APPROVE_PLAN_ANNOTATION, GROUP
from feast_lineage.controller.list_watch import LISTED
from feast_lineage.controller.project_passes import (
    APPLYING,
    AUDIT,
    HOLD,
    RELEASE,
    RESYNC,
    SCHEDULE,
    SECRET_RETRY,
    SOURCE_RETRY,
    Approvals,
    LastSeen,
    ProjectIntervals,
    approval,
    finalizer_step,
    kopf_leftovers,
    pass_on_event,
    project_purposes,
    schedule_view,
)
from feast_lineage.controller.run_scheduler import DELETING
from feast_lineage.domain.labels import RUN_FINALIZER as FINALIZER


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


def project(generation: int = 1, observed: int | None = None, **meta: Any) -> dict[str, Any]:
    status = {} if observed is None else {"observedGeneration": observed}
    return {"metadata": {"name": "p", "namespace": "ns", "generation": generation, **meta}, "status": status}


def approved(plan: str, **rest: Any) -> dict[str, Any]:
    return project(2, 2, annotations={APPROVE_PLAN_ANNOTATION: plan}, **rest)


def test_a_project_seen_for_the_first_time_is_passed() -> None:
    assert pass_on_event(LISTED, project(3, 3), None)
    assert pass_on_event("ADDED", project(1), None)


def test_a_spec_change_is_passed_and_the_operators_own_status_write_is_not() -> None:
    assert pass_on_event("MODIFIED", project(2, 1), None)
    assert not pass_on_event("MODIFIED", project(2, 2), None)
    # Never passed yet (the first pass waits for Git, or failed): every event asks again.
    assert pass_on_event("MODIFIED", project(1), None)


def test_a_change_of_the_plan_approval_is_passed_its_removal_included() -> None:
    assert pass_on_event("MODIFIED", approved("plan-a"), None)
    assert pass_on_event("MODIFIED", approved("plan-b"), "plan-a")
    assert not pass_on_event("MODIFIED", approved("plan-a"), "plan-a")
    assert pass_on_event("MODIFIED", project(2, 2), "plan-a")
    assert approval(approved("plan-a")) == "plan-a" and approval(project()) is None


def test_the_last_approval_is_kept_for_annotated_projects_only() -> None:
    approvals = Approvals()
    assert approvals.swap("ns", "p", approved("plan-a")) is None
    assert approvals.swap("ns", "p", approved("plan-b")) == "plan-a"
    assert approvals.swap("ns", "p", project()) == "plan-b"
    assert len(approvals) == 0  # removed: nothing kept of a project without one
    approvals.swap("ns", "p", approved("plan-c"))
    assert approvals.swap("ns", "p", None) == "plan-c" and len(approvals) == 0


def test_a_deletion_is_the_finalizers_not_a_pass() -> None:
    assert not pass_on_event("DELETED", project(1), None)
    deleting = project(3, 2, deletionTimestamp="2026-11-27T00:00:00Z")  # a graceful deletion moves the generation
    assert not pass_on_event("MODIFIED", deleting, None)
    assert not pass_on_event(LISTED, deleting, None)


def test_the_finalizer_is_held_until_a_deletion_and_released_then() -> None:
    deleting = "2026-11-27T00:00:00Z"
    assert finalizer_step(project(), FINALIZER) == HOLD
    assert finalizer_step(project(finalizers=["other"]), FINALIZER) == HOLD
    assert finalizer_step(project(finalizers=[FINALIZER]), FINALIZER) is None
    assert finalizer_step(project(finalizers=[FINALIZER], deletionTimestamp=deleting), FINALIZER) == RELEASE
    # Not held: a deletion goes its way (a finalizer put on now would hold it for nothing).
    assert finalizer_step(project(finalizers=["other"], deletionTimestamp=deleting), FINALIZER) is None


def test_kopfs_leftovers_are_its_diff_base_and_its_progress_whatever_their_length() -> None:
    annotations = {
        f"{GROUP}/last-handled-configuration": '{"spec": {}}',
        f"{GROUP}/project_changed": "{}",
        f"{GROUP}/project_approval_changed.metadata.annotations.featurelineage.io-3mUq5w": "{}",
        f"{GROUP}/project_deleted": "{}",
        f"{GROUP}/touch-dummy": "2026-11-27T00:00:00Z",
        f"{GROUP}/creator": "alice",
        APPROVE_PLAN_ANNOTATION: "plan",
        "kopf.zalando.org/last-handled-configuration": "another operator's",
    }
    assert kopf_leftovers(annotations) == [
        f"{GROUP}/last-handled-configuration",
        f"{GROUP}/project_approval_changed.metadata.annotations.featurelineage.io-3mUq5w",
        f"{GROUP}/project_changed",
        f"{GROUP}/project_deleted",
        f"{GROUP}/touch-dummy",
    ]
    assert kopf_leftovers(None) == [] and kopf_leftovers({f"{GROUP}/creator": "alice"}) == []


def test_a_project_being_deleted_is_looked_at_for_its_deletion_only() -> None:
    spec = {"materialization": {"schedule": "0 3 * * *"}}
    assert project_purposes(spec, {}, deleting=True) == {DELETING}
    assert project_purposes(spec, {"pendingAudit": [{"id": "x"}]}, deleting=True) == {DELETING, AUDIT}
    intervals = ProjectIntervals(resync=60, active_poll=5, input_retry=30, audit_retry=20, schedule_tick=10, deleting=3)
    assert intervals.of(DELETING) == 3
