"""Per-object backoff: doubling delays up to a cap, forgotten on success."""

from feast_lineage.controller.backoff import Backoff


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_delays_double_up_to_the_cap_and_success_forgets() -> None:
    clock = Clock()
    backoff = Backoff(2, 30, clock)
    assert backoff.due("p") and len(backoff) == 0
    delays = []
    for _ in range(6):
        delays.append(backoff.failed("p"))
        clock.now += delays[-1]
    assert delays == [2, 4, 8, 16, 30, 30]
    backoff.failed("p")
    assert not backoff.due("p")
    clock.now += 29.9
    assert not backoff.due("p")
    clock.now += 0.1
    assert backoff.due("p") and backoff.due("other")
    backoff.forget("p")
    assert len(backoff) == 0 and backoff.failed("p") == 2


def test_failures_reported_early_do_not_grow_the_delay() -> None:
    clock = Clock()
    backoff = Backoff(2, 30, clock)
    assert backoff.failed("p") == 2
    clock.now = 1.5
    assert backoff.failed("p") == 0.5  # a second trigger before the attempt was due
    clock.now = 2
    assert backoff.failed("p") == 4


def test_the_first_delay_never_exceeds_the_cap() -> None:
    assert Backoff(2, 1.5).failed("p") == 1.5


def test_a_deferred_attempt_and_entries_of_forgotten_objects_go() -> None:
    clock = Clock()
    backoff = Backoff(2, 10, clock)
    backoff.defer("queued", 60)
    assert not backoff.due("queued")
    clock.now = 60
    assert backoff.due("queued")
    backoff.failed("deleted-while-waiting")
    clock.now = 1000  # nobody asked about either for long: the next write sweeps them
    backoff.failed("active")
    assert len(backoff) == 1
