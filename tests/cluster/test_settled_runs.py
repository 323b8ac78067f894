"""The finished history out of the operator's watch, against the real API server and the session
operator: a run is labelled settled once its record is delivered and its finalizer gone, not
before, and can still be deleted; history written without the label is labelled by a start before
the operator's watch lists runs; the label is the operator's to set, and put back when removed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from feast_lineage.api import GROUP, MATERIALIZATION_JOB_PLURAL, VERSION, MaterializationJobStatus
from feast_lineage.devcluster.mlflow_server import MlflowServer
from feast_lineage.domain.labels import LABEL_SETTLED, RUN_FINALIZER
from tests.cluster.projects import Projects, example_files, project_manifest, range_run_manifest, repo_configmap
from tests.cluster_helpers import operators_paused, wait_until
from tests.hostile_servers import Gate, serving
from tests.operator_pod import ChartOperator

# An apply and a materialization of the example on a busy machine, and operator restarts: minutes.
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1200)]

HISTORY = 20


def settled_count(operator: ChartOperator, when: str) -> float:
    """The operator's count of runs it labelled settled, by when it found them (0 before any)."""
    pattern = re.compile(rf'^feast_lineage_runs_settled_total\{{when="{when}"\}} (\S+)$', re.MULTILINE)
    found = pattern.search(operator.metrics())
    return float(found.group(1)) if found else 0.0


class Runs:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace

    def args(self) -> tuple[str, str, str, str]:
        return (GROUP, VERSION, self.namespace, MATERIALIZATION_JOB_PLURAL)

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return dict(self.custom.create_namespaced_custom_object(*self.args(), manifest))

    def get(self, name: str) -> dict[str, Any]:
        return dict(self.custom.get_namespaced_custom_object(*self.args(), name))

    def patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return dict(self.custom.patch_namespaced_custom_object(*self.args(), name, patch))

    def create_finished(self, name: str, phase: str) -> None:
        """A run of a project that does not exist, its status written as if it had run (before the
        label existed, or while no operator ran)."""
        body = self.create(range_run_manifest(name, "gone-project"))
        status = MaterializationJobStatus(phase=phase, reason=phase, message="finished earlier")
        self.custom.replace_namespaced_custom_object_status(*self.args(), name, {**body, "status": status.to_k8s()})

    def delete_until_gone(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(*self.args(), name)

        def gone() -> bool:
            try:
                self.get(name)
            except ApiException as error:
                return bool(error.status == 404)
            return False

        wait_until(gone, 60, f"{name} to be deleted")

    def labelled(self, name: str) -> bool:
        return LABEL_SETTLED in (self.get(name)["metadata"].get("labels") or {})


def test_a_run_is_labelled_settled_once_its_record_is_delivered_and_can_still_be_deleted(
    api: client.ApiClient, namespace: str, operator: ChartOperator, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    projects, runs = Projects(api, namespace), Runs(api, namespace)
    gate = Gate(mlflow_server.port)
    with serving(gate) as proxy:
        projects.core.create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
        manifest = project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}})
        manifest["spec"]["mlflow"].update(trackingUri=proxy.url, requestTimeoutSeconds=30, maxRetries=1)
        projects.create(manifest)
        projects.wait_condition("drivers", "Ready", timeout=300)
        runs.create(range_run_manifest("backfill", "drivers"))

        def finished_with_record_pending() -> dict[str, Any] | None:
            body = runs.get("backfill")
            status = body.get("status") or {}
            return body if status.get("phase") in ("Succeeded", "Failed") and status.get("pendingAudit") else None

        body = wait_until(finished_with_record_pending, 300, "the run to finish with its record pending")
        assert body["status"]["phase"] == "Succeeded", body["status"]
        assert RUN_FINALIZER in body["metadata"]["finalizers"]
        assert LABEL_SETTLED not in (body["metadata"].get("labels") or {})
        # The operator keeps trying to deliver the record, which it can only do while it sees the run.
        refused = gate.refused
        wait_until(lambda: gate.refused >= refused + 2, 60, "redelivery attempts")
        body = runs.get("backfill")
        assert body["status"].get("pendingAudit") and not runs.labelled("backfill")

        gate.opened.set()
        wait_until(lambda: runs.labelled("backfill"), 120, "the run to be labelled once its record is delivered")
    body = runs.get("backfill")
    assert not body["status"].get("pendingAudit") and body["status"]["mlflow"]["runId"]
    assert RUN_FINALIZER not in (body["metadata"].get("finalizers") or [])
    assert body["metadata"]["labels"][LABEL_SETTLED] == "true"

    # Out of the operator's watch, with no finalizer: its deletion does not wait for anyone.
    runs.delete_until_gone("backfill")


def test_history_without_the_label_is_labelled_by_a_start_before_the_watch_lists_runs(
    api: client.ApiClient, namespace: str, operator: ChartOperator
) -> None:
    runs = Runs(api, namespace)
    # Finished runs written while no operator ran, as a version before the label left its history,
    # and an unfinished one, which the operator's watch lists and passes.
    with operators_paused(api):
        for index in range(HISTORY):
            runs.create_finished(f"old-{index}", "Succeeded")
        runs.create(range_run_manifest("witness", "gone-project"))
        assert not any(runs.labelled(f"old-{index}") for index in range(HISTORY))
    # The operator started again (leaving the block). Once its watch has listed runs (the unfinished
    # one got its pass), every old run is labelled, and by its start: the listing held none of them
    # (a settled run in it would have been counted as found by the listing).
    wait_until(lambda: (runs.get("witness").get("status") or {}).get("phase") == "Pending", 120, "the listing")
    assert all(runs.labelled(f"old-{index}") for index in range(HISTORY))
    assert settled_count(operator, "start") >= HISTORY
    assert settled_count(operator, "listed") == 0

    # A settled run deleted: nothing holds it.
    runs.delete_until_gone("old-0")


def test_the_settled_label_is_the_operators_and_is_put_back_when_removed(
    api: client.ApiClient, namespace: str, operator: ChartOperator
) -> None:
    runs = Runs(api, namespace)
    labelled = range_run_manifest("hidden", "gone-project")
    labelled["metadata"]["labels"] = {LABEL_SETTLED: "true"}
    with pytest.raises(ApiException) as refused:
        runs.create(labelled)
    assert refused.value.status == 403 and LABEL_SETTLED in str(refused.value.body)

    # An unfinished run (its project does not exist: it waits, held by the operator's finalizer).
    runs.create(range_run_manifest("waiting", "gone-project"))
    wait_until(lambda: (runs.get("waiting").get("status") or {}).get("phase") == "Pending", 60, "the run to wait")
    with pytest.raises(ApiException) as refused:
        runs.patch("waiting", {"metadata": {"labels": {LABEL_SETTLED: "true"}}})
    assert refused.value.status == 403 and "never on a new or unfinished one" in str(refused.value.body)
    runs.delete_until_gone("waiting")

    # A settled run whose label is taken off comes back into the operator's watch, which puts it back.
    with operators_paused(api):
        runs.create_finished("done", "Failed")
    wait_until(lambda: runs.labelled("done"), 120, "the run to be labelled by the start")
    before = settled_count(operator, "event")
    runs.patch("done", {"metadata": {"labels": {LABEL_SETTLED: None}}})
    wait_until(lambda: runs.labelled("done"), 60, "the label to be put back")
    assert settled_count(operator, "event") == before + 1
