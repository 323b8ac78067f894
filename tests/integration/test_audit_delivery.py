"""Exactly-once delivery of audit records to a real MLflow server, and its time bound."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from feast_lineage.audit import DeliveryError, deliver
from feast_lineage.devcluster.mlflow_server import MlflowServer
from feast_lineage.devcluster.processes import free_port
from tests.integration.mlflow_checks import new_record, runs_with_audit_id


def test_delivery_creates_one_finished_run_with_everything(mlflow_server: MlflowServer) -> None:
    record = new_record()
    delivered = deliver(record, mlflow_server.url)
    assert delivered.run_url == f"{mlflow_server.url}/#/experiments/{delivered.experiment_id}/runs/{delivered.run_id}"
    [run] = runs_with_audit_id(mlflow_server.url, record.experiment, record.id)
    assert run.info.run_id == delivered.run_id
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "apply_demo"
    assert (run.info.start_time, run.info.end_time) == (record.start_time_ms, record.end_time_ms)
    assert run.data.tags["k8s.namespace"] == "team-a"
    assert run.data.tags["featurelineage.audit_id"] == record.id
    assert run.data.metrics == record.metrics
    assert run.data.params == record.params


def test_delivering_twice_yields_one_run(mlflow_server: MlflowServer) -> None:
    record = new_record(status="FAILED", tags={"featurelineage.error": "boom"})
    first = deliver(record, mlflow_server.url)
    second = deliver(record, mlflow_server.url)
    assert first == second
    [run] = runs_with_audit_id(mlflow_server.url, record.experiment, record.id)
    assert run.info.status == "FAILED"


def test_a_half_delivered_run_is_completed(mlflow_server: MlflowServer) -> None:
    from mlflow import MlflowClient

    record = new_record()
    client = MlflowClient(tracking_uri=mlflow_server.url)
    experiment_id = client.create_experiment(record.experiment)
    # What a delivery that died after runs/create and one param leaves behind.
    half = client.create_run(experiment_id, run_name=record.run_name, tags={"featurelineage.audit_id": record.id})
    client.log_param(half.info.run_id, "feast.materialize.end_date", record.params["feast.materialize.end_date"])
    delivered = deliver(record, mlflow_server.url)
    assert delivered.run_id == half.info.run_id
    [run] = runs_with_audit_id(mlflow_server.url, record.experiment, record.id)
    assert run.info.status == "FINISHED"
    assert run.info.end_time == record.end_time_ms
    assert run.data.metrics == record.metrics


def test_a_closed_port_fails_fast_with_one_line(mlflow_server: MlflowServer) -> None:
    began = time.monotonic()
    with pytest.raises(DeliveryError) as raised:
        deliver(new_record(), f"http://127.0.0.1:{free_port()}", timeout=2, max_retries=1)
    elapsed = time.monotonic() - began
    assert elapsed < 3 * 2 * 2
    assert "unreachable" in str(raised.value) and "\n" not in str(raised.value)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers: the worst case for a client without bounds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_silent_server_is_given_up_within_the_bound(silent_server: str) -> None:
    timeout, retries = 1.0, 1
    began = time.monotonic()
    with pytest.raises(DeliveryError, match=r"timed out|TimeoutError"):
        deliver(new_record(), silent_server, timeout=timeout, max_retries=retries)
    elapsed = time.monotonic() - began
    assert timeout * (retries + 1) <= elapsed < 3 * timeout * (retries + 1)


def test_only_http_tracking_uris_are_delivered_to() -> None:
    with pytest.raises(DeliveryError, match="not supported for audit delivery"):
        deliver(new_record(), "sqlite:///mlflow.db")
