"""Lineage answers: reading records, merging sources, assembling and printing (no cluster, no server)."""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from feast_lineage.cli import build_parser
from feast_lineage.lineage import assemble, command, queries, records
from feast_lineage.lineage.answers import (
    ApplyEntry,
    FeatureUsage,
    MaterializationEntry,
    ProjectHistory,
    TrainingLineage,
)
from feast_lineage.lineage.render import render, table
from feast_lineage.lineage.sources import SourceUnavailable, quote
from tests.unit.lineage_fakes import (
    BASE_URL,
    NS,
    FakeCluster,
    FakeMlflow,
    apply_job,
    apply_run,
    materialization_obj,
    materialize_run,
    project_obj,
    rest_run,
    rest_version,
    training_tags,
)

WEEK = ("2026-11-02T00:00:00Z", "2026-11-09T00:00:00Z")
BOTH = "driver_daily_trips,driver_hourly_stats"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def story_runs() -> list[dict[str, Any]]:
    """A project applied, backfilled, trained on, then changed; and a namesake in another namespace."""
    return [
        apply_run(
            "apply1",
            "a1-audit",
            "2026-11-27T10:00:00Z",
            "2026-11-27T10:00:05Z",
            **{
                "feast.feature_views_created": BOTH,
                "feast.feature_services_created": "driver_activity_v1",
                "feast.entities_created": "driver",
                "feast.feature_views_changed": BOTH,
            },
        ),
        materialize_run("mat1", "m1-audit", "2026-11-27T10:05:00Z", "2026-11-27T10:05:10Z", BOTH, WEEK),
        materialize_run(
            "mat3",
            "m3-audit",
            "2026-11-27T10:30:00Z",
            "2026-11-27T10:30:10Z",
            "driver_hourly_stats",
            ("2026-11-09T00:00:00Z", "2026-11-10T00:00:00Z"),
            mj="broken",
            outcome="failed",
        ),
        rest_run("train1", "2", training_tags(), "2026-11-27T11:00:00Z", "2026-11-27T11:01:00Z", name="training"),
        apply_run(
            "apply2",
            "a2-audit",
            "2026-11-27T11:30:00Z",
            "2026-11-27T11:30:05Z",
            **{"feast.feature_views_updated": "driver_daily_trips"},
        ),
        materialize_run(
            "mat2",
            "m2-audit",
            "2026-11-27T12:00:00Z",
            "2026-11-27T12:00:10Z",
            "driver_hourly_stats",
            ("2026-11-09T00:00:00Z", "2026-11-11T00:00:00Z"),
            mj="later",
        ),
        # Another namespace with the same project and feature service names.
        apply_run("applyB", "b1-audit", "2026-11-27T09:00:00Z", "2026-11-27T09:00:05Z", namespace="team-b"),
        rest_run("trainB", "2", training_tags(namespace="team-b"), "2026-11-27T11:10:00Z", "2026-11-27T11:11:00Z"),
        # A view whose name contains the asked one: MLflow's LIKE finds it, the exact test must not.
        rest_run(
            "trainV2",
            "2",
            training_tags(**{"feast.feature_views": "driver_hourly_stats_v2", "feast.feature_service": "other"}),
            "2026-11-27T11:20:00Z",
            "2026-11-27T11:21:00Z",
        ),
    ]


def story_mlflow(**kwargs: Any) -> FakeMlflow:
    return FakeMlflow(
        runs=story_runs(),
        versions=[
            {
                **rest_version(
                    "driver-activity",
                    "1",
                    "train1",
                    "2026-11-27T11:01:30Z",
                    **{"feast.feature_service": "driver_activity_v1"},
                ),
                "aliases": ["champion"],
            },
            rest_version(
                "other-model", "1", "trainB", "2026-11-27T11:12:00Z", **{"feast.feature_service": "driver_activity_v1"}
            ),
            rest_version("v2-model", "3", "trainV2", "2026-11-27T11:22:00Z"),
        ],
        aliases={("driver-activity", "champion"): "1"},
        artifacts={"train1": ["feast_features.json", "entity_df.parquet"]},
        **kwargs,
    )


