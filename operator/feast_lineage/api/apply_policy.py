"""How a FeatureStoreProject's applies are judged before they write the registry."""

from typing import Annotated, Literal

from pydantic import Field

from .common import CamelModel, StatusModel

APPROVE_PLAN_ANNOTATION = "featurelineage.io/approve-plan"
"""Set to a plan hash (status.lastApply.impact.planHash) to release exactly that plan under Block."""
APPROVE_VERB = "approve"
"""The RBAC verb on featurestoreprojects that lets a user set or change the approval annotation."""


class ApplyPolicy(CamelModel):
    """Impact analysis: before each apply, the runner plans the change without writing and lists the
    registered MLflow model versions (of this namespace) whose feature service the change updates or
    deletes, directly or through a feature view the service includes."""

    on_impact: Literal["Allow", "Warn", "Block"] = "Warn"
    """What a change that affects registered model versions does: Allow applies it and records the
    impact; Warn also emits a Warning Event; Block holds it (condition AwaitingApproval) until the
    annotation `featurelineage.io/approve-plan` names its plan hash. Setting that annotation takes
    the `approve` verb on featurestoreprojects."""


class ImpactedModelVersion(StatusModel):
    """A registered MLflow model version that depends on what the apply changes."""

    name: Annotated[str, Field(max_length=256)]
    """Registered model name."""
    version: Annotated[str, Field(max_length=64)]
    """Model version."""
    feature_service: Annotated[str, Field(max_length=256)]
    """The feature service the version was trained on (its tag `feast.feature_service`)."""


class ApplyImpact(StatusModel):
    """What an apply changes that registered models depend on, planned before it wrote anything."""

    plan_hash: Annotated[str, Field(max_length=64)]
    """Identifies exactly this change; the approval annotation must name it."""
    policy: Literal["Allow", "Warn", "Block"] | None = None
    """spec.applyPolicy.onImpact the plan was judged by."""
    objects: list[Annotated[str, Field(max_length=256)]] = Field(default_factory=list, max_length=20)
    """Updated (`~name`) and deleted (`-name`) feature views and feature services."""
    feature_services: list[Annotated[str, Field(max_length=256)]] = Field(default_factory=list, max_length=20)
    """Existing feature services affected: changed, deleted, or including a changed feature view."""
    models: list[ImpactedModelVersion] = Field(default_factory=list, max_length=20)
    """Registered model versions, trained in this namespace, that use an affected feature service."""
    truncated: int = 0
    """Entries left out of the lists above."""
    error: Annotated[str, Field(max_length=1024)] | None = None
    """Why the model versions could not all be listed."""
    held: bool = False
    """The apply waited for approval instead of writing."""
