"""The schedule's decision at one instant: names, time zones, missed ticks, deadlines, concurrency, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from feast_lineage.api import MaterializationSchedule
from feast_lineage.domain.schedule_plan import (
    ScheduleDecision,
    ScheduledRun,
    next_schedule_time,
    plan_schedule,
    scheduled_run_name,
)

PROJECT = "driver-stats"
CREATED = datetime(2026, 11, 1, 8, 17, tzinfo=UTC)


def _at(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


def _schedule(schedule: str = "@hourly", **spec: Any) -> MaterializationSchedule:
    return MaterializationSchedule.model_validate({"schedule": schedule, **spec})


def _run(name: str, phase: str, scheduled: datetime | None, created: datetime | None = None) -> ScheduledRun:
    created = created or scheduled or CREATED
    return ScheduledRun(name=name, scheduled_time=scheduled, phase=phase, creation_time=created)


def _scheduled(hour: int, phase: str, day: int = 26) -> ScheduledRun:
    """A run the schedule created for the tick at ``hour``:00 UTC."""
    tick = _at(day, hour)
    return _run(scheduled_run_name(PROJECT, tick), phase, tick)


def _plan(
    schedule: MaterializationSchedule,
    now: datetime,
    last: datetime | None = None,
    runs: list[ScheduledRun] | None = None,
    created: datetime = CREATED,
) -> ScheduleDecision:
    return plan_schedule(
        schedule,
        project_resource=PROJECT,
        now=now,
        last_schedule_time=last,
        project_created=created,
        runs=runs or [],
    )


def _ticks(schedule: MaterializationSchedule, start: datetime, count: int) -> list[datetime]:
    ticks = []
    for _ in range(count):
        start = next_schedule_time(schedule, start)
        ticks.append(start)
    return ticks


# Names and next times


def test_name_is_project_and_utc_minute() -> None:
    assert scheduled_run_name(PROJECT, _at(26, 13)) == "driver-stats-20261126-1300"
    # The same instant written in another zone names the same run.
    berlin = datetime(2026, 11, 26, 14, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert scheduled_run_name(PROJECT, berlin) == "driver-stats-20261126-1300"


def test_long_project_names_stay_dns_labels_and_distinct() -> None:
    first = scheduled_run_name("a" * 60 + "-one", _at(26, 13, 7))
    second = scheduled_run_name("a" * 60 + "-two", _at(26, 13, 7))
    assert len(first) == 63
    assert len(second) == 63
    assert first.endswith("-20261126-1307")
    assert first != second


def test_every_minute() -> None:
    schedule = _schedule("* * * * *")
    assert next_schedule_time(schedule, _at(26, 13, 0, 30)) == _at(26, 13, 1)
    # Strictly after: an instant on a tick gives the following one.
    assert next_schedule_time(schedule, _at(26, 13, 1)) == _at(26, 13, 2)

    decision = _plan(schedule, now=_at(26, 13, 5, 10), last=_at(26, 13, 4))
    assert decision == ScheduleDecision(
        create=_at(26, 13, 5),
        create_name="driver-stats-20261126-1305",
        delete_active=[],
        prune=[],
        waiting_reason=None,
        next_time=_at(26, 13, 6),
        last_schedule_time=_at(26, 13, 5),
    )


def test_hourly() -> None:
    schedule = _schedule("@hourly")
    assert next_schedule_time(schedule, _at(26, 13)) == _at(26, 14)
    assert next_schedule_time(schedule, _at(26, 13, 59, 59)) == _at(26, 14)
    assert _ticks(schedule, _at(26, 22, 30), 3) == [_at(26, 23), _at(27, 0), _at(27, 1)]


def test_outputs_are_utc_whatever_the_input_zone() -> None:
    plus_two = timezone(timedelta(hours=2))
    decision = _plan(
        _schedule("@hourly"),
        now=datetime(2026, 11, 26, 15, 0, 5, tzinfo=plus_two),
        last=datetime(2026, 11, 26, 14, 0, tzinfo=plus_two),
    )
    assert decision.create == _at(26, 13)
    assert decision.create_name == "driver-stats-20261126-1300"
    for value in (decision.create, decision.next_time, decision.last_schedule_time):
        assert value is not None
        assert value.tzinfo is UTC
    next_time = next_schedule_time(_schedule("@hourly"), datetime(2026, 11, 26, 15, 30, tzinfo=plus_two))
    assert next_time.tzinfo is UTC
    assert next_time == _at(26, 14)


# Time zones and DST


def test_schedule_is_read_in_its_time_zone() -> None:
    new_york = _schedule("0 9 * * *", timeZone="America/New_York")
    assert next_schedule_time(new_york, _at(1, 0, month=7)) == _at(1, 13, month=7)  # EDT, UTC-4
    assert next_schedule_time(new_york, _at(1, 0, month=12)) == _at(1, 14, month=12)  # EST, UTC-5


def test_berlin_spring_forward_runs_the_missing_time_at_the_transition() -> None:
    # 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC); 02:30 does not exist that day.
    schedule = _schedule("30 2 * * *", timeZone="Europe/Berlin")
    ticks = _ticks(schedule, _at(27, 12, month=3), 3)
    assert ticks == [_at(28, 1, 30, month=3), _at(29, 1, 0, month=3), _at(30, 0, 30, month=3)]
    assert [scheduled_run_name(PROJECT, tick) for tick in ticks] == [
        "driver-stats-20260328-0130",
        "driver-stats-20260329-0100",
        "driver-stats-20260330-0030",
    ]

    decision = _plan(schedule, now=_at(29, 1, 0, 30, month=3), last=_at(28, 1, 30, month=3))
    assert decision.create == _at(29, 1, month=3)
    assert decision.create_name == "driver-stats-20260329-0100"
    assert decision.next_time == _at(30, 0, 30, month=3)


def test_berlin_fall_back_runs_a_repeated_time_once() -> None:
    # 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:30 happens at 00:30 and 01:30 UTC.
    schedule = _schedule("30 2 * * *", timeZone="Europe/Berlin")
    ticks = _ticks(schedule, _at(23, 12, month=10), 3)
    assert ticks == [_at(24, 0, 30, month=10), _at(25, 0, 30, month=10), _at(26, 1, 30, month=10)]
    names = [scheduled_run_name(PROJECT, tick) for tick in ticks]
    assert names == ["driver-stats-20261024-0030", "driver-stats-20261025-0030", "driver-stats-20261026-0130"]

    # During the second 02:30 (01:30 UTC), after the first one ran, nothing new is due.
    second_pass = _plan(schedule, now=_at(25, 1, 45, month=10), last=_at(25, 0, 30, month=10))
    assert second_pass.create is None
    assert second_pass.last_schedule_time == _at(25, 0, 30, month=10)
    assert second_pass.next_time == _at(26, 1, 30, month=10)


def test_berlin_fall_back_tick_missed_in_the_first_pass_is_found_in_the_second() -> None:
    # The operator was down at 02:45 CEST (00:45 UTC) and looks again at 02:30 CET (01:30 UTC):
    # the wall clock reads before 02:45, but the 02:45 tick has passed and is due.
    schedule = _schedule("45 2 * * *", timeZone="Europe/Berlin")
    decision = _plan(schedule, now=_at(25, 1, 30, month=10), last=_at(24, 0, 45, month=10))
    assert decision.create == _at(25, 0, 45, month=10)
    assert decision.create_name == "driver-stats-20261025-0045"
    assert decision.next_time == _at(26, 1, 45, month=10)


def test_berlin_a_whole_year_has_one_unique_name_per_day() -> None:
    schedule = _schedule("30 2 * * *", timeZone="Europe/Berlin")
    ticks = _ticks(schedule, datetime(2025, 12, 31, 12, tzinfo=UTC), 365)
    names = [scheduled_run_name(PROJECT, tick) for tick in ticks]
    assert len(set(names)) == 365
    local_days = [tick.astimezone(ZoneInfo("Europe/Berlin")).date() for tick in ticks]
    assert local_days == [local_days[0] + timedelta(days=day) for day in range(365)]
    assert local_days[0].isoformat() == "2026-01-01"


def test_berlin_hourly_and_quarter_hourly_across_dst() -> None:
    hourly = _schedule("0 * * * *", timeZone="Europe/Berlin")
    # Each wall-clock hour fires once: 02:00 CEST (00:00 UTC), then 03:00 CET (02:00 UTC).
    assert _ticks(hourly, _at(24, 23, 30, month=10), 2) == [_at(25, 0, month=10), _at(25, 2, month=10)]
    quarter = _schedule("*/15 * * * *", timeZone="Europe/Berlin")
    # 02:00-02:45 do not exist: they fire once at the transition (01:00 UTC), which is 03:00 CEST.
    assert _ticks(quarter, _at(29, 0, 40, month=3), 3) == [
        _at(29, 0, 45, month=3),
        _at(29, 1, 0, month=3),
        _at(29, 1, 15, month=3),
    ]


# Missed ticks


def test_first_tick_after_project_creation_runs() -> None:
    decision = _plan(_schedule("@hourly"), now=_at(1, 9, 0, 5), created=_at(1, 8, 17))
    assert decision.create == _at(1, 9)
    assert decision.create_name == "driver-stats-20261101-0900"
    assert decision.last_schedule_time == _at(1, 9)
    assert decision.next_time == _at(1, 10)


def test_tick_exactly_now_is_due() -> None:
    decision = _plan(_schedule("@hourly"), now=_at(26, 13), last=_at(26, 12))
    assert decision.create == _at(26, 13)


def test_no_tick_since_creation_creates_nothing() -> None:
    decision = _plan(_schedule("@hourly"), now=_at(1, 8, 59, 59), created=_at(1, 8, 17))
    assert decision == ScheduleDecision(
        create=None,
        create_name=None,
        delete_active=[],
        prune=[],
        waiting_reason=None,
        next_time=_at(1, 9),
        last_schedule_time=None,
    )


def test_tick_already_handled_creates_nothing() -> None:
    decision = _plan(_schedule("@hourly"), now=_at(26, 13, 40), last=_at(26, 13))
    assert decision.create is None
    assert decision.waiting_reason is None
    assert decision.last_schedule_time == _at(26, 13)
    assert decision.next_time == _at(26, 14)


def test_missed_ticks_only_the_latest_runs() -> None:
    decision = _plan(_schedule("@hourly"), now=_at(26, 13, 20), last=_at(26, 9))
    assert decision.create == _at(26, 13)
    assert decision.create_name == "driver-stats-20261126-1300"
    assert decision.last_schedule_time == _at(26, 13)
    assert decision.next_time == _at(26, 14)


def test_a_year_of_missed_minutes_is_not_iterated() -> None:
    decision = _plan(
        _schedule("* * * * *"),
        now=_at(26, 13, 20, 30),
        last=datetime(2025, 11, 26, 13, tzinfo=UTC),
    )
    assert decision.create == _at(26, 13, 20)
    assert decision.last_schedule_time == _at(26, 13, 20)


def test_starting_deadline_exceeded_skips_and_advances() -> None:
    schedule = _schedule("@hourly", startingDeadlineSeconds=60)
    decision = _plan(schedule, now=_at(26, 13, 2, 10), last=_at(26, 12))
    assert decision == ScheduleDecision(
        create=None,
        create_name=None,
        delete_active=[],
        prune=[],
        waiting_reason="missed 2026-11-26T13:00:00Z by 130s (startingDeadlineSeconds 60)",
        next_time=_at(26, 14),
        last_schedule_time=_at(26, 13),
    )
    # Once recorded, the skipped tick is not reported again.
    after = _plan(schedule, now=_at(26, 13, 3), last=decision.last_schedule_time)
    assert after.waiting_reason is None
    assert after.create is None


def test_within_starting_deadline_runs() -> None:
    schedule = _schedule("@hourly", startingDeadlineSeconds=60)
    assert _plan(schedule, now=_at(26, 13, 1), last=_at(26, 12)).create == _at(26, 13)


def test_existing_run_with_the_name_is_not_created_again() -> None:
    # E.g. the operator created it, then restarted before storing lastScheduleTime.
    schedule = _schedule("@hourly", concurrencyPolicy="Replace", startingDeadlineSeconds=60)
    decision = _plan(schedule, now=_at(26, 13, 30), last=_at(26, 12), runs=[_scheduled(13, "Running")])
    assert decision.create is None
    assert decision.create_name is None
    assert decision.delete_active == []
    assert decision.waiting_reason is None
    assert decision.last_schedule_time == _at(26, 13)


def test_never_matching_schedule() -> None:
    schedule = _schedule("0 0 30 2 *")
    decision = _plan(schedule, now=_at(26, 13), last=_at(26, 12))
    assert decision.create is None
    assert decision.next_time is None
    assert decision.last_schedule_time == _at(26, 12)
    with pytest.raises(ValueError, match="never matches"):
        next_schedule_time(schedule, _at(26, 13))


# Suspend


def test_suspend_creates_nothing_but_prunes_and_keeps_the_last_tick() -> None:
    schedule = _schedule("@hourly", suspend=True, successfulRunsHistoryLimit=1)
    runs = [_scheduled(11, "Succeeded"), _scheduled(12, "Succeeded")]
    decision = _plan(schedule, now=_at(26, 13, 0, 30), last=_at(26, 12), runs=runs)
    assert decision == ScheduleDecision(
        create=None,
        create_name=None,
        delete_active=[],
        prune=["driver-stats-20261126-1100"],
        waiting_reason="suspended",
        next_time=_at(26, 14),
        last_schedule_time=_at(26, 12),
    )
    # Resumed within the tick: the tick missed while suspended runs.
    resumed = _plan(_schedule("@hourly"), now=_at(26, 13, 0, 40), last=decision.last_schedule_time, runs=runs)
    assert resumed.create == _at(26, 13)


# Concurrency


@pytest.mark.parametrize("phase", ["", "Pending", "Running"])
def test_forbid_waits_for_an_active_run_without_advancing(phase: str) -> None:
    schedule = _schedule("@hourly", concurrencyPolicy="Forbid")
    decision = _plan(schedule, now=_at(26, 13, 0, 5), last=_at(26, 12), runs=[_scheduled(12, phase)])
    assert decision == ScheduleDecision(
        create=None,
        create_name=None,
        delete_active=[],
        prune=[],
        waiting_reason="Forbid: driver-stats-20261126-1200 is still running",
        next_time=_at(26, 14),
        last_schedule_time=_at(26, 12),
    )


def test_forbid_runs_the_delayed_tick_when_the_active_run_finishes() -> None:
    schedule = _schedule("@hourly", concurrencyPolicy="Forbid")
    decision = _plan(schedule, now=_at(26, 13, 20), last=_at(26, 12), runs=[_scheduled(12, "Succeeded")])
    assert decision.create == _at(26, 13)
    assert decision.last_schedule_time == _at(26, 13)


def test_forbid_delayed_tick_still_obeys_the_starting_deadline() -> None:
    schedule = _schedule("@hourly", concurrencyPolicy="Forbid", startingDeadlineSeconds=600)
    decision = _plan(schedule, now=_at(26, 13, 20), last=_at(26, 12), runs=[_scheduled(12, "Succeeded")])
    assert decision.create is None
    assert decision.waiting_reason == "missed 2026-11-26T13:00:00Z by 1200s (startingDeadlineSeconds 600)"
    assert decision.last_schedule_time == _at(26, 13)


def test_forbid_ignores_manual_runs_and_names_every_active_run() -> None:
    schedule = _schedule("@hourly", concurrencyPolicy="Forbid")
    manual = _run("driver-stats-backfill", "Running", None)
    assert _plan(schedule, now=_at(26, 13, 1), last=_at(26, 12), runs=[manual]).create == _at(26, 13)

    runs = [manual, _scheduled(12, "Running"), _scheduled(11, "Pending")]
    decision = _plan(schedule, now=_at(26, 13, 1), last=_at(26, 12), runs=runs)
    assert decision.waiting_reason == (
        "Forbid: driver-stats-20261126-1100, driver-stats-20261126-1200 are still running"
    )


def test_replace_deletes_active_schedule_runs_and_creates() -> None:
    schedule = _schedule("@hourly", concurrencyPolicy="Replace")
    runs = [
        _scheduled(12, "Running"),
        _scheduled(11, ""),
        _scheduled(10, "Succeeded"),
        _run("driver-stats-backfill", "Running", None),
    ]
    decision = _plan(schedule, now=_at(26, 13, 1), last=_at(26, 12), runs=runs)
    assert decision.create == _at(26, 13)
    assert decision.create_name == "driver-stats-20261126-1300"
    assert decision.delete_active == ["driver-stats-20261126-1100", "driver-stats-20261126-1200"]
    assert decision.waiting_reason is None
    assert decision.last_schedule_time == _at(26, 13)


def test_allow_creates_alongside_active_runs() -> None:
    schedule = _schedule("@hourly", concurrencyPolicy="Allow")
    decision = _plan(schedule, now=_at(26, 13, 1), last=_at(26, 12), runs=[_scheduled(12, "Running")])
    assert decision.create == _at(26, 13)
    assert decision.delete_active == []
    assert decision.waiting_reason is None


# History


def test_history_limits_prune_oldest_schedule_runs_only() -> None:
    schedule = _schedule("@hourly", successfulRunsHistoryLimit=2, failedRunsHistoryLimit=1)
    runs = [
        _scheduled(9, "Succeeded"),
        _scheduled(12, "Succeeded"),
        _scheduled(10, "Failed"),
        _scheduled(7, "Succeeded"),
        _scheduled(11, "Succeeded"),
        _scheduled(8, "Failed"),
        _scheduled(6, "Running"),
        _run("driver-stats-manual-old", "Succeeded", None, created=_at(1, 9)),
        _run("driver-stats-gitops-old", "Failed", None, created=_at(1, 10)),
    ]
    decision = _plan(schedule, now=_at(26, 12, 30), last=_at(26, 12), runs=runs)
    assert decision.prune == [
        "driver-stats-20261126-0700",
        "driver-stats-20261126-0800",
        "driver-stats-20261126-0900",
    ]


def test_history_limit_zero_prunes_every_finished_schedule_run() -> None:
    schedule = _schedule("@hourly", successfulRunsHistoryLimit=0, failedRunsHistoryLimit=0)
    runs = [_scheduled(11, "Failed"), _scheduled(10, "Succeeded"), _scheduled(12, "Running")]
    decision = _plan(schedule, now=_at(26, 12, 30), last=_at(26, 12), runs=runs)
    assert decision.prune == ["driver-stats-20261126-1000", "driver-stats-20261126-1100"]


# Naive datetimes


NAIVE = datetime(2026, 11, 26, 13)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("now", NAIVE),
        ("last_schedule_time", NAIVE),
        ("project_created", NAIVE),
        ("runs", [ScheduledRun("r", None, "Succeeded", NAIVE)]),
        ("runs", [ScheduledRun("r", NAIVE, "Succeeded", _at(26, 13))]),
    ],
)
def test_naive_datetimes_are_rejected(field: str, value: Any) -> None:
    arguments: dict[str, Any] = {
        "project_resource": PROJECT,
        "now": _at(26, 13),
        "last_schedule_time": _at(26, 12),
        "project_created": CREATED,
        "runs": [],
        field: value,
    }
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_schedule(_schedule(), **arguments)


def test_naive_datetimes_are_rejected_by_the_helpers() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_schedule_time(_schedule(), NAIVE)
    with pytest.raises(ValueError, match="timezone-aware"):
        scheduled_run_name(PROJECT, NAIVE)


def test_at_most_so_many_scheduled_runs_wait_to_start() -> None:
    from feast_lineage.domain.schedule_plan import ScheduleDecision, cap_waiting

    tick = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    decision = ScheduleDecision(
        create=tick,
        create_name="p-20261126-1200",
        delete_active=[],
        prune=[],
        waiting_reason=None,
        next_time=tick,
        last_schedule_time=tick,
    )
    waiting = [ScheduledRun(f"p-2026112{n}-0000", tick, "Pending", tick) for n in range(2)]
    manual = ScheduledRun("manual", None, "Pending", tick)
    assert cap_waiting(decision, [*waiting, manual], 3, None) == decision
    capped = cap_waiting(decision, [*waiting, manual], 2, None)
    assert capped.create is None and capped.last_schedule_time is None
    assert capped.waiting_reason == "2 scheduled runs are waiting to start (at most 2), the oldest p-20261120-0000"
