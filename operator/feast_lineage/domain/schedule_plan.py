"""Decide what a project's materialization schedule does at one instant, like the Kubernetes CronJob controller.

The controller lists the project's MaterializationJobs, calls :func:`plan_schedule` with
them and the stored ``status.lastScheduleTime``, then deletes, creates and prunes what the
decision says and stores ``last_schedule_time`` and ``next_time`` in the status.

Time zones
    The cron expression is read in the schedule's IANA time zone, but every instant this
    module returns is UTC, and run names are derived from the UTC instant. Around a DST
    change the local wall clock is irregular, so the rules are:

    * a wall-clock time that occurs twice (clocks go back) fires once, at its first
      occurrence: a ``30 2 * * *`` job does not run twice that night;
    * a wall-clock time that does not occur (clocks go forward) fires at the transition
      instant (the first instant after the gap), like Vixie cron, so the day's run is not
      skipped; several ticks in the gap fire once.

    The instants are therefore strictly increasing and unique, so names never repeat.

Missed ticks
    Only the most recent tick in ``(last_schedule_time or project_created, now]`` may run,
    as in CronJob; older missed ticks are never run. It is found by walking *backwards*
    from ``now``, so an operator that was down for months does not iterate over every
    missed minute.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

from feast_lineage.api import MaterializationSchedule
from feast_lineage.domain.labels import child_name
from feast_lineage.timestamps import rfc3339

ACTIVE_PHASES = frozenset({"", "Pending", "Running"})
"""Phases of a MaterializationJob that has not finished (``""``: just created, no status yet)."""
SUCCEEDED = "Succeeded"
FAILED = "Failed"
SUSPENDED = "suspended"


@dataclass(frozen=True)
class ScheduledRun:
    """An existing MaterializationJob of the project, as the schedule needs to see it."""

    name: str
    scheduled_time: datetime | None
    """From its scheduled-time annotation; None when the schedule did not create it (manual, GitOps)."""
    phase: str
    """Pending | Running | Succeeded | Failed | "" (just created)."""
    creation_time: datetime


@dataclass(frozen=True)
class ScheduleDecision:
    """What the controller does now; all datetimes are aware UTC."""

    create: datetime | None
    """Scheduled instant of the run to create now, if any."""
    create_name: str | None
    """Its deterministic name (:func:`scheduled_run_name`); create it and treat "already exists" as done."""
    delete_active: list[str]
    """Replace policy: active schedule-created runs to delete before creating."""
    prune: list[str]
    """Finished schedule-created runs beyond the history limits, oldest first."""
    waiting_reason: str | None
    """Why a due tick did not run (Forbid, suspended, missed deadline); None otherwise."""
    next_time: datetime | None
    """The next scheduled instant after now, for the status and the requeue; None if the cron never matches."""
    last_schedule_time: datetime | None
    """The most recent tick handled (created or deliberately skipped), to store in the status."""


def _utc(value: datetime, what: str) -> datetime:
    # A naive datetime has no defined instant; guessing (local time? UTC?) would shift the schedule silently.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _iso(value: datetime) -> str:
    return rfc3339(value)


def scheduled_run_name(project_resource: str, scheduled_time: datetime) -> str:
    """``<project>-<YYYYMMDD>-<HHMM>`` of the UTC scheduled instant, at most 63 characters.

    Deterministic, so an operator that restarts between creating the run and storing
    ``lastScheduleTime`` computes the same name and gets "already exists" instead of a
    duplicate run. Cron has minute resolution, so minutes are enough; UTC keeps the name
    unique when the local wall clock repeats an hour.
    """
    stamp = _utc(scheduled_time, "scheduled_time").strftime("%Y%m%d-%H%M")
    return child_name(project_resource, stamp)


def _to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant a naive local wall-clock time fires at (see the module docstring for DST).

    This map is non-decreasing in ``wall``, which the searches below rely on.
    """
    # fold=0 picks the first occurrence of a repeated wall time.
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    # The wall time falls in a gap. fold=0 reads it with the offset before the change, which
    # lands *after* the transition; fold=1 reads it with the offset after, landing before it.
    # The transition lies in between: bisect on whole seconds (tzdata transitions are whole seconds).
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    after = instant
    offset_after = after.astimezone(zone).utcoffset()
    while after - before > timedelta(seconds=1):
        middle = before + timedelta(seconds=(after - before).total_seconds() // 2)
        if middle.astimezone(zone).utcoffset() == offset_after:
            after = middle
        else:
            before = middle
    return after


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _next_after(expression: str, zone: ZoneInfo, after: datetime) -> datetime:
    # croniter iterates naive wall-clock times (plain calendar arithmetic, no DST surprises);
    # _to_utc then places each one. Starting at the wall time of `after` is safe because
    # _to_utc(wall(after)) <= after (equal, or the earlier reading of a repeated time), and
    # _to_utc is non-decreasing, so no later instant can hide before the start.
    ticks = croniter(expression, _wall(after, zone))
    while True:
        # Loops only while wall times of a repeated hour map before `after` (at most an hour of ticks).
        instant = _to_utc(ticks.get_next(datetime), zone)
        if instant > after:
            return instant


def _latest_at_or_before(expression: str, zone: ZoneInfo, now: datetime) -> datetime | None:
    # Walk backwards from a wall time whose instant is after `now`: every tick from there on is
    # after `now` too (non-decreasing), so the first tick found at or before `now` is the latest.
    start = _wall(now, zone) + timedelta(seconds=1)
    while _to_utc(start, zone) <= now:
        # Only when `now` is in the second pass of a repeated hour, whose wall times fired in the first.
        start += timedelta(hours=1)
    ticks = croniter(expression, start)
    while True:
        try:
            wall = ticks.get_prev(datetime)
        except CroniterBadDateError:
            return None  # the expression never matches (e.g. 30 February)
        instant = _to_utc(wall, zone)
        if instant <= now:
            return instant


def next_schedule_time(schedule: MaterializationSchedule, after: datetime) -> datetime:
    """The first scheduled instant strictly after ``after``, in UTC.

    Raises ValueError when ``after`` is naive or the expression never matches (e.g. ``0 0 30 2 *``).
    """
    after = _utc(after, "after")
    try:
        return _next_after(schedule.schedule, ZoneInfo(schedule.time_zone), after)
    except CroniterBadDateError as error:
        raise ValueError(f"schedule {schedule.schedule!r} never matches") from error


def _prune(schedule: MaterializationSchedule, runs: list[ScheduledRun]) -> list[str]:
    """Finished schedule-created runs beyond the history limits, oldest first.

    Manual and GitOps runs (no scheduled time) are someone else's: never pruned.
    """
    pruned: list[ScheduledRun] = []
    for phase, limit in (
        (SUCCEEDED, schedule.successful_runs_history_limit),
        (FAILED, schedule.failed_runs_history_limit),
    ):
        finished = sorted(
            (run for run in runs if run.scheduled_time is not None and run.phase == phase),
            key=_age_key,
            reverse=True,
        )
        pruned.extend(finished[limit:])
    return [run.name for run in sorted(pruned, key=_age_key)]


def _age_key(run: ScheduledRun) -> tuple[datetime, datetime, str]:
    # Scheduled time orders runs by the tick they stand for; creation time and name only break ties.
    assert run.scheduled_time is not None
    return (run.scheduled_time, run.creation_time, run.name)


def plan_schedule(
    schedule: MaterializationSchedule,
    *,
    project_resource: str,
    now: datetime,
    last_schedule_time: datetime | None,
    project_created: datetime,
    runs: list[ScheduledRun],
) -> ScheduleDecision:
    """Decide, at ``now``, whether to create the run of the latest due tick, what to delete and prune.

    The tick considered is the most recent scheduled instant in
    ``(last_schedule_time or project_created, now]``; older missed ticks never run. Then:

    * ``suspend``: nothing is created and ``last_schedule_time`` does not advance, so on
      resume the latest missed tick runs if it is still within ``startingDeadlineSeconds``
      (as CronJob). Pruning continues.
    * A run with the tick's name already exists: it was created before (perhaps by an
      operator that crashed before storing the status); nothing is created, the tick is handled.
    * The tick is older than ``startingDeadlineSeconds``: skipped with a reason, handled.
    * ``Forbid`` with an active schedule-created run: nothing is created and
      ``last_schedule_time`` does **not** advance, so the tick is *delayed*, not dropped:
      it is created once the active run finishes, if it is then still within
      ``startingDeadlineSeconds`` (and unless a newer tick has come by then, which
      supersedes it). This is what the CronJob controller does (it does not record a
      forbidden tick), despite its documentation saying the tick is skipped.
    * ``Replace``: active schedule-created runs are listed in ``delete_active`` and the tick is created.
    * ``Allow``: the tick is created.

    Only schedule-created runs (``scheduled_time`` set) count as active or are pruned;
    manual and GitOps runs are independent of the schedule. All datetimes must be aware;
    the ones returned are UTC.
    """
    now = _utc(now, "now")
    project_created = _utc(project_created, "project_created")
    last = _utc(last_schedule_time, "last_schedule_time") if last_schedule_time is not None else None
    for run in runs:
        _utc(run.creation_time, f"creation_time of {run.name}")
        if run.scheduled_time is not None:
            _utc(run.scheduled_time, f"scheduled_time of {run.name}")

    zone = ZoneInfo(schedule.time_zone)
    prune = _prune(schedule, runs)
    try:
        next_time: datetime | None = _next_after(schedule.schedule, zone, now)
    except CroniterBadDateError:
        next_time = None

    def decide(
        create: datetime | None = None,
        reason: str | None = None,
        handled: datetime | None = last,
        delete_active: list[str] | None = None,
    ) -> ScheduleDecision:
        return ScheduleDecision(
            create=create,
            create_name=scheduled_run_name(project_resource, create) if create is not None else None,
            delete_active=delete_active or [],
            prune=prune,
            waiting_reason=reason,
            next_time=next_time,
            last_schedule_time=handled,
        )

    if schedule.suspend:
        return decide(reason=SUSPENDED)

    since = last if last is not None else project_created
    tick = _latest_at_or_before(schedule.schedule, zone, now)
    if tick is None or tick <= since:
        return decide()

    name = scheduled_run_name(project_resource, tick)
    if any(run.name == name for run in runs):
        return decide(handled=tick)

    deadline = schedule.starting_deadline_seconds
    late = now - tick
    if deadline is not None and late > timedelta(seconds=deadline):
        reason = f"missed {_iso(tick)} by {int(late.total_seconds())}s (startingDeadlineSeconds {deadline})"
        return decide(reason=reason, handled=tick)

    active = sorted(run.name for run in runs if run.scheduled_time is not None and run.phase in ACTIVE_PHASES)
    if active and schedule.concurrency_policy == "Forbid":
        verb = "is" if len(active) == 1 else "are"
        return decide(reason=f"Forbid: {', '.join(active)} {verb} still running")
    if schedule.concurrency_policy == "Replace":
        return decide(create=tick, handled=tick, delete_active=active)
    return decide(create=tick, handled=tick)


def cap_waiting(
    decision: ScheduleDecision, runs: list[ScheduledRun], cap: int, last_schedule_time: datetime | None
) -> ScheduleDecision:
    """At most ``cap`` schedule-created runs wait to start at once (concurrencyPolicy Allow with a blocked
    view would pile them up): past it the tick is delayed, not created, and the message says why."""
    if decision.create is None:
        return decision
    waiting = sorted(run.name for run in runs if run.scheduled_time is not None and run.phase in ("", "Pending"))
    if len(waiting) < cap:
        return decision
    return replace(
        decision,
        create=None,
        create_name=None,
        delete_active=[],
        waiting_reason=f"{len(waiting)} scheduled runs are waiting to start (at most {cap}), the oldest {waiting[0]}",
        last_schedule_time=last_schedule_time,
    )
