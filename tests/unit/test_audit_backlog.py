"""pendingAudit: bounded, oldest dropped and named, records settled independently, deletion bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from feast_lineage.domain.audit_backlog import (
    Attempt,
    add_pending,
    cap_pending,
    dropped_message,
    on_deletion,
    settle,
)

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def records(*ids: str) -> list[dict[str, str]]:
    return [{"i": audit_id} for audit_id in ids]


def test_the_cap_holds_over_a_thousand_records_and_drops_the_oldest_first() -> None:
    pending: list[dict[str, str]] = []
    dropped: list[str] = []
    for number in range(1000):
        capped = add_pending(pending, {"i": f"r{number}"}, cap=100)
        pending, dropped = capped.kept, dropped + capped.dropped
    assert [r["i"] for r in pending] == [f"r{n}" for n in range(900, 1000)]
    assert dropped == [f"r{n}" for n in range(900)]


def test_a_record_added_again_replaces_its_earlier_copy() -> None:
    capped = add_pending(records("a", "b"), {"i": "a", "x": "new"}, cap=2)
    assert capped.kept == [{"i": "b"}, {"i": "a", "x": "new"}] and capped.dropped == []


def test_a_status_over_the_cap_is_brought_back_under_it() -> None:
    assert cap_pending(records("a", "b", "c"), cap=2).dropped == ["a"]


def test_the_dropped_message_names_a_few_and_counts_the_rest() -> None:
    message = dropped_message([f"r{n}" for n in range(8)])
    assert message.startswith("8 audit record(s)") and "r4" in message and "r5" not in message and "3 more" in message


def test_records_settle_independently() -> None:
    settled = settle(
        records("bad", "down", "good", "untried", "added-meanwhile"),
        [],
        {
            "bad": Attempt("undeliverable", "HTTP 400"),
            "down": Attempt("retry", "unreachable"),
            "good": Attempt("delivered", mlflow="run-1"),
            "untried-gone": Attempt("delivered", mlflow="run-2"),
        },
        NOW,
    )
    # Not tried (or added since the pass read them) first, then those that failed: no record blocks another.
    assert settled.pending == records("untried", "added-meanwhile", "down")
    assert settled.undeliverable == [{"record": {"i": "bad"}, "reason": "HTTP 400", "since": NOW.isoformat()}]
    assert settled.delivered == {"good": "run-1"}
    assert settled.set_aside == [("bad", "HTTP 400")]


def test_records_set_aside_are_capped_newest_kept() -> None:
    earlier = [{"record": {"i": f"old{n}"}, "reason": "x", "since": "t"} for n in range(3)]
    settled = settle(records("new"), earlier, {"new": Attempt("undeliverable", "y")}, NOW, cap=3)
    assert [item["record"]["i"] for item in settled.undeliverable] == ["old1", "old2", "new"]
    assert settled.dropped == ["old0"]


def test_deletion_waits_for_pending_records_then_abandons_them() -> None:
    wait = timedelta(seconds=60)
    assert on_deletion([], NOW, NOW, wait, 5).wait_seconds is None
    waiting = on_deletion(records("a"), NOW - timedelta(seconds=10), NOW, wait, 5)
    assert waiting.wait_seconds == 5 and waiting.abandoned == []
    over = on_deletion(records("a", "b"), NOW - timedelta(seconds=60), NOW, wait, 5)
    assert over.wait_seconds is None and over.abandoned == ["a", "b"]
