"""Pure decisions for MaterializationJobs: waiting, locking by feature view, failing, recording."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from feast_lineage.api import MaterializationJobSpec, MaterializationJobStatus
from feast_lineage.contract import MlflowRun, RunnerResult
from feast_lineage.domain.materialization_state import (
    HOLD,
    LABEL,
    RELEASE,
    SETTLE,
    MaterializationDecision,
    MaterializationObservation,
    Peer,
    decide_materialization,
    finalizer_step,
    holds_on_copy,
    needs_settled_label,
    pass_on_event,
    settled,
    unsettled,
)
from feast_lineage.domain.runner_outcome import JobObservation

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _spec(**fields: Any) -> MaterializationJobSpec:
    base: dict[str, Any] = {
        "projectRef": {"name": "drivers"},
        "mode": "Range",
        "startTime": "2026-11-02T00:00:00Z",
        "endTime": "2026-11-03T00:00:00Z",
    }
    return MaterializationJobSpec.model_validate({**base, **fields})


def _project(ready: bool = True, views: tuple[str, ...] = ("a", "b")) -> dict[str, Any]:
    condition = {
        "type": "Ready",
        "status": "True" if ready else "False",
        "reason": "Applied" if ready else "ApplyFailed",
        "message": "broken repo",
        "lastTransitionTime": "2026-11-26T10:00:00Z",
    }
    return {"status": {"featureViews": list(views), "conditions": [condition]}}


def _observe(**fields: Any) -> MaterializationObservation:
    base: dict[str, Any] = {
        "name": "run",
        "created": "2026-11-26T11:00:00Z",
        "generation": 1,
        "status": MaterializationJobStatus(),
        "now": NOW,
        "spec": _spec(),
        "project": _project(),
    }
    return MaterializationObservation(**{**base, **fields})


def _conditions(status: MaterializationJobStatus) -> dict[str, str]:
    return {c.type: c.status for c in status.conditions}


def _wire(decision: MaterializationDecision) -> dict[str, Any]:
    return decision.status.to_k8s()


def _running() -> MaterializationJobStatus:
    return MaterializationJobStatus(phase="Running")


def test_ready_project_and_free_views_create_the_job() -> None:
    decision = decide_materialization(_observe())
    assert decision.create_job and decision.feature_views == ["a", "b"]
    wire = _wire(decision)
    assert wire["phase"] == "Running" and wire["startTime"] == "2026-11-26T12:00:00Z"
    assert _conditions(decision.status) == {"Ready": "False", "Reconciling": "True", "Stalled": "False"}


def test_waits_for_a_missing_or_unready_project() -> None:
    missing = decide_materialization(_observe(project=None))
    assert not missing.create_job and _wire(missing)["waitingFor"] == "FeatureStoreProject drivers not found"
    unready = decide_materialization(_observe(project=_project(ready=False)))
    assert _wire(unready)["waitingFor"] == "FeatureStoreProject drivers is not Ready: broken repo"
    assert _wire(unready)["phase"] == "Pending"


def test_an_older_or_running_run_on_a_shared_view_goes_first() -> None:
    older = Peer("older", "2026-11-26T10:00:00Z", frozenset({"b"}), "Pending")
    waiting = decide_materialization(_observe(peers=[older]))
    assert not waiting.create_job
    assert _wire(waiting)["waitingFor"] == "MaterializationJob older (feature views b)"
    younger_running = Peer("younger", "2026-11-26T11:30:00Z", frozenset({"a"}), "Running")
    assert not decide_materialization(_observe(peers=[younger_running])).create_job
    younger_pending = Peer("younger", "2026-11-26T11:30:00Z", frozenset({"a"}), "Pending")
    other_views = Peer("other", "2026-11-26T10:00:00Z", frozenset({"c"}), "Running")
    finished = Peer("done", "2026-11-26T09:00:00Z", frozenset({"a"}), "Succeeded")
    assert decide_materialization(_observe(peers=[younger_pending, other_views, finished])).create_job


def test_unknown_view_and_future_window_fail_without_a_job() -> None:
    unknown = decide_materialization(_observe(spec=_spec(featureViews=["a", "zz"])))
    assert (_wire(unknown)["phase"], _wire(unknown)["reason"]) == ("Failed", "UnknownFeatureView")
    assert _wire(unknown)["message"] == "feature view(s) not in project drivers: zz"
    assert _conditions(unknown.status)["Stalled"] == "True"
    future = decide_materialization(_observe(spec=_spec(endTime="2026-11-27T00:00:00Z")))
    assert _wire(future)["reason"] == "InvalidWindow" and not future.create_job


def _counted_project(count: int = 1000) -> dict[str, Any]:
    """A project whose registry holds more views than its status names (counts only)."""
    project = _project(views=())
    project["status"]["featureViewCount"] = count
    return project


def test_views_a_project_only_counts_are_left_to_the_runner_to_check() -> None:
    named = decide_materialization(_observe(spec=_spec(featureViews=["fv_999"]), project=_counted_project()))
    assert named.create_job and named.feature_views == ["fv_999"]
    # With every view listed, an unknown name still fails here, before any Job.
    listed = _project(views=("a", "b"))
    listed["status"]["featureViewCount"] = 2
    unknown = decide_materialization(_observe(spec=_spec(featureViews=["zz"]), project=listed))
    assert _wire(unknown)["reason"] == "UnknownFeatureView"


def test_a_run_of_unnamed_views_in_a_counted_project_runs_alone() -> None:
    project = _counted_project()
    alone = decide_materialization(_observe(project=project))
    assert alone.create_job and alone.feature_views == []
    other = Peer("other", "2026-11-26T10:00:00Z", frozenset({"fv_1"}), "Running")
    waits = decide_materialization(_observe(project=project, peers=[other]))
    assert not waits.create_job and _wire(waits)["reason"] == "WaitingForRun"
    # ... and a run of named views waits for it in turn.
    every = Peer("all", "2026-11-26T10:00:00Z", frozenset(), "Running", every=True)
    behind = decide_materialization(_observe(spec=_spec(featureViews=["fv_2"]), project=project, peers=[every]))
    assert not behind.create_job and _wire(behind)["reason"] == "WaitingForRun"
    empty = decide_materialization(_observe(project=_counted_project(0)))
    assert _wire(empty)["reason"] == "NoFeatureViews"


def test_finished_job_is_recorded_and_then_never_touched() -> None:
    result = RunnerResult(
        operation="materialize",
        ok=True,
        duration_seconds=8.5,
        window_start="2026-11-02T00:00:00Z",
        window_end="2026-11-03T00:00:00Z",
        feature_views=["a", "b"],
        mlflow=MlflowRun(experiment="e", run_id="r1", run_url="u"),
    )
    job = JobObservation("run-materialize", "succeeded", "", result, "2026-11-26T12:01:00Z")
    decision = decide_materialization(_observe(job=job, status=_running()))
    status, wire = decision.status, _wire(decision)
    assert decision.finished is job and wire["phase"] == "Succeeded"
    assert wire["window"] == {"start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z"}
    assert wire["mlflow"]["runId"] == "r1" and wire["durationSeconds"] == 8.5
    assert _conditions(status) == {"Ready": "True", "Reconciling": "False", "Stalled": "False"}
    again = decide_materialization(_observe(job=job, status=status, project=None))
    assert again.status == status and again.transitions == [] and again.finished is None


def test_failed_job_keeps_one_line_and_its_audit_record() -> None:
    result = RunnerResult(
        operation="materialize",
        ok=False,
        error="feast materialize failed: OSError: x",
        duration_seconds=2,
        mlflow_error="down",
        audit={"i": "a1"},
    )
    job = JobObservation("run-materialize", "failed", "feast materialize failed: OSError: x\nmore", result)
    wire = _wire(decide_materialization(_observe(job=job, status=_running())))
    assert (wire["phase"], wire["reason"]) == ("Failed", "MaterializationFailed")
    assert wire["message"] == "feast materialize failed: OSError: x"
    assert wire["pendingAudit"] == [{"i": "a1"}]


def test_invalid_spec_fails() -> None:
    wire = _wire(decide_materialization(_observe(spec=None, invalid="spec.mode: bad")))
    assert (wire["phase"], wire["message"]) == ("Failed", "spec.mode: bad")


def test_a_deadline_is_reported_as_such() -> None:
    job = JobObservation(
        "run-materialize", "failed", "deadline exceeded: Job was active longer", None, None, None, "DeadlineExceeded"
    )
    wire = _wire(decide_materialization(_observe(job=job, status=_running())))
    assert (wire["reason"], wire["message"]) == ("DeadlineExceeded", "deadline exceeded: Job was active longer")


def test_a_file_registry_takes_one_run_at_a_time_whatever_the_views() -> None:
    other_views = Peer("older", "2026-11-26T10:00:00Z", frozenset({"c"}), "Running")
    assert decide_materialization(_observe(peers=[other_views])).create_job
    waiting = decide_materialization(_observe(peers=[other_views], one_at_a_time=True))
    assert not waiting.create_job
    assert _wire(waiting)["waitingFor"] == (
        "MaterializationJob older (the project's file registry takes one run at a time)"
    )


def test_waiting_for_is_cleared_once_the_run_starts() -> None:
    older = Peer("older", "2026-11-26T10:00:00Z", frozenset({"b"}), "Running")
    waiting = decide_materialization(_observe(peers=[older]))
    assert _wire(waiting)["waitingFor"] and _wire(waiting)["reason"] == "WaitingForRun"
    started = decide_materialization(_observe(status=waiting.status, peers=[]))
    assert started.create_job
    assert "waitingFor" not in _wire(started) and _wire(started)["reason"] == "JobCreated"
    stalled = next(c for c in started.status.conditions if c.type == "Stalled")
    assert stalled.message == ""


def test_a_stuck_pod_that_starts_clears_its_wait() -> None:
    stuck = decide_materialization(
        _observe(job=JobObservation("run-materialize", "stuck", "ErrImagePull: x"), status=_running())
    )
    assert _wire(stuck)["waitingFor"].startswith("Job run-materialize cannot start")
    running = decide_materialization(_observe(job=JobObservation("run-materialize", "running"), status=stuck.status))
    assert "waitingFor" not in _wire(running)
    assert (_wire(running)["reason"], _wire(running)["message"]) == ("Running", "Job run-materialize is materializing")


def _project_with_odfv(materialized: list[str] | None) -> dict[str, Any]:
    project = _project(views=("a", "b", "odfv"))
    project["status"]["materializedFeatureViews"] = materialized
    project["status"]["unmaterializableFeatureViews"] = [
        {"name": "odfv", "reason": "OnDemandFeatureView odfv is not configured for write_to_online_store."}
    ]
    return project


def test_all_views_means_what_feast_materialize_takes() -> None:
    decision = decide_materialization(_observe(project=_project_with_odfv(["a", "b"])))
    assert decision.create_job and decision.feature_views == ["a", "b"]
    assert _wire(decision)["featureViews"] == ["a", "b"]
    # A project applied before the runner reported it: every view (the lock is wider, Feast still picks).
    unknown_yet = decide_materialization(_observe(project=_project_with_odfv(None)))
    assert unknown_yet.feature_views == ["a", "b", "odfv"]


def test_a_named_view_feast_refuses_fails_with_its_reason() -> None:
    decision = decide_materialization(
        _observe(spec=_spec(featureViews=["a", "odfv"]), project=_project_with_odfv(["a", "b"]))
    )
    assert not decision.create_job
    wire = _wire(decision)
    assert (wire["phase"], wire["reason"]) == ("Failed", "FeatureViewNotMaterializable")
    assert wire["message"] == (
        "Feast cannot materialize odfv (OnDemandFeatureView odfv is not configured for write_to_online_store.)"
    )


def test_a_run_without_its_repo_says_it_materialized_from_the_registry() -> None:
    result = RunnerResult(
        operation="materialize",
        ok=True,
        duration_seconds=3,
        repo_unavailable="git fetch of c0ffee from file:///srv/r.git failed: does not appear to be a git repository",
    )
    job = JobObservation("run-materialize", "succeeded", "", result, "2026-11-26T12:01:00Z")
    wire = _wire(decide_materialization(_observe(job=job, status=_running())))
    assert (wire["phase"], wire["reason"]) == ("Succeeded", "Succeeded")
    assert wire["message"].startswith("materialized from the registry alone (git fetch of c0ffee")


def test_with_a_file_registry_a_run_waits_for_a_running_apply() -> None:
    decision = decide_materialization(_observe(apply_running="drivers-apply-0123456789", one_at_a_time=True))
    assert not decision.create_job
    wire = _wire(decision)
    assert (wire["reason"], wire["waitingFor"]) == (
        "WaitingForApply",
        "apply Job drivers-apply-0123456789 (the project's file registry takes one writer at a time)",
    )


def test_runs_past_the_waiting_cap_queue_with_a_clear_reason() -> None:
    older = [Peer(f"older-{n}", f"2026-11-26T10:0{n}:00Z", frozenset({"b"}), "Pending") for n in range(3)]
    queued = decide_materialization(_observe(peers=older, max_waiting=3))
    assert not queued.create_job
    assert (_wire(queued)["reason"], _wire(queued)["waitingFor"]) == (
        "QueueFull",
        "3 earlier runs of FeatureStoreProject drivers wait to start (at most 3 are considered at a time)",
    )
    # Below the cap it waits for the run it conflicts with, as before.
    assert _wire(decide_materialization(_observe(peers=older, max_waiting=4)))["reason"] == "WaitingForRun"
    # A run that nothing holds up starts, however many earlier runs of other views wait.
    others = [Peer(f"older-{n}", f"2026-11-26T10:0{n}:00Z", frozenset({"c"}), "") for n in range(3)]
    assert decide_materialization(_observe(spec=_spec(featureViews=["a"]), peers=others, max_waiting=3)).create_job


def test_a_watch_event_calls_for_a_pass_on_first_sight_of_an_unfinished_run_or_one_without_the_finalizer() -> None:
    def run(phase: str | None = None, deleting: bool = False, finalized: bool = True) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": "r", "finalizers": ["f"] if finalized else []}
        if deleting:
            meta["deletionTimestamp"] = "2026-11-02T00:00:00Z"
        return {"metadata": meta, "status": {"phase": phase} if phase else {}}

    def passes(event_type: str | None, body: dict[str, Any], known: bool) -> bool:
        return pass_on_event(event_type, body, known, finalizer="f")

    # Just created: its first pass puts the finalizer on first.
    assert passes("ADDED", run(finalized=False), known=False)
    # A restart's listing (no event type) of an unfinished run not seen before, finalizer or not.
    assert passes(None, run("Running"), known=False)
    assert passes(None, run("Pending"), known=False)
    assert passes(None, run(finalized=False), known=False)
    # A known unfinished run whose finalizer was taken off (by hand): a pass puts it back.
    assert passes("MODIFIED", run("Running", finalized=False), known=True)
    # The pass's own finalizer patch and status writes, a re-listing of a known run, finished runs,
    # deletions: no pass.
    assert not passes("MODIFIED", run(), known=True)
    assert not passes("MODIFIED", run("Running"), known=True)
    assert not passes(None, run("Running"), known=True)
    assert not passes(None, run("Succeeded"), known=False)
    assert not passes("MODIFIED", run("Failed", finalized=False), known=False)
    assert not passes("DELETED", run(), known=False)
    assert not passes("MODIFIED", run(deleting=True), known=False)


def test_the_finalizer_is_on_while_a_run_is_unsettled_and_comes_off_with_the_settled_label() -> None:
    def run(phase: str | None, held: bool, pending: bool = False, **meta: Any) -> dict[str, Any]:
        status: dict[str, Any] = {"phase": phase} if phase else {}
        if pending:
            status["pendingAudit"] = [{"i": "a"}]
        return {"metadata": {"name": "r", "finalizers": ["other", *(["f"] if held else [])], **meta}, "status": status}

    def step(body: dict[str, Any]) -> str | None:
        return finalizer_step(body, "f")

    deleting: dict[str, Any] = {"deletionTimestamp": "2026-11-27T00:00:00Z"}
    # From its start (no phase yet) until its record is delivered.
    assert step(run(None, held=False)) == HOLD
    assert step(run("Running", held=False)) == HOLD
    assert step(run("Failed", held=False, pending=True)) == HOLD
    assert step(run(None, held=True)) is None
    assert step(run("Succeeded", held=True, pending=True)) is None
    # Done: off, with the label, in one step; history from before the label gets the label alone.
    assert step(run("Succeeded", held=True)) == SETTLE
    assert step(run("Failed", held=False)) == LABEL
    assert step(run("Failed", held=False, labels={"featurelineage.io/settled": "true"})) is None
    # A schedule's run: its finalizer comes off, but it is never labelled.
    scheduled: dict[str, Any] = {"annotations": {"featurelineage.io/scheduled-time": "2026-11-27T03:00:00Z"}}
    assert step(run("Succeeded", held=True, **scheduled)) == SETTLE
    assert step(run("Succeeded", held=False, **scheduled)) is None
    # Being deleted: released (once its record is delivered or abandoned: the caller's wait) if held.
    assert step(run("Running", held=True, **deleting)) == RELEASE
    assert step(run("Succeeded", held=True, pending=True, **deleting)) == RELEASE
    assert step(run("Succeeded", held=False, pending=True, **deleting)) is None
    assert unsettled(run("Running", held=True)) and unsettled(run("Failed", held=True, pending=True))
    assert not unsettled(run("Failed", held=True))


def _finished_run(phase: str | None = "Succeeded", **meta: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase} if phase else {}
    return {"metadata": {"name": "r", **meta}, "status": status}


def test_a_run_settles_once_finished_with_its_record_delivered_and_its_finalizer_gone() -> None:
    assert settled(_finished_run("Succeeded"), "f")
    assert settled(_finished_run("Failed", finalizers=["someone-elses"]), "f")
    # Not before: unfinished, a record still pending, the operator's finalizer still on, being deleted.
    assert not settled(_finished_run(None), "f")
    assert not settled(_finished_run("Running"), "f")
    assert not settled(_finished_run("Pending"), "f")
    pending = _finished_run("Succeeded")
    pending["status"]["pendingAudit"] = [{"i": "a"}]
    assert not settled(pending, "f")
    assert not settled(_finished_run("Succeeded", finalizers=["f"]), "f")
    assert not settled(_finished_run("Succeeded", deletionTimestamp="2026-11-27T00:00:00Z"), "f")
    # A schedule's run: the schedule counts and prunes it, so it stays in sight.
    scheduled = _finished_run("Succeeded", annotations={"featurelineage.io/scheduled-time": "2026-11-27T03:00:00Z"})
    assert not settled(scheduled, "f")


def test_a_settled_run_without_the_label_gets_it_from_any_event_but_its_deletion() -> None:
    assert needs_settled_label("MODIFIED", _finished_run("Succeeded"), "f")
    assert needs_settled_label(None, _finished_run("Failed"), "f")  # a listing
    assert needs_settled_label("ADDED", _finished_run("Succeeded"), "f")  # its label was removed by hand
    assert not needs_settled_label("DELETED", _finished_run("Succeeded"), "f")  # gone, or left the watch
    labelled = _finished_run("Succeeded", labels={"featurelineage.io/settled": "true"})
    assert not needs_settled_label("MODIFIED", labelled, "f")
    assert not needs_settled_label("MODIFIED", _finished_run("Succeeded", finalizers=["f"]), "f")


# -- which verdicts a copy of the project a few milliseconds old may decide -------------------------


def _verdict_on_copy(obs: MaterializationObservation) -> tuple[str, bool]:
    decision = decide_materialization(obs)
    return ("JobCreated" if decision.create_job else str(decision.status.reason)), holds_on_copy(obs, decision)


def test_starting_or_waiting_for_a_peer_holds_on_a_copy_of_the_project() -> None:
    older = Peer("older", "2026-11-26T10:00:00Z", frozenset({"b"}), "Pending")
    assert _verdict_on_copy(_observe()) == ("JobCreated", True)
    assert _verdict_on_copy(_observe(peers=[older])) == ("WaitingForRun", True)
    assert _verdict_on_copy(_observe(peers=[older], max_waiting=1)) == ("QueueFull", True)


def test_a_verdict_on_the_projects_state_is_made_again_on_a_fresh_read() -> None:
    # Each would be wrong on a copy older than a change that had already happened: the project just
    # got Ready, the view was just applied, the snapshot just made, the apply just finished.
    assert _verdict_on_copy(_observe(project=_project(ready=False))) == ("ProjectNotReady", False)
    assert _verdict_on_copy(_observe(spec=_spec(featureViews=["new"]))) == ("UnknownFeatureView", False)
    assert _verdict_on_copy(_observe(project=_project(views=()))) == ("NoFeatureViews", False)
    assert _verdict_on_copy(_observe(revision_problem="snapshot gone")) == ("RevisionUnavailable", False)
    waiting_for_apply = _observe(apply_running="drivers-apply-1", one_at_a_time=True)
    assert _verdict_on_copy(waiting_for_apply) == ("WaitingForApply", False)
    refused = _observe(spec=_spec(featureViews=["odfv"]), project=_project_with_odfv(None))
    assert _verdict_on_copy(refused) == ("FeatureViewNotMaterializable", False)


def test_a_run_with_a_job_or_an_invalid_spec_is_decided_without_the_projects_status() -> None:
    running = JobObservation("run-materialize", "running", "", None, None, {}, None)
    assert _verdict_on_copy(_observe(job=running, project=_project(ready=False))) == ("Running", True)
    assert _verdict_on_copy(_observe(spec=None, invalid="bad")) == ("InvalidSpec", True)
