"""The uninstall cleanup's finalizer patch (applied to real objects in tests/cluster/test_install.py)."""

from __future__ import annotations

import pytest

from feast_lineage.controller import project_watch, run_watch
from feast_lineage.install.cleanup import FINALIZER, finalizer_patch


def test_it_removes_only_the_operators_finalizer_where_it_was_read() -> None:
    obj = {"metadata": {"name": "p", "finalizers": ["example.com/other", FINALIZER, "example.com/last"]}}
    assert finalizer_patch(obj) == [
        {"op": "test", "path": "/metadata/finalizers/1", "value": FINALIZER},
        {"op": "remove", "path": "/metadata/finalizers/1"},
    ]


@pytest.mark.parametrize("metadata", [{}, {"finalizers": []}, {"finalizers": ["example.com/other"]}])
def test_nothing_to_do_without_it(metadata: dict[str, object]) -> None:
    assert finalizer_patch({"metadata": metadata}) is None


def test_it_is_the_finalizer_the_operator_keeps() -> None:
    assert project_watch.FINALIZER == run_watch.FINALIZER == FINALIZER == "featurelineage.io/finalizer"
