"""The cluster tests' polling helper: "not yet" is retried, a broken probe fails at once."""

from __future__ import annotations

import time

import pytest
from kubernetes.client.exceptions import ApiException

from tests.cluster_helpers import wait_until


@pytest.mark.parametrize("status", [404, 429, 500, 503])
def test_not_found_and_a_busy_server_are_retried(status: int) -> None:
    calls = []

    def probe() -> str | None:
        calls.append(1)
        if len(calls) < 3:
            raise ApiException(status=status, reason="not yet")
        return "there"

    assert wait_until(probe, 5, "the object", interval=0.01) == "there"


def test_a_broken_probe_fails_at_once_not_as_a_timeout() -> None:
    started = time.monotonic()
    empty: dict[str, str] = {}
    with pytest.raises(KeyError):
        wait_until(lambda: empty["status"], 30, "a typo", interval=0.01)
    with pytest.raises(ApiException):
        wait_until(lambda: (_ for _ in ()).throw(ApiException(status=403, reason="Forbidden")), 30, "x")
    assert time.monotonic() - started < 5


def test_a_timeout_names_what_it_waited_for_and_the_last_not_yet() -> None:
    def missing() -> None:
        raise ApiException(status=404, reason="Not Found")

    with pytest.raises(AssertionError, match=r"waiting for the project \(last error: \(404\)"):
        wait_until(missing, 0.05, "the project", interval=0.01)
