"""The local node's restart delays, as kubelet's: doubling to a maximum, starting over after a long run."""

from __future__ import annotations

from feast_lineage.devcluster.node import RestartBackoff


def test_delays_double_up_to_the_maximum_while_the_container_keeps_crashing() -> None:
    backoff = RestartBackoff()
    delays = [backoff.after_run(0.5) for _ in range(8)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_a_crash_after_a_long_healthy_run_restarts_after_the_shortest_delay() -> None:
    backoff = RestartBackoff()
    for _ in range(6):
        backoff.after_run(1.0)
    assert backoff.after_run(2 * RestartBackoff.MAXIMUM) == 1.0
    assert backoff.after_run(1.0) == 2.0


def test_a_run_shorter_than_twice_the_maximum_keeps_the_delay_growing() -> None:
    backoff = RestartBackoff()
    for _ in range(5):
        backoff.after_run(1.0)
    assert backoff.after_run(2 * RestartBackoff.MAXIMUM - 1) == 30.0