LAST_APPLY = {
    "auditId": "a2-audit",
    "revision": "configmap/repo@bbbb",
    "time": "2026-11-27T11:30:05Z",
    "jobName": "drivers-apply-a2",
    "trigger": "repo content changed",
    "outcome": "Succeeded",
    "changes": {"featureViews": ["~driver_daily_trips"], "featureServices": [], "entities": []},
    "mlflow": {
        "experiment": "driver_stats-feast-ops",
        "runId": "apply2",
        "runUrl": f"{BASE_URL}/#/experiments/1/runs/apply2",
    },
}


def story_cluster(**kwargs: Any) -> FakeCluster:
    return FakeCluster(
        [
            project_obj(last_apply=LAST_APPLY),
            apply_job(
                "drivers-apply-a2", "a2-audit", "configmap/repo@bbbb", "2026-11-27T11:29:58Z", "2026-11-27T11:30:06Z"
            ),
            materialization_obj(
                "backfill",
                "m1-audit",
                "2026-11-27T10:05:11Z",
                ["driver_daily_trips", "driver_hourly_stats"],
                WEEK,
                "mat1",
            ),
            {
                "kind": "Pod",
                "metadata": {"name": "train-abcde", "namespace": NS, "uid": "uid-1"},
                "status": {"phase": "Succeeded"},
            },
            {
                "kind": "Job",
                "metadata": {"name": "train", "namespace": NS},
                "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]},
            },
        ],
        **kwargs,
    )


# -- records ---------------------------------------------------------------------------------------


def test_runs_and_model_versions_are_read_from_the_rest_shapes() -> None:
    run = records.parse_run(rest_run("r1", "2", {"k8s.pod": "p"}, "2026-11-27T11:00:00Z", "2026-11-27T11:01:00Z"))
    assert (run.run_id, run.experiment_id, run.status, run.tag("k8s.pod")) == ("r1", "2", "FINISHED", "p")
    assert run.start == at("2026-11-27T11:00:00Z") and run.end == at("2026-11-27T11:01:00Z")
    assert run.tag("missing") is None
    version = records.parse_model_version(
        {**rest_version("m", "4", "r1", "2026-11-27T11:02:00Z", **{"feast.feature_service": "fs"}), "aliases": ["prod"]}
    )
    ref = version.ref()
    assert (ref.uri, ref.feature_service, ref.aliases, ref.run_id) == ("models:/m/4", "fs", ["prod"], "r1")


def test_capped_name_lists_lose_their_marker() -> None:
    assert records.split_names("a,b,...(+3)") == ["a", "b"]
    assert records.split_names("") == [] and records.split_names(None) == []


def test_changes_come_from_the_runners_transition_tags_only() -> None:
    ours = records.changes_from_tags(
        {
            "featurelineage.audit_id": "x",
            "feast.feature_views_created": "b",
            "feast.feature_views_updated": "a",
            "feast.feature_views_deleted": "c",
            "feast.entities_created": "driver",
        }
    )
    assert ours is not None
    assert ours.feature_views == ["~a", "+b", "-c"] and ours.entities == ["+driver"] and ours.feature_services == []
    assert records.changed_views(ours) == {"a", "b"}
    # Feast's own apply run says every materialized view changed: not believed.
    assert records.changes_from_tags({"feast.feature_views_changed": "a,b"}) is None


def test_the_server_of_a_recorded_run_url() -> None:
    assert records.tracking_base_of("http://mlflow:5000/#/experiments/1/runs/x") == "http://mlflow:5000"
    assert records.tracking_base_of("https://h/mlflow/#/experiments/1/runs/x") == "https://h/mlflow"
    assert records.tracking_base_of("file:///tmp/#/x") is None and records.tracking_base_of(None) is None


