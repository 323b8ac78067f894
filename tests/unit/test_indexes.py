"""The operator's own indexes of projects and runs: what each look-up holds as runs and projects
come, change, finish and go, and that a run listed before the watch can be dropped only until a
watch event has seen it."""

from __future__ import annotations

import threading
from typing import Any

from feast_lineage.controller.indexes import Indexes
from feast_lineage.domain import labels
from feast_lineage.domain.materialization_state import Peer


def run(
    project: str, phase: str | None = None, views: list[str] | None = None, scheduled: bool = False
) -> dict[str, Any]:
    annotations = {labels.ANNOTATION_SCHEDULED_TIME: "2026-01-01T00:00:00Z"} if scheduled else {}
    body: dict[str, Any] = {
        "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z", "annotations": annotations},
        "spec": {"projectRef": {"name": project}, "featureViews": views or []},
    }
    if phase is not None:
        body["status"] = {"phase": phase}
    return body


def repo(config_map: str, ca: str | None = None) -> dict[str, Any]:
    git = {"caBundleRef": {"name": ca}} if ca else {}
    return {"repo": {"configMap": {"name": config_map}, "git": git}}


def names(indexes: Indexes, namespace: str, project: str) -> list[str]:
    return sorted(peer["name"] for peer in indexes.peers(namespace, project))


def test_an_active_run_is_a_peer_of_its_project_with_its_summary() -> None:
    indexes = Indexes()
    indexes.observe_run("ns", "r1", run("p", "Running", ["driver_stats"]))
    assert indexes.peers("ns", "p") == [
        {
            "name": "r1",
            "created": "2026-01-01T00:00:00Z",
            "scheduledTime": None,
            "featureViews": ["driver_stats"],
            "phase": "Running",
            "peer": Peer("r1", "2026-01-01T00:00:00Z", frozenset({"driver_stats"}), "Running"),
        }
    ]
    assert indexes.project_of_run("ns", "r1") == "p"
    assert indexes.peers("other", "p") == [] and indexes.project_of_run("other", "r1") is None


def test_a_run_without_status_yet_is_active() -> None:
    indexes = Indexes()
    indexes.observe_run("ns", "r1", run("p"))
    assert names(indexes, "ns", "p") == ["r1"]
    assert indexes.project_of_run("ns", "r1") == "p"


def test_a_finished_run_of_no_schedule_leaves_both_run_indexes() -> None:
    indexes = Indexes()
    indexes.observe_run("ns", "r1", run("p", "Running"))
    indexes.observe_run("ns", "r1", run("p", "Succeeded"))
    assert indexes.peers("ns", "p") == []
    assert indexes.project_of_run("ns", "r1") is None
    assert indexes.sizes() == {"runs_by_project": 0, "project_of_run": 0, "projects_by_configmap": 0, "unconfirmed": 0}


def test_a_finished_scheduled_run_stays_a_peer_but_has_no_project_for_its_job() -> None:
    indexes = Indexes()
    indexes.observe_run("ns", "r1", run("p", "Failed", scheduled=True))
    assert [peer["phase"] for peer in indexes.peers("ns", "p")] == ["Failed"]
    assert indexes.project_of_run("ns", "r1") is None


def test_observing_the_same_state_again_changes_nothing() -> None:
    indexes = Indexes()
    for _ in range(3):
        indexes.observe_run("ns", "r1", run("p", "Pending"))
    assert names(indexes, "ns", "p") == ["r1"]
    assert indexes.sizes()["runs_by_project"] == 1


def test_a_summary_follows_the_latest_state() -> None:
    indexes = Indexes()
    indexes.observe_run("ns", "r1", run("p", "Pending"))
    indexes.observe_run("ns", "r1", run("p", "Running"))
    assert [peer["phase"] for peer in indexes.peers("ns", "p")] == ["Running"]


