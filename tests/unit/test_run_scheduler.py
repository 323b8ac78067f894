"""The bookkeeping of the one scheduler that replaces per-run timers."""

from __future__ import annotations

import threading

from feast_lineage.controller.run_scheduler import (
    ACTIVE,
    AUDIT,
    WAITING,
    DueTimes,
    Intervals,
    RunScheduler,
    purposes,
)
from tests.cluster_helpers import wait_until

INTERVALS = Intervals(waiting=2, active=60, audit=30, deleting=5)


def test_a_run_needs_passes_by_phase_and_finished_history_needs_none() -> None:
    # A new run's first pass comes from its watch event; only the resync backs it up.
    assert purposes(None, False) == {ACTIVE}
    assert purposes("Pending", False) == {WAITING, ACTIVE}
    assert purposes("Running", False) == {ACTIVE}
    assert purposes("Succeeded", False) == set()
    assert purposes("Failed", True) == {AUDIT}


def test_passes_are_due_one_interval_after_they_are_first_seen_then_every_interval() -> None:
    times = DueTimes(INTERVALS)
    assert not times.observe(("ns", "run"), {WAITING, ACTIVE}, now=100)
    assert times.pop_due(101) == []
    assert times.pop_due(102) == [("ns", "run", WAITING)]
    # Seen again (any event): what is scheduled keeps its time, and the run is known.
    assert times.observe(("ns", "run"), {WAITING, ACTIVE}, now=103)
    assert times.pop_due(103) == []
    assert sorted(times.pop_due(160)) == [("ns", "run", ACTIVE), ("ns", "run", WAITING)]
    assert times.pop_due(161) == []


def test_a_finished_or_deleted_run_is_dropped() -> None:
    times = DueTimes(INTERVALS)
    times.observe(("ns", "a"), {ACTIVE}, now=0)
    times.observe(("ns", "b"), {ACTIVE}, now=0)
    times.observe(("ns", "a"), set(), now=1)
    times.forget(("ns", "b"))
    assert len(times) == 0 and times.pop_due(1000) == []


def test_the_scheduler_runs_due_passes_on_its_threads_and_survives_a_failing_one() -> None:
    seen: list[tuple[str, str, str]] = []
    done = threading.Event()

    def act(namespace: str, name: str, purpose: str) -> None:
        seen.append((namespace, name, purpose))
        if name == "bad":
            raise RuntimeError("a bug")
        done.set()

    scheduler = RunScheduler(Intervals(waiting=0.05, active=60, audit=60, deleting=5), act, tick=0.01)
    scheduler.observe("ns", "bad", "Pending", pending_audit=False, deleted=False)
    scheduler.observe("ns", "good", "Pending", pending_audit=False, deleted=False)
    scheduler.start()
    try:
        wait_until(lambda: done.is_set() and ("ns", "bad", WAITING) in seen, 10, "both passes")
    finally:
        scheduler.stop()
    assert len(scheduler) == 2
