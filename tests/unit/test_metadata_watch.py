"""What a relist of the metadata-only watch reports: the difference from what it knew, nothing more."""

from __future__ import annotations

import pytest

from feast_lineage.controller.metadata_watch import Expired, Known, check_error, relisted

OWNER = {"apiVersion": "featurelineage.io/v1alpha1", "kind": "FeatureStoreProject", "name": "p", "controller": True}


def meta(name: str, version: str, **extra: object) -> dict[str, object]:
    return {"namespace": "ns", "name": name, "resourceVersion": version, **extra}


def test_a_relist_reports_new_changed_and_gone_objects_and_not_the_unchanged() -> None:
    known = {
        ("ns", "same"): Known(meta("same", "1")),
        ("ns", "changed"): Known(meta("changed", "2")),
        ("ns", "gone"): Known(meta("gone", "3", ownerReferences=[OWNER])),
    }
    listed = {
        ("ns", "same"): meta("same", "1"),
        ("ns", "changed"): meta("changed", "7"),
        ("ns", "new"): meta("new", "8"),
    }

    events = relisted(known, listed)

    assert events == [
        ("MODIFIED", meta("changed", "7")),
        ("ADDED", meta("new", "8")),
        # As a watch's DELETED event would have it: who owned it (a project's snapshot, say).
        ("DELETED", {"namespace": "ns", "name": "gone", "ownerReferences": [OWNER]}),
    ]


def test_a_relist_of_what_was_known_reports_nothing() -> None:
    listed = {("ns", name): meta(name, str(index)) for index, name in enumerate("abc")}
    known = {key: Known(value) for key, value in listed.items()}

    assert relisted(known, listed) == []


def test_a_watch_error_410_means_list_again_and_any_other_error_resume() -> None:
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old resource version"}}
    with pytest.raises(Expired):
        check_error(gone)
    with pytest.raises(RuntimeError, match="500"):
        check_error({"type": "ERROR", "object": {"kind": "Status", "code": 500, "message": "internal"}})
    check_error({"type": "MODIFIED", "object": {"metadata": {"name": "a"}}})  # not an error
