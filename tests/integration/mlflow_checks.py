"""Reading back what reached MLflow, with MLflow's own client (the code under test never imports it)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from feast_lineage.audit.record import AuditRecord


def runs_with_audit_id(tracking_uri: str, experiment: str, audit_id: str) -> list[Any]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    return list(
        client.search_runs([found.experiment_id], filter_string=f"tags.`featurelineage.audit_id` = '{audit_id}'")
    )


def new_record(**changes: Any) -> AuditRecord:
    now = int(time.time() * 1000)
    fields: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "experiment": f"exp-{uuid.uuid4().hex[:8]}",
        "run_name": "apply_demo",
        "status": "FINISHED",
        "start_time_ms": now - 3000,
        "end_time_ms": now,
        "tags": {"feast.operation": "apply", "feast.project": "demo", "k8s.namespace": "team-a"},
        "params": {"feast.materialize.end_date": "2026-11-09T00:00:00Z"},
        "metrics": {"featurelineage.duration_sec": 3.0, "feast.apply.feature_views_count": 2.0},
    }
    fields.update(changes)
    return AuditRecord.model_validate(fields)


def register_trained_model(tracking_uri: str, namespace: str, feature_service: str, feast_project: str) -> str:
    """A registered model version as an injected training pod leaves it: a run tagged with the pod's
    namespace and Feast project (MLFLOW_RUN_CONTEXT) and the feature service it read, registered
    with ``feast.feature_service`` on the version (Feast's ``register_model``). Returns the model name."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = f"training-{uuid.uuid4().hex[:8]}"
    run = client.create_run(
        client.create_experiment(experiment),
        tags={
            "k8s.namespace": namespace,
            "featurelineage.feast_project": feast_project,
            "feast.feature_service": feature_service,
        },
    )
    client.set_terminated(run.info.run_id)
    model = f"model-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(model)
    client.create_model_version(
        model,
        f"{run.info.artifact_uri}/model",
        run_id=run.info.run_id,
        tags={"feast.feature_service": feature_service},
    )
    return model
