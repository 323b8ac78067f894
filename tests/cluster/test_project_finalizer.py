"""The project finalizer as the operator keeps it itself (no Kopf on the project path), against the real
API server and the session operator: a project carries it from its creation (the operator's mutating
webhook), or, created while no operator answered, from its first pass; a project created and deleted
at once goes, and the operator keeps nothing of it; projects an older version (on Kopf) left with
Kopf's annotations lose them, and one it left being deleted goes.

Deleting a project whose audit records are pending waits for their delivery:
tests/cluster/test_audit_trail_delivery.py (MLflow held unreachable)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from feast_lineage.api import FEATURE_STORE_PROJECT_PLURAL, GROUP, VERSION
from feast_lineage.controller.project_passes import kopf_leftovers
from feast_lineage.domain.labels import RUN_FINALIZER
from tests.cluster.projects import project_manifest
from tests.cluster_helpers import gone, operators_paused, wait_until
from tests.operator_pod import ChartOperator

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]


class Projects:
    """Projects of one namespace, each sourced from a ConfigMap that does not exist: a pass stalls
    it at once (``RepoNotFound``), with no runner pod to wait for."""

    def __init__(self, api: client.ApiClient, namespace: str, data: Path) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.data = data

    def args(self) -> tuple[str, str, str, str]:
        return (GROUP, VERSION, self.namespace, FEATURE_STORE_PROJECT_PLURAL)

    def create(self, name: str, dry_run: str | None = None) -> dict[str, Any]:
        manifest = project_manifest(name, self.data, {"configMap": {"name": "no-such-repo"}})
        return dict(self.custom.create_namespaced_custom_object(*self.args(), manifest, dry_run=dry_run))

    def get(self, name: str) -> dict[str, Any]:
        return dict(self.custom.get_namespaced_custom_object(*self.args(), name))

    def patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return dict(self.custom.patch_namespaced_custom_object(*self.args(), name, patch))

    def names(self) -> list[str]:
        return [item["metadata"]["name"] for item in self.custom.list_namespaced_custom_object(*self.args())["items"]]

    def passed_and_held(self, name: str) -> dict[str, Any] | None:
        """The project once a pass stalled it on its missing repo, and the finalizer is on."""
        body = self.get(name)
        stalled = [
            c
            for c in (body.get("status") or {}).get("conditions") or []
            if c["type"] == "Stalled" and c["status"] == "True" and c["reason"] == "RepoNotFound"
        ]
        held = RUN_FINALIZER in (body["metadata"].get("finalizers") or [])
        return body if stalled and held else None

    def delete_until_gone(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(*self.args(), name)
        wait_until(lambda: gone(self.get, name), 60, f"{name} to be deleted")


def test_a_project_carries_the_finalizer_from_its_creation_and_a_deletion_releases_it(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    """The mutating webhook puts it on as the project is created: the create's own answer has it."""
    projects = Projects(api, namespace, tmp_path)
    # The webhook fails open: until the API server has the operator's CA (published as it starts), a
    # create passes without it. A dry run goes through the webhooks and stores nothing.
    wait_until(
        lambda: projects.create("held-from-birth", dry_run="All")["metadata"].get("finalizers"),
        60,
        "the mutating webhook to answer",
    )
    created = projects.create("held-from-birth")
    assert created["metadata"].get("finalizers") == [RUN_FINALIZER]
    passed = wait_until(lambda: projects.passed_and_held("held-from-birth"), 60, "the project's first pass")
    # The pass put nothing of Kopf's on it: no diff base, no progress.
    assert kopf_leftovers(passed["metadata"].get("annotations")) == []
    projects.delete_until_gone("held-from-birth")


def test_projects_created_and_deleted_at_once_go_and_one_of_the_same_name_starts_afresh(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    projects = Projects(api, namespace, tmp_path)
    names = [f"quick-{index}" for index in range(8)]
    for name in names:
        projects.create(name)
        projects.custom.delete_namespaced_custom_object(*projects.args(), name)
    wait_until(lambda: not projects.names(), 60, "every project created and deleted at once to be gone")

    # The operator kept nothing of them: a new project under the same name is a new project to it.
    projects.create(names[0])
    wait_until(lambda: projects.passed_and_held(names[0]), 60, "the project of the same name to be passed and held")
    projects.delete_until_gone(names[0])


def test_a_project_created_while_no_operator_answered_gets_the_finalizer_from_its_first_pass(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    """The mutating webhook fails open: a project created while it did not answer has no finalizer,
    and the operator's first pass puts it on before anything else."""
    projects = Projects(api, namespace, tmp_path)
    with operators_paused(api):
        created = projects.create("unheld")
        assert RUN_FINALIZER not in (created["metadata"].get("finalizers") or [])
        projects.patch("unheld", {"metadata": {"finalizers": ["example.com/keep"]}})
    held = wait_until(lambda: projects.passed_and_held("unheld"), 120, "the first pass to hold the project")
    # Put on after what was there, which stays.
    assert held["metadata"]["finalizers"] == ["example.com/keep", RUN_FINALIZER]
    projects.patch("unheld", {"metadata": {"finalizers": [RUN_FINALIZER]}})
    projects.delete_until_gone("unheld")


def kopf_left(spec: dict[str, Any]) -> dict[str, Any]:
    """What Kopf (with the operator's prefix) left on a project: the finalizer, its diff base (a copy of
    the spec), the progress of its handlers (a deletion handler's it had retried included, under a
    hashed key) and its touch annotation; beside an annotation of someone else's."""
    progress = json.dumps({"started": "2026-11-27T00:00:00.000000+00:00", "success": True, "purpose": "create"})
    retried = json.dumps({"started": "2026-11-27T00:00:00.000000+00:00", "retries": 1, "purpose": "delete"})
    return {
        "metadata": {
            "finalizers": [RUN_FINALIZER],
            "annotations": {
                f"{GROUP}/last-handled-configuration": json.dumps({"spec": spec}),
                f"{GROUP}/project_changed": progress,
                f"{GROUP}/project_approval_changed.metadata.annotations.featurel-Zk3a9Q": progress,
                f"{GROUP}/project_deleted": retried,
                f"{GROUP}/touch-dummy": "2026-11-27T00:00:05.000000+00:00",
                "example.com/keep": "yes",
            },
        }
    }


def test_projects_an_older_version_left_with_kopfs_annotations_are_stripped_or_deleted(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    projects = Projects(api, namespace, tmp_path)
    with operators_paused(api):
        for name in ("old-kept", "old-deleting"):
            created = projects.create(name)
            projects.patch(name, kopf_left(created["spec"]))
        # Being deleted, held by the finalizer nobody served since.
        projects.custom.delete_namespaced_custom_object(*projects.args(), "old-deleting")
        assert projects.get("old-deleting")["metadata"].get("deletionTimestamp")
    # The operator is back: the deletion in progress finishes.
    wait_until(lambda: gone(projects.get, "old-deleting"), 120, "the deletion the older version left to finish")

    def stripped() -> dict[str, Any] | None:
        body = projects.passed_and_held("old-kept")
        return body if body and not kopf_leftovers(body["metadata"].get("annotations")) else None

    kept = wait_until(stripped, 120, "Kopf's annotations to come off the project the older version left")
    assert kept["metadata"]["annotations"]["example.com/keep"] == "yes"
    assert kept["metadata"]["finalizers"] == [RUN_FINALIZER]
    projects.delete_until_gone("old-kept")
