"""The audit record of one Feast operation: what becomes one MLflow run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from feast_lineage.audit.caps import TAG_VALUE_LIMIT, cap_text

KEY_LIMIT = 250
"""MLflow's limit on tag, param and metric keys."""

# Ids go into an MLflow search filter: a restricted alphabet needs no quoting.
AuditId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]

_COMPACT_KEYS = {
    "id": "i",
    "experiment": "x",
    "run_name": "n",
    "status": "s",
    "start_time_ms": "t0",
    "end_time_ms": "t1",
    "tags": "tg",
    "params": "p",
    "metrics": "m",
}


class AuditRecord(BaseModel):
    """One operation as an MLflow run. Values are capped so the record fits a termination message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: AuditId
    """Unique per operation; delivered runs carry it as tag ``featurelineage.audit_id``."""
    experiment: Annotated[str, Field(min_length=1, max_length=500)]
    run_name: Annotated[str, Field(min_length=1, max_length=KEY_LIMIT)]
    status: Literal["FINISHED", "FAILED"]
    start_time_ms: Annotated[int, Field(ge=0)]
    end_time_ms: Annotated[int, Field(ge=0)]
    tags: dict[str, str] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)

    @field_validator("tags", "params")
    @classmethod
    def _cap_values(cls, value: dict[str, str]) -> dict[str, str]:
        return {_check_key(key): cap_text(text, TAG_VALUE_LIMIT) for key, text in value.items()}

    @field_validator("metrics")
    @classmethod
    def _check_metric_keys(cls, value: dict[str, float]) -> dict[str, float]:
        return {_check_key(key): number for key, number in value.items()}

    def to_compact(self) -> dict[str, Any]:
        """Short keys, empty sections left out: the form kept in a termination message and in status."""
        full = self.model_dump()
        return {short: full[name] for name, short in _COMPACT_KEYS.items() if full[name] not in ({}, None)}

    def to_compact_json(self) -> str:
        return json.dumps(self.to_compact(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_compact(cls, data: Mapping[str, Any] | str | bytes) -> AuditRecord:
        """Read what :meth:`to_compact` (or :meth:`to_compact_json`) wrote."""
        raw: Any = json.loads(data) if isinstance(data, str | bytes) else data
        if not isinstance(raw, Mapping):
            raise ValueError("a compact audit record must be a JSON object")
        long_names = {short: name for name, short in _COMPACT_KEYS.items()}
        unknown = sorted(set(raw) - set(long_names))
        if unknown:
            raise ValueError(f"unknown keys in compact audit record: {', '.join(unknown)}")
        return cls.model_validate({long_names[short]: value for short, value in raw.items()})

    @property
    def duration_seconds(self) -> float:
        return max(0, self.end_time_ms - self.start_time_ms) / 1000


def _check_key(key: str) -> str:
    if not key or len(key) > KEY_LIMIT:
        raise ValueError(f"MLflow keys must have 1 to {KEY_LIMIT} characters: {key[:60]!r}")
    return key