def test_job_outcomes() -> None:
    running = apply_job("j", "a", "r", "2026-11-27T11:00:00Z", None)
    assert records.apply_from_job(running).outcome == "running"
    assert records.job_status(running) == "Running"
    done = apply_job("j", "a", "r", "2026-11-27T11:00:00Z", "2026-11-27T11:00:09Z")
    entry = records.apply_from_job(done)
    assert (entry.outcome, entry.time, entry.revision, entry.generation) == (
        "succeeded",
        at("2026-11-27T11:00:09Z"),
        "r",
        2,
    )
    failed = {"metadata": {"name": "j"}, "status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]}}
    assert records.job_status(failed) == "Failed"


# -- merging and history ---------------------------------------------------------------------------


def test_one_entry_per_apply_with_what_each_source_knows() -> None:
    applies, materializations, left_out = assemble.project_operations(
        NS,
        "drivers",
        project_obj=project_obj(last_apply=LAST_APPLY),
        apply_jobs=[
            apply_job(
                "drivers-apply-a2", "a2-audit", "configmap/repo@bbbb", "2026-11-27T11:29:58Z", "2026-11-27T11:30:06Z"
            )
        ],
        materialization_objs=[
            materialization_obj("backfill", "m1-audit", "2026-11-27T10:05:11Z", ["driver_daily_trips"], WEEK)
        ],
        ops_runs=[records.parse_run(raw) for raw in story_runs()],
        base_url=BASE_URL,
    )
    assert [a.audit_id for a in applies] == ["a2-audit", "a1-audit"]  # newest first; team-b's left out
    assert left_out == 0
    latest = applies[0]
    assert latest.sources == ["status", "mlflow", "job"]
    assert latest.revision == "configmap/repo@bbbb"  # from status: a ConfigMap revision is no run tag
    assert latest.trigger == "repo content changed" and latest.job_name == "drivers-apply-a2"
    assert latest.start_time == at("2026-11-27T11:30:00Z")  # from the run
    assert latest.changes is not None and latest.changes.feature_views == ["~driver_daily_trips"]
    first = applies[1]
    assert first.sources == ["mlflow"] and first.revision is None
    assert first.run is not None and first.run.url == f"{BASE_URL}/#/experiments/1/runs/apply1"
    assert [m.audit_id for m in materializations] == ["m2-audit", "m3-audit", "m1-audit"]
    backfill = materializations[-1]
    assert backfill.sources == ["materializationJob", "mlflow"]
    assert backfill.trigger == "gitops"  # the object's provenance wins over the run's tag
    assert backfill.run is not None and backfill.run.run_id == "mat1"
    assert (backfill.window_start, backfill.window_end) == (at(WEEK[0]), at(WEEK[1]))
    assert materializations[1].outcome == "failed"


def test_a_record_still_pending_in_status_is_part_of_the_history() -> None:
    pending = {
        "i": "a3-audit",
        "x": "driver_stats-feast-ops",
        "n": "apply_driver_stats",
        "s": "FAILED",
        "t0": 1795780000000,
        "t1": 1795780005000,
        "tg": {"feast.operation": "apply", "featurelineage.error": "boom", "featurelineage.outcome": "failed"},
    }
    applies, _, _ = assemble.project_operations(
        NS,
        "drivers",
        project_obj=project_obj(pending=[pending]),
        apply_jobs=[],
        materialization_objs=[],
        ops_runs=[],
        base_url=BASE_URL,
    )
    (entry,) = applies
    assert (entry.audit_id, entry.outcome, entry.error, entry.run) == ("a3-audit", "failed", "boom", None)
    assert entry.sources == ["pendingAudit"]
    history = assemble.assemble_history(assemble.project_ref(NS, "drivers", None, True), applies, [])
    assert "pending delivery" in render(history, "table")


def test_history_is_newest_first_and_limited() -> None:
    result = queries.project_history(NS, "drivers", story_mlflow(), story_cluster(), limit=3)
    history = result.answer
    assert isinstance(history, ProjectHistory) and not result.incomplete
    assert [(e.operation, e.audit_id) for e in history.entries] == [
        ("materialize", "m2-audit"),
        ("apply", "a2-audit"),
        ("materialize", "m3-audit"),
    ]
    assert history.project.feast_project == "driver_stats" and history.project.in_cluster is True
    full = queries.project_history(NS, "drivers", story_mlflow(), story_cluster()).answer
    assert isinstance(full, ProjectHistory) and len(full.entries) == 5


def test_runs_of_an_earlier_project_of_the_same_name_are_left_out() -> None:
    recreated = project_obj()
    recreated["metadata"].update(uid="p-2", creationTimestamp="2026-11-27T11:00:00Z")
    runs = [
        *story_runs(),
        # After the new project's creation, but by the old project's uid.
        apply_run("apply0", "a0-audit", "2026-11-27T11:40:00Z", "2026-11-27T11:40:05Z", **{"k8s.uid": "p-1"}),
        apply_run("apply3", "a3-audit", "2026-11-27T11:50:00Z", "2026-11-27T11:50:05Z", **{"k8s.uid": "p-2"}),
    ]
    result = queries.project_history(NS, "drivers", FakeMlflow(runs=runs), FakeCluster([recreated]))
    history = result.answer
    assert isinstance(history, ProjectHistory) and not result.incomplete
    # apply1, mat1, mat3 came before the project existed; apply0 is the old project's by its uid.
    assert [e.audit_id for e in history.entries] == ["m2-audit", "a3-audit", "a2-audit"]
    assert any("4 operation run(s)" in warning and "earlier" in warning for warning in history.warnings)


def test_history_of_a_project_gone_from_the_cluster_comes_from_mlflow() -> None:
    result = queries.project_history(NS, "drivers", story_mlflow(), FakeCluster([]))
    history = result.answer
    assert isinstance(history, ProjectHistory)
    assert history.project.in_cluster is False and history.project.feast_project == "driver_stats"
    assert {e.audit_id for e in history.entries} == {"a1-audit", "a2-audit", "m1-audit", "m2-audit", "m3-audit"}
    with pytest.raises(queries.NotFound):
        queries.project_history(NS, "nothing", story_mlflow(), FakeCluster([]))


def test_history_without_mlflow_is_incomplete_not_empty() -> None:
    result = queries.project_history(NS, "drivers", story_mlflow(down=True), story_cluster())
    history = result.answer
    assert result.incomplete and isinstance(history, ProjectHistory)
    assert [e.audit_id for e in history.entries] == ["a2-audit", "m1-audit"]
    assert any("MLflow" in warning for warning in history.warnings)


# -- a model's chain -------------------------------------------------------------------------------


def test_the_chain_of_a_model_version() -> None:
    result = queries.model_lineage("driver-activity", None, "champion", story_mlflow(), story_cluster())
    answer = result.answer
    assert isinstance(answer, TrainingLineage) and not result.incomplete
    assert (
        answer.kind == "ModelLineage" and answer.model is not None and answer.model.uri == "models:/driver-activity/1"
    )
    assert answer.run.run_id == "train1" and answer.run.experiment == "driver_stats"
    assert answer.feature_service == "driver_activity_v1" and answer.feature_service_from == "model version tag"
    assert answer.features == [
        "driver_daily_trips:avg_daily_trips",
        "driver_hourly_stats:conv_rate",
        "driver_hourly_stats:acc_rate",
    ]
    assert answer.entity_df is not None and answer.entity_df.rows == 20
    assert answer.entity_df.artifact == "runs:/train1/entity_df.parquet"
    assert answer.pod is not None and (answer.pod.pod_phase, answer.pod.job_status) == ("Succeeded", "Complete")
    # The apply the pod was configured from, not the one after it.
    assert answer.apply is not None and answer.apply.audit_id == "a1-audit" and answer.apply_from == "run tag"
    assert answer.apply.revision == "configmap/repo@aaaa"  # the run's own tag
    assert answer.current_apply is not None and answer.current_apply.audit_id == "a2-audit"
    views = {view.name: view for view in answer.feature_views}
    assert views["driver_hourly_stats"].features == ["conv_rate", "acc_rate"]
    for view in views.values():
        # The update of driver_daily_trips came after training; the failed and the later runs do not count.
        assert view.last_changed_by is not None and view.last_changed_by.audit_id == "a1-audit"
        assert view.last_materialization is not None and view.last_materialization.name == "backfill"
    assert answer.registered_versions == []  # the model itself is not repeated
    text = render(answer, "table")
    for fact in ("driver-activity/1 (aliases: champion)", "train1", "APPLIED SINCE", "configmap/repo@bbbb", "backfill"):
        assert fact in text


def test_the_chain_of_a_run_names_its_registered_versions() -> None:
    answer = queries.run_lineage("train1", story_mlflow(), story_cluster()).answer
    assert isinstance(answer, TrainingLineage) and answer.kind == "RunLineage" and answer.model is None
    assert [v.uri for v in answer.registered_versions] == ["models:/driver-activity/1"]
    assert answer.feature_service_from == "run tag"


def test_without_the_apply_tag_the_apply_is_the_last_one_before_training() -> None:
    tags = training_tags()
    del tags["featurelineage.apply_run_id"]
    runs = [*story_runs(), rest_run("untagged", "2", tags, "2026-11-27T11:40:00Z", "2026-11-27T11:41:00Z")]
    answer = queries.run_lineage("untagged", FakeMlflow(runs=runs), story_cluster()).answer
    assert isinstance(answer, TrainingLineage)
    assert answer.apply is not None and answer.apply.audit_id == "a2-audit" and answer.apply_from == "history"
    assert answer.current_apply is None


def test_a_model_without_cluster_access_is_answered_with_a_warning() -> None:
    result = queries.model_lineage("driver-activity", "1", None, story_mlflow(), story_cluster(down=True))
    answer = result.answer
    assert result.incomplete and isinstance(answer, TrainingLineage)
    assert answer.apply is not None and answer.apply.run is not None and answer.apply.run.run_id == "apply1"
    assert answer.pod is not None and answer.pod.pod_phase is None
    assert answer.project is not None and answer.project.in_cluster is None
    assert sum("cluster not read" in warning for warning in answer.warnings) == 1
    text = render(answer, "table")
    assert "POD               team-a/train-abcde, container train" in text and "no longer" not in text
    gone = queries.run_lineage("train1", story_mlflow(), FakeCluster([project_obj()])).answer
    assert "team-a/train-abcde (no longer in the cluster)" in render(gone, "table")


def test_the_latest_version_is_the_highest() -> None:
    versions = [rest_version("m", number, "train1", "2026-11-27T11:02:00Z") for number in ("2", "10", "9")]
    mlflow = FakeMlflow(runs=story_runs(), versions=versions)
    answer = queries.model_lineage("m", "latest", None, mlflow, None).answer
    assert isinstance(answer, TrainingLineage) and answer.model is not None and answer.model.version == "10"
    with pytest.raises(queries.NotFound):
        queries.model_lineage("other", "latest", None, mlflow, None)


def test_unknown_model_versions_and_runs_are_not_found() -> None:
    with pytest.raises(queries.NotFound, match="driver-activity/9"):
        queries.model_lineage("driver-activity", "9", None, story_mlflow(), None)
    with pytest.raises(queries.NotFound, match="driver-activity@prod"):
        queries.model_lineage("driver-activity", None, "prod", story_mlflow(), None)
    with pytest.raises(queries.NotFound):
        queries.run_lineage("nope", story_mlflow(), None)


def test_a_run_outside_any_pod_says_so() -> None:
    runs = [rest_run("laptop", "2", {"mlflow.runName": "x"}, "2026-11-27T11:00:00Z")]
    answer = queries.run_lineage("laptop", FakeMlflow(runs=runs), None).answer
    assert isinstance(answer, TrainingLineage)
    assert answer.pod is None and answer.project is None and answer.apply is None
    assert any("feast.feature_views" in w for w in answer.warnings) and any("k8s.*" in w for w in answer.warnings)


# -- who uses a view or service --------------------------------------------------------------------


def usage_of(result: queries.Result) -> FeatureUsage:
    assert isinstance(result.answer, FeatureUsage)
    return result.answer


def test_users_of_a_feature_view_within_the_namespace() -> None:
    mlflow = story_mlflow()
    result = queries.feature_usage("driver_hourly_stats", NS, mlflow, story_cluster())
    usage = usage_of(result)
    assert usage.kind == "FeatureUsage" and not result.incomplete
    assert (usage.object_kind, usage.projects) == ("featureView", ["drivers"])
    assert [(v.name, v.version) for v in usage.model_versions] == [("driver-activity", "1")]
    assert [r.run_id for r in usage.runs] == ["train1"]
    # MLflow was asked within the namespace, and the LIKE's extra match (trainV2) was dropped afterwards.
    assert any("`k8s.namespace` = 'team-a'" in call for call in mlflow.calls if call.startswith("search_runs"))


def test_users_of_a_feature_service_leave_other_namespaces_out() -> None:
    usage = usage_of(queries.feature_usage("driver_activity_v1", NS, story_mlflow(), story_cluster()))
    assert usage.object_kind == "featureService"
    # other-model carries the same tag, but was trained in team-b.
    assert [v.name for v in usage.model_versions] == ["driver-activity"]
    assert [r.run_id for r in usage.runs] == ["train1"]
    team_b = usage_of(queries.feature_usage("driver_activity_v1", "team-b", story_mlflow(), FakeCluster([])))
    assert [v.name for v in team_b.model_versions] == ["other-model"]
    assert team_b.object_kind == "unknown"


def test_a_name_nothing_knows_is_not_found_and_quotes_are_refused() -> None:
    with pytest.raises(queries.NotFound):
        queries.feature_usage("nothing", NS, story_mlflow(), story_cluster())
    with pytest.raises(ValueError, match="quotes"):
        queries.feature_usage("it's", NS, story_mlflow(), story_cluster())
    assert quote("a_b") == "'a_b'"


def test_usage_shows_the_newest_runs_and_counts_all() -> None:
    runs = [
        rest_run(f"r{i}", "2", training_tags(), f"2026-11-27T1{i}:00:00Z", f"2026-11-27T1{i}:01:00Z") for i in range(5)
    ]
    usage = usage_of(queries.feature_usage("driver_activity_v1", NS, FakeMlflow(runs=runs), story_cluster(), limit=2))
    assert [r.run_id for r in usage.runs] == ["r4", "r3"] and usage.runs_matched == 5
    assert "(2 newest of 5 runs)" in render(usage, "table")


# -- printing --------------------------------------------------------------------------------------


def test_tables_align_columns_without_trailing_blanks() -> None:
    text = table(["A", "LONGER"], [["x", "-"], ["wide cell", ""]])
    assert text.splitlines() == ["A           LONGER", "x           -", "wide cell"]


def test_json_and_yaml_hold_the_same_answer() -> None:
    answer = queries.model_lineage("driver-activity", "1", None, story_mlflow(), story_cluster()).answer
    as_json = json.loads(render(answer, "json"))
    assert as_json == yaml.safe_load(render(answer, "yaml"))
    assert as_json["run"]["startTime"] == "2026-11-27T11:00:00Z"
    assert as_json["apply"]["run"]["url"] == f"{BASE_URL}/#/experiments/1/runs/apply1"
    assert as_json["featureViews"][0]["lastMaterialization"]["windowStart"] == WEEK[0]
    history = queries.project_history(NS, "drivers", story_mlflow(), story_cluster()).answer
    entries = json.loads(render(history, "json"))["entries"]
    assert [e["operation"] for e in entries] == ["materialize", "apply", "materialize", "materialize", "apply"]
    assert entries[1]["changes"] == {"featureViews": ["~driver_daily_trips"], "featureServices": [], "entities": []}


def test_history_table_names_revision_changes_and_window() -> None:
    text = render(queries.project_history(NS, "drivers", story_mlflow(), story_cluster()).answer, "table")
    lines = text.splitlines()
    assert lines[0] == "project team-a/drivers, Feast project driver_stats"
    apply_line = next(line for line in lines if "a2" in line or "apply2" in line)
    assert "configmap/repo@bbbb: views ~driver_daily_trips" in apply_line and "repo content changed" in apply_line
    assert any(f"backfill [{WEEK[0]}, {WEEK[1]}) {BOTH}" in line for line in lines)
    assert any("broken" in line and "failed" in line for line in lines)


# -- the command -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("m/3", ("m", "3", None)),
        ("models:/m/3", ("m", "3", None)),
        ("team/m/12", ("team/m", "12", None)),
        ("m/latest", ("m", "latest", None)),
        ("m@prod", ("m", None, "prod")),
        ("models:/m@prod", ("m", None, "prod")),
    ],
)
def test_model_references(text: str, parsed: tuple[str, str | None, str | None]) -> None:
    assert command.parse_model_ref(text) == parsed


