"""The audit record's compact form and size caps."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from feast_lineage.audit.caps import TAG_VALUE_LIMIT, cap_list, cap_text, join_capped
from feast_lineage.audit.mlflow_rest import Credentials
from feast_lineage.audit.record import AuditRecord


def _record(**changes: object) -> AuditRecord:
    fields: dict[str, object] = {
        "id": "3f1c9a7e-uid",
        "experiment": "driver_stats-feast-ops",
        "run_name": "apply_driver_stats",
        "status": "FINISHED",
        "start_time_ms": 1_700_000_000_000,
        "end_time_ms": 1_700_000_004_500,
        "tags": {"feast.operation": "apply", "k8s.namespace": "team-a"},
        "params": {"feast.materialize.start_date": "2026-11-02T00:00:00Z"},
        "metrics": {"featurelineage.duration_sec": 4.5},
    }
    fields.update(changes)
    return AuditRecord.model_validate(fields)


def test_compact_form_round_trips_with_short_keys() -> None:
    record = _record()
    compact = record.to_compact()
    assert set(compact) == {"i", "x", "n", "s", "t0", "t1", "tg", "p", "m"}
    assert AuditRecord.from_compact(compact) == record
    assert AuditRecord.from_compact(record.to_compact_json()) == record
    assert record.duration_seconds == 4.5


def test_compact_form_leaves_out_empty_sections() -> None:
    compact = _record(params={}, metrics={}).to_compact()
    assert "p" not in compact and "m" not in compact
    assert AuditRecord.from_compact(compact).params == {}


def test_compact_json_is_small() -> None:
    assert len(_record().to_compact_json().encode()) < 400


def test_from_compact_rejects_unknown_keys_and_non_objects() -> None:
    with pytest.raises(ValueError, match="unknown keys"):
        AuditRecord.from_compact({**_record().to_compact(), "zz": 1})
    with pytest.raises(ValueError, match="JSON object"):
        AuditRecord.from_compact("[1, 2]")


def test_long_tag_and_param_values_are_capped_with_a_marker() -> None:
    record = _record(tags={"long": "x" * 9000}, params={"p": "y" * 600})
    assert len(record.tags["long"]) == TAG_VALUE_LIMIT
    assert record.tags["long"].endswith(f"...(+{9000 - record.tags['long'].index('.')})")
    assert len(record.params["p"]) <= TAG_VALUE_LIMIT


def test_ids_are_restricted_to_a_filter_safe_alphabet() -> None:
    with pytest.raises(ValidationError):
        _record(id="x' OR '1'='1")
    with pytest.raises(ValidationError):
        _record(status="RUNNING")


def test_overlong_keys_are_rejected() -> None:
    with pytest.raises(ValidationError, match="keys"):
        _record(tags={"k" * 300: "v"})


def test_cap_text_keeps_short_text_and_counts_what_it_drops() -> None:
    assert cap_text("short", 10) == "short"
    capped = cap_text("abcdefghijklmnopqrstuvwxyz", 12)
    assert len(capped) <= 12
    kept = capped.split("...")[0]
    assert capped == f"{kept}...(+{26 - len(kept)})"


def test_join_capped_drops_whole_names() -> None:
    names = [f"feature_view_{n:03d}" for n in range(100)]
    joined = join_capped(names, 100)
    assert len(joined) <= 100
    parts = joined.split(",")
    assert parts[-1] == f"...(+{100 - (len(parts) - 1)})"
    assert all(part in names for part in parts[:-1])
    assert join_capped(["a", "b"], 100) == "a,b"


def test_cap_list_marks_dropped_items() -> None:
    assert cap_list(["a", "b", "c"], 1) == ["a", "...(+2)"]
    assert cap_list(["a"], 1) == ["a"]


def test_credentials_choose_basic_over_bearer_and_hide_secrets() -> None:
    basic = Credentials.from_env({"MLFLOW_TRACKING_USERNAME": "u", "MLFLOW_TRACKING_PASSWORD": "pw-s3cr3t"})
    assert basic.authorization() == "Basic dTpwdy1zM2NyM3Q="
    bearer = Credentials.from_env({"MLFLOW_TRACKING_TOKEN": "tk-s3cr3t", "MLFLOW_TRACKING_INSECURE_TLS": "true"})
    assert bearer.authorization() == "Bearer tk-s3cr3t"
    assert bearer.insecure_tls
    assert "s3cr3t" not in repr(bearer) and "s3cr3t" not in repr(basic)
    assert Credentials.from_env({}).authorization() is None