def test_a_run_moved_to_another_project_leaves_the_first() -> None:
    indexes = Indexes()
    indexes.observe_run("ns", "r1", run("a", "Pending"))
    indexes.observe_run("ns", "r1", run("b", "Pending"))
    assert indexes.peers("ns", "a") == [] and names(indexes, "ns", "b") == ["r1"]
    assert indexes.project_of_run("ns", "r1") == "b"


def test_a_deleted_run_leaves_every_index() -> None:
    indexes = Indexes()
    indexes.observe_run("ns", "r1", run("p", "Running"))
    indexes.observe_run("ns", "r2", run("p", "Pending"))
    indexes.observe_run("ns", "r1", None)
    assert names(indexes, "ns", "p") == ["r2"]
    assert indexes.project_of_run("ns", "r1") is None
    indexes.observe_run("ns", "unknown", None)  # a deletion of a run never seen is no error
    assert names(indexes, "ns", "p") == ["r2"]


def test_peers_are_a_copy() -> None:
    indexes = Indexes()
    indexes.observe_run("ns", "r1", run("p", "Running"))
    peers = indexes.peers("ns", "p")
    indexes.observe_run("ns", "r2", run("p", "Running"))
    assert [peer["name"] for peer in peers] == ["r1"]


def test_a_listed_run_is_unconfirmed_until_a_watch_event_sees_it() -> None:
    indexes = Indexes()
    indexes.observe_run("ns", "seen", run("p", "Running"), listed=True)
    indexes.observe_run("ns", "gone", run("p", "Running"), listed=True)
    indexes.observe_run("ns", "history", run("p", "Succeeded"), listed=True)  # not kept: nothing to confirm
    assert indexes.unconfirmed_runs() == [("ns", "gone"), ("ns", "seen")]
    indexes.observe_run("ns", "seen", run("p", "Running"))
    assert indexes.unconfirmed_runs() == [("ns", "gone")]
    assert not indexes.forget_unconfirmed("ns", "seen")
    assert indexes.forget_unconfirmed("ns", "gone")
    assert names(indexes, "ns", "p") == ["seen"]
    assert indexes.project_of_run("ns", "gone") is None
    assert indexes.unconfirmed_runs() == []


def test_a_listed_run_deleted_by_a_watch_event_is_no_longer_unconfirmed() -> None:
    indexes = Indexes()
    indexes.observe_run("ns", "r1", run("p", "Running"), listed=True)
    indexes.observe_run("ns", "r1", None)
    assert indexes.unconfirmed_runs() == [] and indexes.peers("ns", "p") == []


def test_projects_by_config_map_follow_the_spec() -> None:
    indexes = Indexes()
    indexes.observe_project("ns", "a", repo("shared", ca="ca"))
    indexes.observe_project("ns", "b", repo("shared"))
    assert indexes.projects_using("ns", "shared") == {"a", "b"}
    assert indexes.projects_using("ns", "ca") == {"a"}
    assert indexes.projects_using("other", "shared") == set()
    indexes.observe_project("ns", "a", repo("own"))
    assert indexes.projects_using("ns", "shared") == {"b"}
    assert indexes.projects_using("ns", "ca") == set()
    assert indexes.projects_using("ns", "own") == {"a"}
    indexes.observe_project("ns", "b", None)
    indexes.observe_project("ns", "a", {"repo": {"git": {"url": "https://example.com/r.git"}}})
    assert indexes.sizes()["projects_by_configmap"] == 0


def test_concurrent_observers_and_readers_leave_a_consistent_index() -> None:
    indexes = Indexes()
    errors: list[BaseException] = []

    def churn(worker: int) -> None:
        try:
            for step in range(500):
                name = f"r{worker}-{step % 20}"
                indexes.observe_run("ns", name, run("p", "Running" if step % 3 else "Succeeded"))
                indexes.peers("ns", "p")
                indexes.project_of_run("ns", name)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=churn, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for worker in range(4):
        for slot in range(20):
            indexes.observe_run("ns", f"r{worker}-{slot}", None)
    assert indexes.sizes() == {"runs_by_project": 0, "project_of_run": 0, "projects_by_configmap": 0, "unconfirmed": 0}
