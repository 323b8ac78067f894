"""The run finalizer as the operator keeps it itself (no Kopf on the run path), against the real API
server and the session operator: a run carries it from its creation (the operator's mutating
webhook), a run created and deleted at once goes, leaving nothing stuck and
nothing of it behind in the operator; runs an older version left with Kopf's finalizer and
annotations - finished, or being deleted, one with a record whose project is gone - are settled,
deleted and abandoned as the current version would.

Deleting a run whose record is pending waits for its delivery and completes once delivered:
tests/cluster/test_audit_trail_delivery.py (a real run, MLflow held unreachable)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from feast_lineage.api import GROUP
from feast_lineage.domain.audit_backlog import AUDIT_ABANDONED
from feast_lineage.domain.labels import LABEL_SETTLED, RUN_FINALIZER
from tests.cluster.projects import range_run_manifest
from tests.cluster.test_settled_runs import Runs
from tests.cluster_helpers import operators_paused, wait_until
from tests.operator_pod import ChartOperator

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

KOPF_PROGRESS = {
    # What Kopf (with the operator's prefix) left on a run whose deletion handler it had retried.
    f"{GROUP}/run_deleted": json.dumps(
        {
            "started": "2026-11-27T00:00:00.000000+00:00",
            "delayed": "2026-11-27T00:00:05.000000+00:00",
            "purpose": "delete",
            "retries": 1,
            "success": False,
            "failure": False,
            "message": "delivering the pending audit record to MLflow first",
        }
    ),
}


def gone(runs: Runs, name: str) -> bool:
    return not any(item["metadata"]["name"] == name for item in runs_listed(runs))


def runs_listed(runs: Runs) -> list[dict[str, Any]]:
    return list(runs.custom.list_namespaced_custom_object(*runs.args())["items"])


def test_a_run_carries_the_finalizer_from_its_creation_and_a_deletion_releases_it(
    api: client.ApiClient, namespace: str, operator: ChartOperator
) -> None:
    """The mutating webhook puts it on as the run is created: the create's own answer has it, so the
    operator's first pass needs no PATCH of its own (nor does a run deleted before that pass escape it)."""
    runs = Runs(api, namespace)
    created = runs.create(range_run_manifest("held-from-birth", "gone-project"))
    assert RUN_FINALIZER in (created["metadata"].get("finalizers") or [])
    runs.delete_until_gone("held-from-birth")


def test_a_run_server_side_applied_keeps_the_finalizer_through_the_appliers_next_apply(
    api: client.ApiClient, namespace: str, operator: ChartOperator
) -> None:
    """The finalizer the webhook adds at creation is not the applier's field: a GitOps tool applying
    the run again without it (here with a changed label) leaves it on."""
    runs = Runs(api, namespace)
    manifest = range_run_manifest("applied", "gone-project")

    def apply(labels: dict[str, str]) -> dict[str, Any]:
        body = {**manifest, "metadata": {**manifest["metadata"], "labels": labels}}
        response = runs.custom.patch_namespaced_custom_object(
            *runs.args(),
            "applied",
            body,
            field_manager="gitops",
            force=True,
            _content_type="application/apply-patch+yaml",
            _preload_content=False,  # the client decodes no answer to an apply patch
        )
        return dict(json.loads(response.data))

    assert RUN_FINALIZER in (apply({"round": "1"})["metadata"].get("finalizers") or [])
    assert RUN_FINALIZER in (apply({"round": "2"})["metadata"].get("finalizers") or [])
    runs.delete_until_gone("applied")


def test_runs_created_and_deleted_at_once_go_and_a_run_of_the_same_name_starts_afresh(
    api: client.ApiClient, namespace: str, operator: ChartOperator
) -> None:
    runs = Runs(api, namespace)
    names = [f"quick-{index}" for index in range(8)]
    for name in names:
        runs.create(range_run_manifest(name, "gone-project"))
        runs.custom.delete_namespaced_custom_object(*runs.args(), name)
    # Whether the operator put its finalizer on before the deletion or not, nothing holds them.
    wait_until(lambda: not runs_listed(runs), 60, "every run created and deleted at once to be gone")

    # The operator kept nothing of them: a new run under the same name is a new run to it, passed,
    # held by the finalizer while it waits, and released when deleted.
    runs.create(range_run_manifest(names[0], "gone-project"))

    def waiting() -> bool:
        body = runs.get(names[0])
        return (body.get("status") or {}).get("phase") == "Pending" and RUN_FINALIZER in (
            body["metadata"].get("finalizers") or []
        )

    wait_until(waiting, 60, "the run of the same name to be passed and held")
    assert runs.get(names[0])["status"]["reason"] == "ProjectNotFound"
    runs.delete_until_gone(names[0])


def test_runs_an_older_version_left_with_kopfs_finalizer_are_settled_deleted_and_abandoned(
    api: client.ApiClient, namespace: str, operator: ChartOperator
) -> None:
    runs = Runs(api, namespace)
    core = client.CoreV1Api(api)
    kopf_left = {"metadata": {"finalizers": [RUN_FINALIZER], "annotations": KOPF_PROGRESS}}
    with operators_paused(api):
        # Finished and delivered, its finalizer still on (the older version stopped before taking it off).
        runs.create_finished("old-done", "Succeeded")
        runs.patch("old-done", kopf_left)
        # Finished, being deleted, held by the finalizer nobody served since.
        runs.create_finished("old-deleting", "Failed")
        runs.patch("old-deleting", kopf_left)
        runs.custom.delete_namespaced_custom_object(*runs.args(), "old-deleting")
        # Being deleted with a record pending whose project is gone: no MLflow to deliver it to.
        runs.create_finished("old-pending", "Succeeded")
        runs.patch("old-pending", kopf_left)
        body = runs.get("old-pending")
        status = {**body["status"], "pendingAudit": [{"i": "record-of-a-gone-project"}]}
        runs.custom.replace_namespaced_custom_object_status(*runs.args(), "old-pending", {**body, "status": status})
        runs.custom.delete_namespaced_custom_object(*runs.args(), "old-pending")
        for name in ("old-deleting", "old-pending"):
            assert runs.get(name)["metadata"].get("deletionTimestamp")
    # The operator is back: the deletions in progress finish, the finished run is settled.
    wait_until(lambda: gone(runs, "old-deleting"), 120, "the deletion the older version left to finish")
    wait_until(lambda: gone(runs, "old-pending"), 120, "the deletion with a record of a gone project to finish")
    events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=old-pending").items
    assert any(event.reason == AUDIT_ABANDONED and "record-of-a-gone-project" in event.message for event in events)

    def settled() -> bool:
        meta = runs.get("old-done")["metadata"]
        return (meta.get("labels") or {}).get(LABEL_SETTLED) == "true" and RUN_FINALIZER not in (
            meta.get("finalizers") or []
        )

    wait_until(settled, 120, "the finished run to lose the finalizer and get the settled label")
    runs.delete_until_gone("old-done")