@pytest.mark.parametrize("text", ["m", "m/newest", "@x", "m@", "/3"])
def test_bad_model_references(text: str) -> None:
    with pytest.raises(command.UsageError):
        command.parse_model_ref(text)


def test_where_mlflow_is_when_not_told() -> None:
    with_spec = project_obj(tracking_uri="http://mlflow.mlflow:5000/", last_apply=LAST_APPLY)
    assert command.tracking_uri_of_projects([with_spec]) == {"http://mlflow.mlflow:5000"}
    assert command.tracking_uri_of_projects([project_obj(last_apply=LAST_APPLY)]) == {BASE_URL}
    assert command.tracking_uri_of_projects([project_obj()]) == set()


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["lineage", *argv])


def _run(
    monkeypatch: pytest.MonkeyPatch, mlflow: FakeMlflow, cluster: FakeCluster | None, *argv: str
) -> tuple[int, str, str]:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    seen: dict[str, Any] = {}

    def reader(uri: str, **kwargs: Any) -> FakeMlflow:
        seen["uri"] = uri
        return mlflow

    def connect(kubeconfig: str | None, context: str | None, timeout: float) -> tuple[FakeCluster, str]:
        if cluster is None:
            raise SourceUnavailable("no cluster configured")
        return cluster, NS

    monkeypatch.setattr(command, "MlflowReader", reader)
    monkeypatch.setattr(command, "connect_cluster", connect)
    out, err = io.StringIO(), io.StringIO()
    code = command.run_command(_args(*argv), out, err)
    return code, out.getvalue(), err.getvalue() + (f"\nuri={seen.get('uri')}" if seen else "")


