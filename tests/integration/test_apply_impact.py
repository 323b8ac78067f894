"""Impact analysis before apply: the runner on real Feast, looking model versions up in a real MLflow."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from feast_lineage import contract
from feast_lineage.devcluster.mlflow_server import MlflowServer
from feast_lineage.devcluster.processes import free_port
from tests.integration.mlflow_checks import register_trained_model, runs_with_audit_id
from tests.integration.runner_setup import PROJECT, RunnerWorld, make_world, rename_trips_feature

OPS = f"{PROJECT}-feast-ops"


@pytest.fixture
def world(tmp_path: Path, mlflow_server: MlflowServer) -> RunnerWorld:
    world = make_world(tmp_path, mlflow_server.url)
    # The MLflow server serves the whole session: each test's models live in a namespace of their own.
    world.env_overrides[contract.ENV_NAMESPACE] = f"team-{uuid.uuid4().hex[:8]}"
    code, result = _apply(world, "Warn")
    assert code == 0 and result["ok"], result
    return world


def _apply(world: RunnerWorld, policy: str, approved: str | None = None) -> tuple[int, dict[str, Any]]:
    # A loaded machine's MLflow can take seconds per call: the test is about the result, not the bound.
    extra = {contract.ENV_ON_IMPACT: policy, contract.MLFLOW_ENV_TIMEOUT: "60"}
    if approved is not None:
        extra[contract.ENV_APPROVED_PLAN] = approved
    code, result, env = world.run("apply", **extra)
    result["_audit_id"] = env[contract.ENV_AUDIT_ID]
    return code, result


def _namespace(world: RunnerWorld) -> str:
    return world.env_overrides[contract.ENV_NAMESPACE]


def _rename_trips_feature(world: RunnerWorld, old: str, new: str) -> None:
    features = world.repo_dir / "features.py"
    features.write_text(rename_trips_feature(features.read_text(), old, new))


def _ops_tags(world: RunnerWorld, audit_id: str) -> dict[str, str]:
    assert world.tracking_uri is not None
    [run] = runs_with_audit_id(world.tracking_uri, OPS, audit_id)
    return dict(run.data.tags) | {f"param:{k}": v for k, v in run.data.params.items()}


def test_warn_applies_a_renamed_feature_and_names_the_model_of_this_namespace_only(
    world: RunnerWorld,
) -> None:
    assert world.tracking_uri is not None
    model = register_trained_model(world.tracking_uri, _namespace(world), "driver_activity_v1", PROJECT)
    elsewhere = register_trained_model(world.tracking_uri, _namespace(world) + "-b", "driver_activity_v1", PROJECT)
    _rename_trips_feature(world, "avg_daily_trips", "avg_trips")

    code, result = _apply(world, "Warn")

    assert code == 0 and result["ok"], result
    impact = result["impact"]
    # The service embeds the projection of the view's features: it changes with it.
    assert impact["objects"] == ["~driver_activity_v1", "~driver_daily_trips"]
    assert impact["featureServices"] == ["driver_activity_v1"]
    assert impact["models"] == [{"name": model, "version": "1", "featureService": "driver_activity_v1"}]
    assert elsewhere not in str(impact)
    assert impact["held"] is False and impact["policy"] == "Warn"
    assert result["changes"]["featureViews"] == ["~driver_daily_trips"]
    tags = _ops_tags(world, result["_audit_id"])
    assert tags["featurelineage.impact.models"] == f"{model}/1"
    assert tags["featurelineage.impact.plan_hash"] == impact["planHash"]
    assert tags["featurelineage.impact.held"] == "false"
    assert tags["featurelineage.outcome"] == "succeeded"
    assert tags["param:featurelineage.impact.policy"] == "Warn"


def test_block_holds_until_exactly_the_plan_is_approved(world: RunnerWorld) -> None:
    assert world.tracking_uri is not None
    model = register_trained_model(world.tracking_uri, _namespace(world), "driver_activity_v1", PROJECT)
    _rename_trips_feature(world, "avg_daily_trips", "avg_trips")

    code, held = _apply(world, "Block")
    assert code == 0 and held["ok"], held
    first_plan = held["impact"]["planHash"]
    assert held["impact"]["held"] is True
    assert held["impact"]["models"] == [{"name": model, "version": "1", "featureService": "driver_activity_v1"}]
    assert "changes" not in held  # nothing was written
    tags = _ops_tags(world, held["_audit_id"])
    assert tags["featurelineage.outcome"] == "held" and tags["featurelineage.impact.held"] == "true"

    # Planned again, the same change has the same hash: held, since nothing approved it.
    code, again = _apply(world, "Block")
    assert again["impact"]["planHash"] == first_plan and again["impact"]["held"] is True

    # A newer change: the approval of the older plan does not release it.
    _rename_trips_feature(world, "avg_trips", "trips_per_day")
    code, newer = _apply(world, "Block", approved=first_plan)
    second_plan = newer["impact"]["planHash"]
    assert second_plan != first_plan and newer["impact"]["held"] is True and "changes" not in newer

    code, released = _apply(world, "Block", approved=second_plan)
    assert code == 0 and released["ok"], released
    assert released["impact"]["held"] is False and released["impact"]["planHash"] == second_plan
    assert released["changes"]["featureViews"] == ["~driver_daily_trips"]

    # Applied: planning the same repo again finds nothing to change, so nothing to hold.
    code, settled = _apply(world, "Block")
    assert settled["impact"]["held"] is False and settled["impact"]["objects"] == []
    assert settled["changes"]["featureViews"] == []


def test_block_applies_a_change_no_model_depends_on_at_once(world: RunnerWorld) -> None:
    assert world.tracking_uri is not None
    register_trained_model(world.tracking_uri, _namespace(world), "driver_activity_v1", PROJECT)
    # driver_hourly_stats feeds driver_activity_v1; driver_ranking_v1 has no registered model.
    register_trained_model(world.tracking_uri, _namespace(world) + "-b", "driver_ranking_v1", PROJECT)
    features = world.repo_dir / "features.py"
    features.write_text(
        features.read_text().replace(
            'description="Features of the driver ranking model, version 1."',
            'description="Features of the driver ranking model, version 1 (ranked by conversion)."',
        )
    )

    code, result = _apply(world, "Block")

    assert code == 0 and result["ok"], result
    impact = result["impact"]
    assert impact["objects"] == ["~driver_ranking_v1"] and impact["featureServices"] == ["driver_ranking_v1"]
    assert impact["models"] == [] and impact["held"] is False
    assert result["changes"]["featureServices"] == ["~driver_ranking_v1"]


def test_models_that_cannot_be_listed_hold_under_block_and_are_reported_under_warn(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    world = make_world(tmp_path, dead)
    world.env_overrides.update(
        {contract.ENV_NAMESPACE: "team-a", contract.MLFLOW_ENV_TIMEOUT: "1", contract.MLFLOW_ENV_MAX_RETRIES: "0"}
    )
    code, first = world.run("apply", **{contract.ENV_ON_IMPACT: "Block"})[:2]
    assert code == 0 and first["impact"]["held"] is False, "nothing existed: nothing to look up"
    _rename_trips_feature(world, "avg_daily_trips", "avg_trips")

    code, held = world.run("apply", **{contract.ENV_ON_IMPACT: "Block"})[:2]
    assert code == 0 and held["impact"]["held"] is True and held["impact"]["models"] == []
    assert "model versions could not be read from MLflow" in held["impact"]["error"]
    assert "changes" not in held

    code, warned = world.run("apply", **{contract.ENV_ON_IMPACT: "Warn"})[:2]
    assert code == 0 and warned["impact"]["held"] is False and warned["impact"]["error"]
    assert warned["changes"]["featureViews"] == ["~driver_daily_trips"]
