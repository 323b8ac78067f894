"""MLflow calls end by their deadline and read no more than their cap, whatever the server does;
a create whose answer is lost is not repeated blindly; a Job's retries are one run."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from feast_lineage.audit import DeliveryError, MlflowRestClient, deliver
from feast_lineage.audit.errors import PermanentDeliveryError
from feast_lineage.certificates import issue, make_ca
from feast_lineage.devcluster.mlflow_server import MlflowServer
from tests.hostile_servers import GIB, DropFirstAnswer, serving, stream_gibibyte, trickle_body, trickle_headers
from tests.integration.mlflow_checks import new_record, runs_with_audit_id

MIB = 1024 * 1024


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.parametrize("behaviour", [trickle_headers, trickle_body], ids=["headers", "body"])
def test_a_trickling_server_is_given_up_by_the_deadline(behaviour: object) -> None:
    # Each byte arrives well within the read timeout: only an overall deadline ends the call.
    with serving(behaviour) as served:  # type: ignore[arg-type]
        began = time.monotonic()
        with pytest.raises(DeliveryError, match="ExchangeTimeout"):
            deliver(new_record(), served.url, timeout=5, max_retries=3, deadline=3)
        elapsed = time.monotonic() - began
    print(f"trickling {behaviour.__name__}: gave up after {elapsed:.2f}s (deadline 3s)")  # type: ignore[attr-defined]
    assert 3 <= elapsed < 4.5


def test_a_gibibyte_answer_is_cut_at_the_cap_with_bounded_memory() -> None:
    before = resident_bytes()
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, resident_bytes())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with serving(stream_gibibyte) as served:
        began = time.monotonic()
        with pytest.raises(PermanentDeliveryError, match="byte cap"):
            deliver(new_record(), served.url, timeout=5, max_retries=3, deadline=30)
        elapsed = time.monotonic() - began
    done.set()
    sampler.join()
    growth = (peak - before) / MIB
    print(f"1 GiB answer: refused after {elapsed:.2f}s; memory grew by {growth:.1f} MiB at most")
    assert elapsed < 10
    assert growth < 64
    # Permanent: one attempt, not max_retries + 1 of them.
    assert len(served.sent_bytes) <= 1 and all(sent < GIB for sent in served.sent_bytes)


def test_a_lost_create_answer_leaves_exactly_one_run(mlflow_server: MlflowServer) -> None:
    proxy = DropFirstAnswer(mlflow_server.port, b"/runs/create")
    record = new_record()
    with serving(proxy) as served:
        delivered = deliver(record, served.url, timeout=5, max_retries=2)
    assert proxy.dropped == 1
    creates = [line for line in proxy.forwarded if b"/runs/create" in line]
    assert len(creates) == 1, f"the create was repeated: {proxy.forwarded}"
    [run] = runs_with_audit_id(mlflow_server.url, record.experiment, record.id)
    assert run.info.run_id == delivered.run_id
    assert run.info.status == "FINISHED"


def test_a_retried_job_is_one_run_whose_outcome_is_the_last_attempts(mlflow_server: MlflowServer) -> None:
    failed = new_record(status="FAILED", tags={"featurelineage.outcome": "failed", "featurelineage.error": "boom"})
    first = deliver(failed, mlflow_server.url)
    # The Job's second pod: the same audit id, a later end, a success.
    retry = failed.model_copy(
        update={
            "status": "FINISHED",
            "end_time_ms": failed.end_time_ms + 5000,
            "tags": {**failed.tags, "featurelineage.outcome": "succeeded"},
            "metrics": {**failed.metrics, "featurelineage.duration_sec": 8.0},
        }
    )
    retry = type(failed).model_validate(
        {**retry.model_dump(), "tags": {k: v for k, v in retry.tags.items() if k != "featurelineage.error"}}
    )
    second = deliver(retry, mlflow_server.url)
    again = deliver(retry, mlflow_server.url)  # redelivered: nothing changes
    assert first.run_id == second.run_id == again.run_id
    [run] = runs_with_audit_id(mlflow_server.url, failed.experiment, failed.id)
    assert run.info.status == "FINISHED"
    assert run.info.end_time == retry.end_time_ms
    assert run.data.tags["featurelineage.outcome"] == "succeeded"
    assert run.data.tags["featurelineage.attempts"] == "2"
    assert "featurelineage.error" not in run.data.tags
    assert run.data.metrics["featurelineage.duration_sec"] == 8.0
    # An older attempt delivered late never overrides the newer outcome.
    deliver(failed, mlflow_server.url)
    [run] = runs_with_audit_id(mlflow_server.url, failed.experiment, failed.id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["featurelineage.attempts"] == "2"


def test_an_unsupported_tracking_uri_is_permanent() -> None:
    with pytest.raises(PermanentDeliveryError, match="not supported"):
        deliver(new_record(), "databricks")


def test_the_environments_proxy_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bytes] = []

    def proxy(conn: socket.socket, request: bytes) -> int:
        seen.append(request.split(b"\r\n", 1)[0])
        answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        conn.sendall(answer)
        return len(answer)

    with serving(proxy) as served:
        monkeypatch.setenv("HTTP_PROXY", served.url)
        monkeypatch.setenv("NO_PROXY", "")
        monkeypatch.setenv("no_proxy", "")
        reply = MlflowRestClient("http://mlflow.example:5000", timeout=5).get("experiments/list", {"a": "b"})
    assert reply == {}
    assert seen == [b"GET http://mlflow.example:5000/api/2.0/mlflow/experiments/list?a=b HTTP/1.1"]


def test_a_server_certificate_from_an_unknown_ca_is_permanent(tmp_path: Path) -> None:
    ca = make_ca("private-ca")
    issue(ca, "mlflow", ip_addresses=("127.0.0.1",), server=True).write(tmp_path / "tls.crt", tmp_path / "tls.key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]

        def accept() -> None:
            with contextlib.suppress(OSError):
                conn, _ = listener.accept()
                with contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True) as secure:
                    secure.recv(1024)

        threading.Thread(target=accept, daemon=True).start()
        began = time.monotonic()
        with pytest.raises(PermanentDeliveryError, match="not trusted"):
            deliver(new_record(), f"https://127.0.0.1:{port}", timeout=5, max_retries=3)
    # Not retried: one handshake, refused at once.
    assert time.monotonic() - began < 5
