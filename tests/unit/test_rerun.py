"""A re-run is a new object: same project and views, exactly the window the first run covered."""

from __future__ import annotations

from feast_lineage.domain.labels import ANNOTATION_RERUN_OF
from feast_lineage.rerun import rerun_manifest, rerun_name


def _run(spec: dict[str, object], window: dict[str, str] | None = None) -> dict[str, object]:
    return {
        "metadata": {"name": "nightly", "uid": "u", "resourceVersion": "9", "annotations": {"x": "y"}},
        "spec": spec,
        "status": {"phase": "Failed", **({"window": window} if window else {})},
    }


def test_an_incremental_run_is_rerun_over_the_window_it_had() -> None:
    old = _run(
        {"projectRef": {"name": "drivers"}, "mode": "Incremental", "featureViews": ["a"]},
        {"start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z"},
    )
    new = rerun_manifest(old, "nightly-rerun-1")
    assert new["metadata"] == {"name": "nightly-rerun-1", "annotations": {ANNOTATION_RERUN_OF: "nightly"}}
    assert new["spec"] == {
        "projectRef": {"name": "drivers"},
        "mode": "Range",
        "startTime": "2026-11-02T00:00:00Z",
        "endTime": "2026-11-03T00:00:00Z",
        "featureViews": ["a"],
    }
    assert "status" not in new


def test_a_run_without_a_window_is_copied_as_it_was() -> None:
    spec: dict[str, object] = {"projectRef": {"name": "drivers"}, "mode": "Range", "startTime": "s", "endTime": "e"}
    assert rerun_manifest(_run(spec), "again")["spec"] == spec


def test_names_count_up() -> None:
    assert rerun_name("nightly", set()) == "nightly-rerun-1"
    assert rerun_name("nightly", {"nightly-rerun-1", "nightly-rerun-2"}) == "nightly-rerun-3"
