"""A thousand records while MLflow is down: the cap holds, then every record kept reaches a real
MLflow exactly once after it comes back; a bad record is set aside and blocks no good one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from feast_lineage.controller.audit_redelivery import delivery_pass
from feast_lineage.controller.kube import Kube
from feast_lineage.controller.settings import OperatorSettings
from feast_lineage.devcluster.mlflow_server import start_mlflow
from feast_lineage.devcluster.processes import free_port
from feast_lineage.domain.audit_backlog import Attempt, add_pending, settle
from feast_lineage.timestamps import utc_now
from tests.integration.mlflow_checks import new_record, runs_with_audit_id

CAP = 100


def project_body(tracking_uri: str) -> dict[str, Any]:
    return {
        "apiVersion": "featurelineage.io/v1alpha1",
        "kind": "FeatureStoreProject",
        "metadata": {"name": "demo", "namespace": "team-a"},
        "spec": {
            "project": "demo",
            "repo": {"configMap": {"name": "repo"}},
            "featureStore": {"registry": {"path": "/data/registry.db"}, "onlineStore": {"type": "sqlite"}},
            "mlflow": {"trackingUri": tracking_uri},
        },
    }


@pytest.mark.heavy
@pytest.mark.timeout(900)
def test_a_thousand_records_against_a_down_mlflow_are_capped_then_delivered_once(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    experiment = "backlog-ops"
    pending: list[dict[str, Any]] = []
    dropped: list[str] = []
    ids = []
    for number in range(1000):
        record = new_record(experiment=experiment, run_name=f"apply_{number}")
        ids.append(record.id)
        capped = add_pending(pending, record.to_compact(), cap=CAP)
        pending, dropped = capped.kept, dropped + capped.dropped
    # Its experiment is deleted in MLflow: it must be set aside, not retried ahead of the others.
    bad = new_record(experiment="deleted-ops")
    pending = [bad.to_compact(), *pending[1:]]
    kept = [item["i"] for item in pending[1:]]
    assert len(pending) == CAP and dropped == ids[:900] and kept == ids[901:]

    # Credentials are not configured: the pass reads nothing from Kubernetes.
    kube = Kube(client.ApiClient())
    settings = OperatorSettings(audit_pass_seconds=60, audit_record_deadline_seconds=10)
    undeliverable: list[dict[str, Any]] = []

    down = delivery_pass(kube, pending, project_body(url), settings)
    assert {attempt.outcome for attempt in down.values()} == {"retry"} and len(down) <= 2
    settled = settle(pending, undeliverable, down, utc_now())
    pending = settled.pending
    assert len(pending) == CAP and not settled.delivered

    server = start_mlflow(tmp_path / "mlflow", port=port, timeout=300)
    try:
        from mlflow import MlflowClient

        mlflow = MlflowClient(tracking_uri=url)
        mlflow.delete_experiment(mlflow.create_experiment("deleted-ops"))
        delivered: dict[str, Any] = {}
        passes = 0
        while pending:
            passes += 1
            assert passes <= 20, f"{len(pending)} records still pending"
            attempts: dict[str, Attempt] = delivery_pass(kube, pending, project_body(url), settings)
            settled = settle(pending, undeliverable, attempts, utc_now())
            pending, undeliverable = settled.pending, settled.undeliverable
            delivered.update(settled.delivered)
        print(f"delivered {len(delivered)} records in {passes} pass(es)")
        assert sorted(delivered) == sorted(kept)
        [aside] = undeliverable
        assert aside["record"]["i"] == bad.id and "is deleted" in aside["reason"]
        # Exactly once: each kept record is one run; a dropped one none; delivering again adds nothing.
        for audit_id in [*kept[:5], *kept[-5:]]:
            assert len(runs_with_audit_id(url, experiment, audit_id)) == 1
        assert runs_with_audit_id(url, experiment, ids[0]) == []
        found = mlflow.get_experiment_by_name(experiment)
        assert found is not None
        experiment_id = found.experiment_id
        all_runs = mlflow.search_runs([experiment_id], max_results=1000)
        assert len(all_runs) == len(kept)
        assert len({run.data.tags["featurelineage.audit_id"] for run in all_runs}) == len(kept)
    finally:
        server.stop()
