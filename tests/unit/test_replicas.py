"""Replicas, without a cluster: leader election settings, the webhook's project map after a relist, and
the ``/healthz`` every replica serves. The election itself runs against the real API server in
tests/cluster/test_replicas.py."""

from __future__ import annotations

import asyncio
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from feast_lineage.cli import _leader_election, build_parser
from feast_lineage.controller.health import Health
from feast_lineage.controller.leadership import Leadership
from feast_lineage.controller.settings import LeaderElectionSettings
from feast_lineage.devcluster.processes import free_port


def election(**overrides: Any) -> LeaderElectionSettings:
    fields: dict[str, Any] = {"namespace": "ops", "name": "lease", "identity": "pod-a", **overrides}
    return LeaderElectionSettings(**fields)


def test_default_timing_is_kubernetes_controllers() -> None:
    settings = election()
    assert (settings.lease_seconds, settings.renew_deadline_seconds, settings.retry_seconds) == (15, 10, 2)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"renew_deadline_seconds": 15}, "lease duration must exceed its renew deadline"),
        ({"retry_seconds": 0}, "retry period must be at least 1 second"),
        ({"retry_seconds": 9}, "renew deadline must exceed 1.2 retry periods"),
        ({"name": ""}, "needs the Lease's namespace and name"),
    ],
)
def test_timing_that_could_let_two_replicas_lead_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        election(**overrides)


def leader_election_of(*argv: str) -> LeaderElectionSettings | None:
    return _leader_election(build_parser().parse_args(["run", *argv]))


def test_the_lease_comes_from_the_command_line_and_the_identity_from_the_pod(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert leader_election_of() is None
    monkeypatch.setenv("POD_NAME", "operator-7d9f-abcde")
    settings = leader_election_of(
        "--leader-election-lease=feast-lineage-system/feast-lineage",
        "--leader-election-lease-seconds=8",
        "--leader-election-renew-seconds=6",
        "--leader-election-retry-seconds=1",
    )
    assert settings is not None
    pod, _, suffix = settings.identity.partition("_")
    assert pod == "operator-7d9f-abcde" and suffix
    expected = LeaderElectionSettings("feast-lineage-system", "feast-lineage", settings.identity, 8, 6, 1)
    assert settings == expected
    monkeypatch.delenv("POD_NAME")
    outside = leader_election_of("--leader-election-lease=ns/name")
    assert outside is not None and outside.identity.partition("_")[0].endswith(f"-{os.getpid()}")
    named = leader_election_of("--leader-election-lease=ns/name", "--leader-election-identity=replica-a")
    assert named is not None and named.identity == "replica-a"


def test_a_container_restarted_in_its_pod_is_a_new_candidate_on_the_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes of one pod (a container and its restart) never share an identity: the restarted
    one must not find its own name on the Lease and resume leading."""
    monkeypatch.setenv("POD_NAME", "operator-7d9f-abcde")
    first, restarted = (leader_election_of("--leader-election-lease=ns/name") for _ in range(2))
    assert first is not None and restarted is not None
    assert first.identity != restarted.identity
    assert first.identity.startswith("operator-7d9f-abcde_") and restarted.identity.startswith("operator-7d9f-abcde_")
    with pytest.raises(ValueError, match="namespace and name"):
        leader_election_of("--leader-election-lease=name-only")


@pytest.fixture
def health() -> Iterator[tuple[Health, int]]:
    checks = Health()
    port = free_port()
    checks.serve(port, host="127.0.0.1")
    yield checks, port
    checks.stop()


def get(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_healthz_names_the_failing_check(health: tuple[Health, int]) -> None:
    checks, port = health
    assert get(port) == (200, "ok")
    election_runs = threading.Event()
    checks.add("the leader election runs", election_runs.is_set)
    assert get(port) == (500, "failing: the leader election runs")
    election_runs.set()
    assert get(port) == (200, "ok")


def test_healthz_fails_once_the_leaders_event_loop_stops_answering(health: tuple[Health, int]) -> None:
    checks, port = health
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    checks.watch_loop(loop)
    assert get(port) == (200, "ok")
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()
    assert get(port) == (500, "failing: Kopf's event loop answers")


def test_a_leader_that_cannot_reach_the_api_server_still_stops(caplog: pytest.LogCaptureFixture) -> None:
    """Releasing the Lease fails with a connection error, not an API error: the stop goes on (the
    webhook's drain comes after it), and the others take the Lease once it expires."""
    configuration = client.Configuration(host=f"https://127.0.0.1:{free_port()}")  # nothing listens
    configuration.retries = 0
    leadership = Leadership(client.ApiClient(configuration), election(), on_lost=lambda why: None)
    leadership.leading.set()  # as if it led
    leadership.release()
    assert not leadership.leading.is_set()
    assert "could not release it (it expires instead)" in caplog.text
