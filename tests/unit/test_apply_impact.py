"""Impact analysis before apply: planning, matching model versions, the approval gate (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from feast_lineage.api import (
    APPROVE_PLAN_ANNOTATION,
    ApplyImpact,
    FeatureStoreProjectSpec,
    FeatureStoreProjectStatus,
    ImpactedModelVersion,
    LastApply,
)
from feast_lineage.contract import ImpactedModel, ImpactReport, RunnerResult
from feast_lineage.domain.apply_gate import approved_plan, awaiting_message, impact_env, impact_event, impact_status
from feast_lineage.domain.apply_plan import RepoIdentity, apply_hash, spec_hash, trigger
from feast_lineage.domain.project_state import ProjectObservation, decide_project
from feast_lineage.domain.runner_outcome import JobObservation
from feast_lineage.domain.tenancy import AccessCheck, TenancyPolicy
from feast_lineage.runner.changes import Snapshot, diff
from feast_lineage.runner.impact import (
    FoundVersion,
    affected_objects,
    affected_services,
    build_report,
    impacted_models,
    is_held,
    plan_hash,
)
from feast_lineage.runner.result_size import fit_result
from feast_lineage.tenancy.admission import ResourceValidation

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
BEFORE = Snapshot(
    entities={"driver": b"e"},
    feature_views={"trips": b"v1", "stats": b"s1", "old": b"o"},
    feature_services={"activity": b"a1", "ranking": b"r1"},
)
SERVICES = {"activity": ["stats", "trips"], "ranking": ["stats"], "unused": []}
REPO = RepoIdentity("configMap", "configmap/repo@abc", "abc")


def _after(**views: bytes) -> Snapshot:
    return Snapshot(
        entities=BEFORE.entities,
        feature_views={**BEFORE.feature_views, **views},
        feature_services=BEFORE.feature_services,
    )


# -- planning -------------------------------------------------------------------------------------


def test_a_changed_view_affects_the_services_that_include_it() -> None:
    changes = diff(BEFORE, _after(trips=b"v2", new=b"n"))
    assert affected_objects(changes) == ["~trips"]
    assert affected_services(changes, SERVICES) == ["activity"]


def test_deleted_objects_and_changed_services_count_created_ones_do_not() -> None:
    after = Snapshot(
        entities=BEFORE.entities,
        feature_views={"trips": b"v1", "stats": b"s1", "brand_new": b"x"},
        feature_services={"activity": b"a2", "ranking": b"r1"},
    )
    changes = diff(BEFORE, after)
    assert affected_objects(changes) == ["~activity", "-old"]
    assert affected_services(changes, SERVICES) == ["activity"]


def test_the_plan_hash_names_the_change_exactly() -> None:
    first = plan_hash("p", BEFORE, _after(trips=b"v2"))
    assert first == plan_hash("p", BEFORE, _after(trips=b"v2")), "the same plan, planned again"
    assert first != plan_hash("p", BEFORE, _after(trips=b"v3")), "a newer change"
    assert first != plan_hash("q", BEFORE, _after(trips=b"v2")), "another project"
    moved = Snapshot(BEFORE.entities, {**BEFORE.feature_views, "trips": b"v9"}, BEFORE.feature_services)
    assert first != plan_hash("p", moved, _after(trips=b"v2")), "the registry moved under it"
    assert len(first) == 16 and plan_hash("p", BEFORE, BEFORE) == plan_hash("p", _after(), _after())


# -- matching model versions ----------------------------------------------------------------------

TEAM_A = {"k8s.namespace": "team-a", "featurelineage.feast_project": "driver_stats"}


def test_only_versions_trained_in_the_namespace_on_the_project_count() -> None:
    found = [
        FoundVersion("churn", "2", "activity", TEAM_A),
        FoundVersion("churn", "10", "activity", TEAM_A),
        FoundVersion("churn", "2", "activity", TEAM_A),  # found twice: listed once
        FoundVersion("elsewhere", "1", "activity", {"k8s.namespace": "team-b"}),
        FoundVersion("other-project", "1", "activity", {**TEAM_A, "featurelineage.feast_project": "other"}),
        FoundVersion("untagged-run", "1", "activity", {}),
        FoundVersion("deleted-run", "1", "activity", None),
        FoundVersion("older-pod", "1", "activity", {"k8s.namespace": "team-a"}),  # no project tag: trusted
        FoundVersion("unaffected", "1", "ranking", TEAM_A),
    ]
    models = impacted_models(found, ["activity"], "team-a", "driver_stats")
    assert [(m.name, m.version) for m in models] == [("churn", "2"), ("churn", "10"), ("older-pod", "1")]


def test_block_holds_affected_models_until_exactly_this_plan_is_approved() -> None:
    model = [ImpactedModel(name="churn", version="1", feature_service="activity")]
    assert is_held("Block", model, None, ["activity"], "p1", None)
    assert is_held("Block", model, None, ["activity"], "p1", "p0"), "an older plan's approval"
    assert not is_held("Block", model, None, ["activity"], "p1", "p1")
    assert not is_held("Warn", model, None, ["activity"], "p1", None)
    assert not is_held("Block", [], None, ["activity"], "p1", None), "no model depends on it"
    assert is_held("Block", [], "MLflow unreachable", ["activity"], "p1", None), "unknown models: held"
    assert not is_held("Block", [], "MLflow unreachable", [], "p1", None)


def test_reports_are_bounded() -> None:
    models = [ImpactedModel(name=f"m{i}", version="1", feature_service="s") for i in range(30)]
    report = build_report(
        digest="p1", objects=["~a"], services=["s"], models=models, error=None, policy="Block", approved_plan=None
    )
    assert len(report.models) == 20 and report.truncated == 10 and report.held
    long_names = [ImpactedModel(name="m" * 200 + str(i), version="1", feature_service="s" * 200) for i in range(20)]
    big = report.model_copy(update={"models": long_names, "objects": ["~" + "v" * 200] * 20})
    text = fit_result(RunnerResult(operation="apply", ok=True, duration_seconds=1, impact=big))
    kept = RunnerResult.model_validate_json(text).impact
    assert kept is not None and kept.plan_hash == "p1" and kept.held and kept.truncated > 10


# -- the operator's side ----------------------------------------------------------------------------


def _spec(policy: str = "Block") -> FeatureStoreProjectSpec:
    return FeatureStoreProjectSpec.model_validate(
        {
            "project": "driver_stats",
            "repo": {"configMap": {"name": "repo"}},
            "featureStore": {"registry": {"path": "/data/registry.db"}},
            "applyPolicy": {"onImpact": policy},
        }
    )


def test_the_approval_counts_only_under_block_and_is_part_of_the_apply() -> None:
    annotations = {APPROVE_PLAN_ANNOTATION: " p1 "}
    assert approved_plan(_spec("Block"), annotations) == "p1"
    assert approved_plan(_spec("Warn"), annotations) is None
    assert approved_plan(_spec("Block"), {}) is None
    assert apply_hash("s", REPO, "p1") != apply_hash("s", REPO) == apply_hash("s", REPO, None)
    env = {e["name"]: e["value"] for e in impact_env(_spec(), "team-a", "p1")}
    assert env == {
        "FEAST_LINEAGE_ON_IMPACT": "Block",
        "FEAST_LINEAGE_NAMESPACE": "team-a",
        "FEAST_LINEAGE_APPROVED_PLAN": "p1",
    }


def test_warn_and_allow_share_the_apply_hash_block_does_not() -> None:
    from feast_lineage.api import FeatureStoreProject

    def project(policy: str) -> FeatureStoreProject:
        spec = _spec(policy).model_dump(mode="json", by_alias=True, exclude_none=True)
        return FeatureStoreProject.model_validate({"metadata": {"name": "p"}, "spec": spec})

    assert spec_hash(project("Warn"), "img") == spec_hash(project("Allow"), "img") != spec_hash(project("Block"), "img")


def _report(held: bool) -> ImpactReport:
    return ImpactReport(
        plan_hash="p1",
        policy="Block" if held else "Warn",
        objects=["~trips"],
        feature_services=["activity"],
        models=[ImpactedModel(name="churn", version="3", feature_service="activity")],
        held=held,
    )


def _observe(status: FeatureStoreProjectStatus, job: JobObservation | None, **fields: Any) -> ProjectObservation:
    base: dict[str, Any] = {"repo": REPO, "apply_hash": "h1", "job_name": "job-h1", "job": job}
    return ProjectObservation(1, status, **{**base, **fields})


def _conditions(status: FeatureStoreProjectStatus) -> dict[str, str]:
    return {c.type: f"{c.status}/{c.reason}" for c in status.conditions}


def test_a_held_apply_awaits_approval_in_progress_not_degraded() -> None:
    result = RunnerResult(operation="apply", ok=True, duration_seconds=1, impact=_report(held=True))
    job = JobObservation("job-h1", "succeeded", "", result, "2026-11-27T07:59:00Z", {})
    decision = decide_project(_observe(FeatureStoreProjectStatus(), job), NOW)
    status = decision.status
    assert status.applied_spec_hash is None, "nothing was applied"
    assert status.last_apply is not None and status.last_apply.outcome == "AwaitingApproval"
    assert status.last_apply.impact is not None and status.last_apply.impact.plan_hash == "p1"
    conditions = _conditions(status)
    assert conditions["Reconciling"] == "True/AwaitingApproval" and conditions["Stalled"] == "False/Healthy"
    assert conditions["Ready"] == "False/AwaitingApproval" and conditions["AwaitingApproval"] == "True/PlanNotApproved"
    message = next(c.message for c in status.conditions if c.type == "AwaitingApproval")
    assert "churn v3" in message and "p1" in message and APPROVE_PLAN_ANNOTATION in message
    assert [event[:2] for event in decision.events] == [("Warning", "ApplyImpact")]
    # The next pass sees the same Job: still waiting, no second Event.
    again = decide_project(_observe(status, job), NOW)
    assert _conditions(again.status)["AwaitingApproval"] == "True/PlanNotApproved" and again.events == []
    assert not again.create_job

    # Approved: a new apply (its hash includes the approval) starts, and once applied the wait is over.
    approved = decide_project(_observe(again.status, None, apply_hash="h2", job_name="job-h2"), NOW)
    assert approved.create_job
    done = RunnerResult(
        operation="apply",
        ok=True,
        duration_seconds=1,
        impact=_report(held=False).model_copy(update={"policy": "Block"}),
    )
    finished = JobObservation("job-h2", "succeeded", "", done, "2026-11-27T08:01:00Z", {})
    applied = decide_project(_observe(approved.status, finished, apply_hash="h2", job_name="job-h2"), NOW)
    conditions = _conditions(applied.status)
    assert conditions["Ready"] == "True/Applied" and conditions["AwaitingApproval"] == "False/NotWaiting"
    assert applied.status.applied_spec_hash == "h2"


def test_warn_records_the_impact_and_warns_allow_only_records() -> None:
    for policy, events in (("Warn", [("Warning", "ApplyImpact")]), ("Allow", [])):
        report = _report(held=False).model_copy(update={"policy": policy})
        result = RunnerResult(operation="apply", ok=True, duration_seconds=1, impact=report)
        job = JobObservation("job-h1", "succeeded", "", result, "2026-11-27T07:59:00Z", {})
        decision = decide_project(_observe(FeatureStoreProjectStatus(), job), NOW)
        assert decision.status.last_apply is not None and decision.status.last_apply.outcome == "Succeeded"
        assert [event[:2] for event in decision.events] == events
        assert "AwaitingApproval" not in _conditions(decision.status)
        assert _conditions(decision.status)["Ready"] == "True/Applied"


def test_trigger_names_the_approved_plan() -> None:
    held = LastApply(spec_hash="s", revision=REPO.revision, impact=ApplyImpact(plan_hash="p1", held=True))
    assert trigger(held, "s", REPO, "p1") == "plan p1 approved"
    assert trigger(held, "s", REPO, None) == "retry"
    assert trigger(held, "s", REPO, "p0") == "retry", "an approval of another plan"


def test_an_untrusted_report_is_cut_to_the_schema() -> None:
    report = ImpactReport(
        plan_hash="p" * 100,
        objects=["~" + "x" * 300] * 30,
        models=[ImpactedModel(name="n" * 300, version="1", feature_service="s")] * 25,
        truncated=-5,
    )
    status = impact_status(report)
    assert len(status.plan_hash) == 64 and len(status.objects) == 20 and len(status.objects[0]) == 256
    assert len(status.models) == 20 and status.truncated == 15
    ApplyImpact.model_validate(status.model_dump())


def test_messages_and_events_name_models_and_plan() -> None:
    impact = ApplyImpact(
        plan_hash="p1",
        policy="Block",
        objects=["~trips"],
        models=[ImpactedModelVersion(name="churn", version="3", feature_service="activity")],
        held=True,
    )
    assert awaiting_message(impact) == (
        "plan p1 changes ~trips; registered model versions churn v3 (activity) depend on it; "
        f"approve with annotation {APPROVE_PLAN_ANNOTATION}=p1"
    )
    unknown = impact.model_copy(update={"models": [], "error": "MLflow unreachable"})
    assert "could not be listed (MLflow unreachable)" in awaiting_message(unknown)
    assert impact_event(impact.model_copy(update={"held": False, "policy": "Warn", "models": []})) is None


# -- admission ---------------------------------------------------------------------------------------


def _annotated(value: str | None) -> dict[str, Any]:
    annotations = {APPROVE_PLAN_ANNOTATION: value} if value is not None else {}
    return {"metadata": {"name": "drivers", "annotations": annotations}, "spec": {"x": 1}}


def _review(new: str | None, old: str | None, operation: str = "UPDATE") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": "u",
            "kind": {"kind": "FeatureStoreProject"},
            "namespace": "ml",
            "name": "drivers",
            "operation": operation,
            "userInfo": {"username": "bob"},
            "object": _annotated(new),
            "oldObject": _annotated(old) if operation == "UPDATE" else None,
        },
    }


def test_setting_or_changing_the_approval_takes_the_approve_verb() -> None:
    asked: list[AccessCheck] = []

    def refuse_approve(user: dict[str, Any], check: AccessCheck) -> bool:
        asked.append(check)
        return check.verb != "approve"

    validation = ResourceValidation(refuse_approve, TenancyPolicy())
    refused = validation.review(_review("p2", "p1"))["response"]
    assert refused["allowed"] is False
    assert (
        f'user "bob" may not approve featurestoreprojects "drivers" in namespace ml '
        f"(to set the {APPROVE_PLAN_ANNOTATION} annotation)"
    ) in refused["status"]["message"]
    assert asked[0].group == "featurelineage.io"
    assert validation.review(_review("p1", "p1"))["response"]["allowed"] is True, "unchanged"
    assert validation.review(_review(None, "p1"))["response"]["allowed"] is True, "withdrawn"
    allowed = ResourceValidation(lambda user, check: True, TenancyPolicy())
    assert allowed.review(_review("p2", "p1"))["response"]["allowed"] is True


def test_runs_go_on_while_a_change_awaits_approval() -> None:
    from feast_lineage.api import MaterializationJobSpec, MaterializationJobStatus
    from feast_lineage.domain.materialization_state import MaterializationObservation, decide_materialization

    spec = MaterializationJobSpec.model_validate(
        {
            "projectRef": {"name": "drivers"},
            "mode": "Range",
            "startTime": "2026-11-02T00:00:00Z",
            "endTime": "2026-11-03T00:00:00Z",
        }
    )

    def run_against(applied_hash: str | None) -> bool:
        ready = {
            "type": "Ready",
            "status": "False",
            "reason": "AwaitingApproval",
            "message": "plan p1 ...",
            "lastTransitionTime": "2026-11-27T07:00:00Z",
        }
        project = {"status": {"featureViews": ["trips"], "conditions": [ready], "appliedSpecHash": applied_hash}}
        observation = MaterializationObservation(
            name="run",
            created="2026-11-27T07:30:00Z",
            generation=1,
            status=MaterializationJobStatus(),
            now=NOW,
            spec=spec,
            project=project,
        )
        return decide_materialization(observation).create_job

    assert run_against("h1"), "the registry holds the last applied change"
    assert not run_against(None), "nothing was ever applied"
