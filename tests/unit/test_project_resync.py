"""A settled project's resync costs nothing until something it depends on changes, or the full
pass every FULL_RESYNC_EVERY resyncs is due; a project still applying is passed over every time."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from feast_lineage.api import FEATURE_STORE_PROJECT_KIND
from feast_lineage.controller.kube import Kube
from feast_lineage.controller.locks import ObjectLocks
from feast_lineage.controller.pass_log import ERROR, OK, PASS_DONE, SETTLED
from feast_lineage.controller.project_reconciler import FULL_RESYNC_EVERY, ProjectReconciler
from feast_lineage.controller.settings import OperatorSettings


class CountingPasses(ProjectReconciler):
    """Passes that only count, and settle the project or not as told (the write's part)."""

    def __init__(self) -> None:
        super().__init__(Kube(client.ApiClient()), OperatorSettings(resync_seconds=60.0), ObjectLocks())
        self.passes = 0
        self.settles = True
        self.fails = False

    def _pass(self, namespace: str, name: str) -> str:
        self.passes += 1
        self._settles[f"{namespace}/{name}"] = self.settles
        if self.fails:
            raise RuntimeError("the API server is down")
        return OK


@pytest.fixture
def projects() -> Iterator[CountingPasses]:
    reconciler = CountingPasses()
    yield reconciler
    reconciler.shutdown()


def test_a_settled_project_is_not_passed_over_again_at_its_resync(projects: CountingPasses) -> None:
    projects.reconcile("ns", "p")
    projects.resync("ns", "p")
    projects.resync("ns", "p")
    assert projects.passes == 1


def test_a_change_it_depends_on_makes_the_next_resync_a_full_pass(projects: CountingPasses) -> None:
    projects.reconcile("ns", "p")
    projects.unsettle("ns", "p")
    projects.resync("ns", "p")
    assert projects.passes == 2
    projects.resync("ns", "p")
    assert projects.passes == 2


def test_a_project_still_applying_is_passed_over_at_every_resync(projects: CountingPasses) -> None:
    projects.settles = False
    projects.reconcile("ns", "p")
    projects.resync("ns", "p")
    projects.resync("ns", "p")
    assert projects.passes == 3


def test_a_pass_that_failed_after_its_write_does_not_settle_it(projects: CountingPasses) -> None:
    projects.fails = True
    with pytest.raises(RuntimeError):
        projects.reconcile("ns", "p")
    projects.fails = False
    projects.resync("ns", "p")
    assert projects.passes == 2


def test_every_so_many_resyncs_a_settled_project_gets_a_full_pass(
    projects: CountingPasses, monkeypatch: pytest.MonkeyPatch
) -> None:
    projects.reconcile("ns", "p")
    later = time.monotonic() + FULL_RESYNC_EVERY * 60.0 + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    projects.resync("ns", "p")
    assert projects.passes == 2


def test_each_pass_ends_with_a_debug_line_that_says_how_it_ended(
    projects: CountingPasses, caplog: pytest.LogCaptureFixture
) -> None:
    before = time.time()
    with caplog.at_level(logging.DEBUG, logger="feast_lineage.controller.pass_log"):
        projects.reconcile("ns", "p")
        projects.resync("ns", "p")
        projects.fails = True
        with pytest.raises(RuntimeError):
            projects.reconcile("ns", "p")
    lines = [r for r in caplog.records if r.getMessage().startswith(PASS_DONE)]
    assert [(r.kind, r.k8s_namespace, r.k8s_name, r.outcome) for r in lines] == [  # type: ignore[attr-defined]
        (FEATURE_STORE_PROJECT_KIND, "ns", "p", OK),
        (FEATURE_STORE_PROJECT_KIND, "ns", "p", SETTLED),
        (FEATURE_STORE_PROJECT_KIND, "ns", "p", ERROR),
    ]
    # To the millisecond, either way.
    assert all(before - 0.001 <= r.started <= time.time() + 0.001 for r in lines)  # type: ignore[attr-defined]


def test_at_the_default_level_a_pass_writes_no_line(projects: CountingPasses, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="feast_lineage"):
        projects.reconcile("ns", "p")
        projects.resync("ns", "p")
    assert not [r for r in caplog.records if r.getMessage().startswith(PASS_DONE)]