def test_exit_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = _run(monkeypatch, story_mlflow(), story_cluster(), "model", "driver-activity/1")
    assert code == command.EXIT_OK and "driver-activity/1" in out and f"uri={BASE_URL}" in err
    code, out, err = _run(monkeypatch, story_mlflow(), story_cluster(), "model", "driver-activity/7")
    assert code == command.EXIT_NOT_FOUND and out == "" and "not found: model version driver-activity/7" in err
    code, _, err = _run(monkeypatch, story_mlflow(), story_cluster(), "model", "driver-activity")
    assert code == command.EXIT_UNAVAILABLE and "NAME/VERSION" in err
    code, out, err = _run(
        monkeypatch, story_mlflow(), story_cluster(down=True), "run", "train1", "--mlflow-tracking-uri", BASE_URL
    )
    assert code == command.EXIT_INCOMPLETE and "train1" in out and "warning: cluster not read" in err
    code, _, err = _run(monkeypatch, story_mlflow(down=True), story_cluster(), "uses", "driver_activity_v1")
    assert code == command.EXIT_UNAVAILABLE and "unreachable" in err
    code, out, _ = _run(monkeypatch, story_mlflow(), story_cluster(), "history", "drivers", "-o", "json")
    assert code == command.EXIT_OK and json.loads(out)["kind"] == "ProjectHistory"
    # No kubeconfig and no server named: nothing to ask.
    code, _, err = _run(monkeypatch, story_mlflow(), None, "run", "train1")
    assert code == command.EXIT_UNAVAILABLE and "--mlflow-tracking-uri" in err


def test_history_needs_only_one_source(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = _run(
        monkeypatch, story_mlflow(), None, "history", "drivers", "-n", NS, "--mlflow-tracking-uri", BASE_URL
    )
    assert code == command.EXIT_INCOMPLETE and "apply" in out and "cluster not read" in err
    code, out, err = _run(monkeypatch, story_mlflow(down=True), story_cluster(), "history", "drivers")
    assert code == command.EXIT_INCOMPLETE and "a2" not in out and "MLflow not read" in err


def test_a_dead_tracking_server_ends_the_command_in_seconds() -> None:
    import socket
    import time

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts connections and never answers
        port = listener.getsockname()[1]
        started = time.monotonic()
        err = io.StringIO()
        args = _args(
            "run", "abc", "--no-cluster", "--timeout", "0.5", "--mlflow-tracking-uri", f"http://127.0.0.1:{port}"
        )
        code = command.run_command(args, io.StringIO(), err)
    assert code == command.EXIT_UNAVAILABLE and "unreachable" in err.getvalue()
    assert time.monotonic() - started < 5


def test_entries_know_their_kind() -> None:
    assert ApplyEntry().operation == "apply" and MaterializationEntry().operation == "materialize"
