"""The approval gate of applies whose plan affects registered models (pure functions).

The runner plans each apply and reports its impact (:class:`feast_lineage.contract.ImpactReport`);
under ``onImpact: Block`` an affecting plan stops before writing until the project's annotation
``featurelineage.io/approve-plan`` names its plan hash. The approval is part of the apply's
identity, so setting it starts a new apply Job, which applies only if it plans the same change.
"""

from __future__ import annotations

from collections.abc import Mapping

from feast_lineage import contract
from feast_lineage.api import (
    APPROVE_PLAN_ANNOTATION,
    ApplyImpact,
    FeatureStoreProjectSpec,
    ImpactedModelVersion,
    LastApply,
)
from feast_lineage.contract import ImpactReport

AWAITING_APPROVAL = "AwaitingApproval"
"""Condition type, lastApply outcome and Reconciling reason of a held apply."""
IMPACT_EVENT = "ApplyImpact"


def approved_plan(spec: FeatureStoreProjectSpec, annotations: Mapping[str, str] | None) -> str | None:
    """The plan hash approved by annotation, when the project blocks affecting changes (else it does not matter)."""
    if spec.apply_policy.on_impact != "Block":
        return None
    value = (annotations or {}).get(APPROVE_PLAN_ANNOTATION, "").strip()
    return value or None


def impact_status(report: ImpactReport) -> ApplyImpact:
    """The runner's report as status (the runner is not trusted: values are cut to the schema's bounds)."""
    return ApplyImpact(
        plan_hash=report.plan_hash[:64],
        policy=report.policy,
        objects=[name[:256] for name in report.objects[:20]],
        feature_services=[name[:256] for name in report.feature_services[:20]],
        models=[
            ImpactedModelVersion(name=m.name[:256], version=m.version[:64], feature_service=m.feature_service[:256])
            for m in report.models[:20]
        ],
        truncated=max(0, report.truncated)
        + sum(max(0, len(items) - 20) for items in (report.objects, report.feature_services, report.models)),
        error=report.error[:1024] if report.error else None,
        held=report.held,
    )


def held(last_apply: LastApply | None, job_name: str | None) -> ApplyImpact | None:
    """The impact of ``job_name``'s apply when status records it as waiting for approval."""
    if last_apply is None or last_apply.outcome != AWAITING_APPROVAL or last_apply.job_name != job_name:
        return None
    return last_apply.impact


def _models(impact: ApplyImpact) -> str:
    names = ", ".join(f"{m.name} v{m.version} ({m.feature_service})" for m in impact.models)
    more = f" and {impact.truncated} more" if impact.truncated else ""
    return f"{names}{more}"


def awaiting_message(impact: ApplyImpact) -> str:
    """Names the models and the plan hash, and how to approve exactly this plan."""
    if impact.models:
        why = f"registered model versions {_models(impact)} depend on it"
    else:
        why = f"the model versions it affects could not be listed ({impact.error})"
    return (
        f"plan {impact.plan_hash} changes {', '.join(impact.objects)}; {why}; "
        f"approve with annotation {APPROVE_PLAN_ANNOTATION}={impact.plan_hash}"
    )


def impact_event(impact: ApplyImpact | None) -> tuple[str, str, str] | None:
    """A Warning Event for an apply that changes (or, held, would change) what registered models use.
    None under Allow, or when no model is affected."""
    if impact is None or impact.policy == "Allow" or not (impact.models or impact.held):
        return None
    if impact.held:
        return ("Warning", IMPACT_EVENT, f"apply held: {awaiting_message(impact)}")
    models = _models(impact) if impact.models else ""
    return (
        "Warning",
        IMPACT_EVENT,
        f"applied plan {impact.plan_hash} changing {', '.join(impact.objects)}; "
        f"registered model versions {models} depend on it",
    )


def impact_env(spec: FeatureStoreProjectSpec, namespace: str, approval: str | None) -> list[dict[str, str]]:
    """What the apply runner needs to judge its plan: the policy, the approval, where models count."""
    env = [
        {"name": contract.ENV_ON_IMPACT, "value": spec.apply_policy.on_impact},
        {"name": contract.ENV_NAMESPACE, "value": namespace},
    ]
    if approval is not None:
        env.append({"name": contract.ENV_APPROVED_PLAN, "value": approval})
    return env
