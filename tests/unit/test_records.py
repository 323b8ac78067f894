"""What ran is what is recorded: content addresses, snapshots, revision links, outcome records, rows."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from feast_lineage.api import (
    FeatureStoreProject,
    FeatureStoreProjectStatus,
    LastApply,
    MaterializationJobSpec,
    MaterializationJobStatus,
    MlflowRunRef,
)
from feast_lineage.audit import tags
from feast_lineage.contract import RunnerResult, repo_digest
from feast_lineage.controller.outcome_audit import outcome_record
from feast_lineage.domain import labels
from feast_lineage.domain.apply_plan import configmap_identity
from feast_lineage.domain.materialization_state import (
    MaterializationObservation,
    decide_materialization,
    zero_row_views,
)
from feast_lineage.domain.project_state import ProjectObservation, decide_project
from feast_lineage.domain.repo_snapshot import (
    in_use,
    mounted_config_maps,
    render_snapshot,
    snapshot_name,
    unreferenced,
)
from feast_lineage.domain.runner_job import RunnerJobRequest, render_runner_job
from feast_lineage.domain.runner_outcome import IMAGE_ID_UNKNOWN, JobObservation, JobState, observe_job
from feast_lineage.domain.unlogged_outcome import run_needs_record
from feast_lineage.runner.audit_records import OperationFacts, build_record
from feast_lineage.runner.errors import BadInput
from feast_lineage.runner.fetch import check_digest, copy_configmap_files

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PARQUET = bytes(range(256))
DATA = {"features.py": "x = 1\n"}
BINARY = {"data.parquet": base64.b64encode(PARQUET).decode()}


def _project() -> FeatureStoreProject:
    return FeatureStoreProject.model_validate(
        {
            "metadata": {"name": "drivers", "namespace": "ml", "uid": "u-1"},
            "spec": {
                "project": "driver_stats",
                "repo": {"configMap": {"name": "repo"}},
                "featureStore": {"registry": {"path": "/data/registry.db"}},
                "mlflow": {"trackingUri": "http://mlflow:5000"},
            },
        }
    )


# -- one content address, computed by both sides ---------------------------------------------------


def test_operator_and_runner_address_the_same_content_the_same_way(tmp_path: Path) -> None:
    identity = configmap_identity("repo", DATA, BINARY)
    assert identity.fingerprint == repo_digest({"features.py": b"x = 1\n", "data.parquet": PARQUET})
    assert identity.revision == f"configmap/repo@{identity.fingerprint[:12]}"
    # The runner sees the ConfigMap as mounted files (Kubernetes' hidden ..data entries are skipped).
    mount = tmp_path / "mount"
    mount.mkdir()
    (mount / "features.py").write_bytes(b"x = 1\n")
    (mount / "data.parquet").write_bytes(PARQUET)
    (mount / "..data").mkdir()
    repo = tmp_path / "repo"
    names = copy_configmap_files(mount, repo)
    check_digest(repo, names, identity.fingerprint)
    (repo / "features.py").write_bytes(b"x = 2\n")
    with pytest.raises(BadInput, match="refusing to run other content"):
        check_digest(repo, names, identity.fingerprint)


def test_a_key_moved_between_files_is_other_content() -> None:
    assert repo_digest({"a": b"bc"}) != repo_digest({"ab": b"c"})
    assert repo_digest({"a": b"", "b": b"x"}) != repo_digest({"a": b"x", "b": b""})


# -- snapshots -------------------------------------------------------------------------------------


def test_snapshot_is_immutable_owned_and_named_by_its_content() -> None:
    identity = configmap_identity("repo", DATA, BINARY)
    owner = labels.owner_reference("FeatureStoreProject", "drivers", "u-1")
    snapshot = render_snapshot("drivers", "ml", identity, owner)
    assert snapshot["immutable"] is True and snapshot["metadata"]["ownerReferences"] == [owner]
    assert snapshot["metadata"]["name"] == snapshot_name("drivers", identity.fingerprint)
    assert snapshot["data"] == DATA and snapshot["binaryData"] == BINARY
    assert snapshot["metadata"]["annotations"][labels.ANNOTATION_REVISION] == identity.revision
    other = configmap_identity("repo", {"features.py": "x = 2\n"}, BINARY)
    assert snapshot_name("drivers", other.fingerprint) != snapshot["metadata"]["name"]


def test_runner_jobs_mount_the_snapshot_and_name_its_digest() -> None:
    identity = configmap_identity("repo", DATA, BINARY)
    job = render_runner_job(
        _project(),
        RunnerJobRequest(
            operation="materialize",
            job_name="run-materialize",
            runner_image="runner:1",
            runner_config_map="drivers-runner-config",
            repo=identity,
            provenance={},
            audit_id="a-1",
            labels={},
            annotations={},
            owner=labels.owner_reference("MaterializationJob", "run", "u-2"),
            backoff_limit=0,
            repo_snapshot="drivers-repo-0123",
        ),
    )
    assert mounted_config_maps(job) == {"drivers-runner-config", "drivers-repo-0123"}
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["FEAST_LINEAGE_REPO_DIGEST"] == identity.fingerprint


def _mounting(operation: str, config_map: str, finished: bool) -> dict[str, Any]:
    conditions = [{"type": "Complete", "status": "True"}] if finished else []
    return {
        "metadata": {"labels": {labels.LABEL_OPERATION: operation}},
        "spec": {"template": {"spec": {"volumes": [{"name": "repo", "configMap": {"name": config_map}}]}}},
        "status": {"conditions": conditions},
    }


def test_snapshots_are_kept_while_a_kept_apply_or_a_running_materialization_mounts_them() -> None:
    jobs = [
        _mounting("apply", "s-old-apply", finished=True),
        _mounting("materialize", "s-running", finished=False),
        _mounting("materialize", "s-done", finished=True),
    ]
    assert in_use(jobs) == {"s-old-apply", "s-running"}
    existing = ["s-done", "s-old-apply", "s-running", "s-applied", "s-current"]
    assert unreferenced(existing, [*in_use(jobs), "s-applied", None, "s-current"]) == ["s-done"]


# -- the last successful apply ---------------------------------------------------------------------


def _apply_job(state: JobState, name: str, digest: str) -> JobObservation:
    annotations = {
        labels.ANNOTATION_APPLY_HASH: "h1",
        labels.ANNOTATION_AUDIT_ID: f"audit-{name}",
        labels.ANNOTATION_REPO_DIGEST: digest,
        labels.ANNOTATION_SNAPSHOT: f"drivers-repo-{digest}",
    }
    result = RunnerResult(operation="apply", ok=state == "succeeded", duration_seconds=1)
    return JobObservation(
        name, state, "", result, "2026-11-26T12:00:00Z", annotations, None, image="runner:1", image_id=""
    )


def test_a_failed_apply_keeps_the_revision_runs_materialize_against() -> None:
    repo = configmap_identity("repo", DATA, BINARY)
    good = decide_project(
        ProjectObservation(
            1, FeatureStoreProjectStatus(), None, repo, "h1", "job-1", _apply_job("succeeded", "job-1", "d1")
        ),
        NOW,
    ).status
    assert good.last_successful_apply is not None
    assert good.last_successful_apply.snapshot == "drivers-repo-d1" and good.last_successful_apply.repo_digest == "d1"
    assert good.last_successful_apply.image == "runner:1"
    bad = decide_project(
        ProjectObservation(1, good, None, repo, "h2", "job-2", _apply_job("failed", "job-2", "d2")), NOW
    ).status
    assert bad.last_apply is not None and bad.last_apply.outcome == "Failed"
    assert bad.last_successful_apply == good.last_successful_apply


def test_image_id_is_recorded_or_said_to_be_unknown() -> None:
    job = {"metadata": {"name": "j"}, "status": {"conditions": [{"type": "Complete", "status": "True"}]}}

    def pod(image_id: str | None) -> dict[str, Any]:
        status: dict[str, Any] = {"image": "runner:1", "state": {"terminated": {"exitCode": 0}}}
        if image_id is not None:
            status["imageID"] = image_id
        return {"metadata": {"creationTimestamp": "t"}, "status": {"containerStatuses": [status]}}

    digest = "docker.io/runner@sha256:" + "a" * 64
    assert observe_job(job, [pod(digest)]).image_id == digest
    assert observe_job(job, [pod(None)]).image_id == IMAGE_ID_UNKNOWN
    assert observe_job(job, []).image_id is None


# -- a run is tied to the apply it runs against ------------------------------------------------------


def _ready_project(applied: LastApply | None) -> dict[str, Any]:
    status = FeatureStoreProjectStatus(
        feature_views=["a"],
        last_successful_apply=applied,
        last_apply=LastApply(revision="configmap/repo@later", outcome="Failed"),
    ).to_k8s()
    status["conditions"] = [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Applied",
            "message": "",
            "lastTransitionTime": "2026-11-26T10:00:00Z",
        }
    ]
    return {"status": status}


def _observe(**fields: Any) -> MaterializationObservation:
    applied = LastApply(
        revision="configmap/repo@abc",
        job_name="drivers-apply-1",
        audit_id="apply-audit",
        mlflow=MlflowRunRef(experiment="e", run_id="apply-run"),
        snapshot="drivers-repo-abc",
    )
    base: dict[str, Any] = {
        "name": "run",
        "created": "2026-11-26T11:00:00Z",
        "generation": 1,
        "status": MaterializationJobStatus(),
        "now": NOW,
        "spec": MaterializationJobSpec.model_validate(
            {
                "projectRef": {"name": "drivers"},
                "mode": "Range",
                "startTime": "2026-11-02T00:00:00Z",
                "endTime": "2026-11-03T00:00:00Z",
            }
        ),
        "project": _ready_project(applied),
    }
    return MaterializationObservation(**{**base, **fields})


def test_a_run_records_the_last_successful_apply_not_the_last_attempt() -> None:
    decision = decide_materialization(_observe())
    assert decision.create_job
    status = decision.status
    assert (status.revision, status.apply_job, status.apply_audit_id, status.apply_run_id) == (
        "configmap/repo@abc",
        "drivers-apply-1",
        "apply-audit",
        "apply-run",
    )


def test_a_revision_that_cannot_be_mounted_fails_the_run() -> None:
    decision = decide_materialization(_observe(revision_problem="snapshot gone"))
    assert not decision.create_job and decision.status.phase == "Failed"
    assert decision.status.reason == "RevisionUnavailable"


def test_rows_and_image_of_a_finished_run() -> None:
    result = RunnerResult(operation="materialize", ok=True, duration_seconds=3, rows_written={"a": 0, "b": 12})
    job = JobObservation(
        "run-materialize", "succeeded", "", result, "2026-11-26T12:01:00Z", {}, None, image="r:1", image_id="sha"
    )
    status = decide_materialization(_observe(job=job)).status
    assert [(v.feature_view, v.rows) for v in status.rows_written or []] == [("a", 0), ("b", 12)]
    assert zero_row_views(status) == ["a"] and (status.image, status.image_id) == ("r:1", "sha")


# -- every outcome has a record ----------------------------------------------------------------------


def test_only_failures_no_runner_recorded_need_an_operator_record() -> None:
    failed = MaterializationJobStatus(phase="Failed", reason="UnknownFeatureView", message="no view x")
    assert run_needs_record(failed, None)
    killed = JobObservation("j", "failed", "deadline exceeded", None, None, {}, "DeadlineExceeded")
    assert run_needs_record(failed, killed)
    logged = RunnerResult(operation="materialize", ok=False, duration_seconds=1, audit={"i": "a"})
    assert not run_needs_record(failed, JobObservation("j", "failed", "x", logged))
    assert not run_needs_record(MaterializationJobStatus(phase="Succeeded"), None)
    assert not run_needs_record(failed.model_copy(update={"pending_audit": [{"i": "a"}]}), None)


def test_operator_record_is_a_failed_run_with_reason_message_and_links() -> None:
    status = MaterializationJobStatus(
        phase="Failed", reason="InvalidWindow", message="the window ends in the future", completion_time=NOW
    )
    spec = MaterializationJobSpec.model_validate({"projectRef": {"name": "drivers"}, "mode": "Incremental"})
    record = outcome_record(
        audit_id="run-audit",
        project=_project(),
        spec=spec,
        status=status,
        provenance={"k8s.namespace": "ml", "k8s.name": "run", "featurelineage.revision": "configmap/repo@abc"},
        created=NOW,
        now=NOW,
    )
    assert record.status == "FAILED" and record.experiment == "driver_stats-feast-ops"
    assert record.run_name == "materialize_incremental_driver_stats@ml/run"
    assert record.tags[tags.REASON] == "InvalidWindow" and record.tags[tags.ERROR] == "the window ends in the future"
    assert record.tags["featurelineage.revision"] == "configmap/repo@abc"


def test_runner_records_name_namespace_resource_reason_and_rows() -> None:
    facts = OperationFacts(operation="materialize", project="driver_stats", rows_written={"a": 0, "b": 12})
    record = build_record(
        facts,
        audit_id="a-1",
        experiment=None,
        provenance={"k8s.namespace": "team-a", "k8s.name": "backfill"},
        start_ms=0,
        end_ms=1000,
    )
    assert record.run_name == "materialize_driver_stats@team-a/backfill"
    assert record.tags[tags.REASON] == "Succeeded"
    assert record.metrics["featurelineage.rows_written"] == 12
    assert (
        record.metrics["featurelineage.rows_written.a"] == 0 and record.metrics["featurelineage.rows_written.b"] == 12
    )
