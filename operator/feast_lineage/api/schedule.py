"""Scheduled materialization of a project."""

from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import Field, field_validator

from .common import FEATURE_VIEW_LIST, CamelModel, FeatureViewName, check_unique

# Loose on purpose: the server only checks the shape, the operator checks the fields with croniter.
CRON_PATTERN = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|\S+(\s+\S+){4})$"
TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+/-]*$"


class MaterializationSchedule(CamelModel):
    """Periodic incremental materialization: the project creates a MaterializationJob per tick."""

    schedule: Annotated[str, Field(max_length=128, pattern=CRON_PATTERN)]
    """Cron expression with five fields, or a macro such as @hourly or @daily."""
    time_zone: Annotated[str, Field(min_length=1, max_length=64, pattern=TIME_ZONE_PATTERN)] = "UTC"
    """IANA time zone the schedule is read in."""
    starting_deadline_seconds: Annotated[int, Field(ge=1)] | None = None
    """A tick missed by more than this many seconds is skipped; no deadline when not set."""
    concurrency_policy: Literal["Forbid", "Replace", "Allow"] = "Forbid"
    """What to do when a tick comes while a run the schedule created is still active: Forbid delays
    the tick until that run finishes, Replace deletes that run, Allow runs both."""
    suspend: bool = False
    """Whether the schedule stops creating runs; running ones finish."""
    feature_views: list[FeatureViewName] = Field(
        default_factory=list, max_length=100, json_schema_extra=FEATURE_VIEW_LIST
    )
    """Feature views to materialize; all of the project's when empty."""
    successful_runs_history_limit: Annotated[int, Field(ge=0)] = 3
    """How many succeeded MaterializationJobs created by the schedule are kept."""
    failed_runs_history_limit: Annotated[int, Field(ge=0)] = 1
    """How many failed MaterializationJobs created by the schedule are kept."""

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"invalid cron expression {value!r}")
        return value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value

    @field_validator("feature_views")
    @classmethod
    def _unique_views(cls, value: list[str]) -> list[str]:
        check_unique(value, "feature view")
        return value
