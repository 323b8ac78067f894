"""The FeatureStoreProject resource: one Feast project managed from Kubernetes."""

from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from .apply_policy import ApplyImpact, ApplyPolicy
from .common import (
    CamelModel,
    Conditions,
    MlflowRunRef,
    ObjectMeta,
    RunnerImageRecord,
    StatusModel,
    Timestamp,
    TimeWindow,
)
from .feature_store import FeatureStoreConfig
from .injection import InjectionConfig
from .mlflow_config import MlflowConfig
from .repo import RepoSource
from .runner import RunnerConfig
from .schedule import MaterializationSchedule

PROJECT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_]*$"

SUB_OBJECT_DEFAULT: dict[str, Any] = {"default": {}}
"""Lets the API server fill in the defaults of a section the user left out."""


class FeatureStoreProjectSpec(CamelModel):
    """Desired state of a Feast project: its repo, its feature_store.yaml and how it is run."""

    project: Annotated[str, Field(max_length=63, pattern=PROJECT_NAME_PATTERN)]
    """Feast project name (letters, digits and underscores)."""
    repo: RepoSource
    """Where the feature repo comes from."""
    feature_store: FeatureStoreConfig
    """Settings rendered into feature_store.yaml."""
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig, json_schema_extra=SUB_OBJECT_DEFAULT)
    """MLflow lineage settings."""
    materialization: MaterializationSchedule | None = None
    """Scheduled incremental materialization; none when not set."""
    runner: RunnerConfig = Field(default_factory=RunnerConfig, json_schema_extra=SUB_OBJECT_DEFAULT)
    """Pod settings of the Jobs that run Feast."""
    injection: InjectionConfig = Field(default_factory=InjectionConfig, json_schema_extra=SUB_OBJECT_DEFAULT)
    """Client configuration injected into training pods."""
    apply_policy: ApplyPolicy = Field(default_factory=ApplyPolicy, json_schema_extra=SUB_OBJECT_DEFAULT)
    """Impact analysis before each apply, and whether a change that affects registered models waits for approval."""

    @model_validator(mode="after")
    def _injected_volumes_exist(self) -> Self:
        runner_volumes = {str(volume.get("name")) for volume in self.runner.volumes}
        unknown = [name for name in self.injection.volumes if name not in runner_volumes]
        if unknown:
            raise ValueError(f"injection.volumes names no volume of spec.runner.volumes: {', '.join(unknown)}")
        return self


class AppliedChanges(StatusModel):
    """Objects that a `feast apply` created, updated or deleted."""

    feature_views: list[str] = Field(default_factory=list)
    """Changed feature views."""
    feature_services: list[str] = Field(default_factory=list)
    """Changed feature services."""
    entities: list[str] = Field(default_factory=list)
    """Changed entities."""


class LastApply(RunnerImageRecord):
    """The most recent `feast apply`."""

    revision: str | None = None
    """Revision of the repo that was applied: the Git revision, configmap/<name>@<content digest>, or
    the image and path."""
    commit: str | None = None
    """Git commit the revision resolved to."""
    repo_digest: str | None = None
    """ConfigMap source: sha256 of the repo's keys and bytes (the runner checks its mount against it)."""
    snapshot: str | None = None
    """ConfigMap source: the immutable ConfigMap holding exactly that content, which the Job mounted."""
    time: Timestamp | None = None
    """When the apply finished."""
    job_name: str | None = None
    """Kubernetes Job that ran it."""
    trigger: str | None = None
    """What started it, e.g. a spec change or a new repo revision."""
    mlflow: MlflowRunRef | None = None
    """MLflow run that recorded it."""
    changes: AppliedChanges | None = None
    """Objects it changed."""
    duration_seconds: float | None = None
    """How long it took."""
    outcome: Literal["Succeeded", "Failed", "AwaitingApproval"] | None = None
    """Whether `feast apply` succeeded, or stopped before writing to wait for approval of its plan."""
    error: Annotated[str, Field(max_length=4096)] | None = None
    """Why it failed: one line from the runner."""
    spec_hash: str | None = None
    """Hash of the parts of the spec the apply depended on."""
    audit_id: str | None = None
    """Identity of its MLflow audit record (tag `featurelineage.audit_id`)."""
    impact: ApplyImpact | None = None
    """Its impact on registered model versions, planned before it wrote."""


class PendingApply(StatusModel):
    """An apply that waits for a running one to finish (one apply per project at a time)."""

    revision: str | None = None
    """Revision of the repo it would apply."""
    commit: str | None = None
    """Git commit the revision resolved to."""
    apply_hash: str | None = None
    """Hash of the spec and repo content it would apply."""
    since: Timestamp | None = None
    """When it started waiting."""
    waiting_for: str | None = None
    """What it waits for: the running apply Job, or a materialization (file registry)."""


class LastMaterialization(StatusModel):
    """The most recent MaterializationJob of the project."""

    name: str | None = None
    """Name of the MaterializationJob."""
    phase: str | None = None
    """Its phase."""
    window: TimeWindow | None = None
    """Event-time window it materialized."""
    completion_time: Timestamp | None = None
    """When it finished."""


class ScheduleStatus(StatusModel):
    """State of the materialization schedule."""

    last_schedule_time: Timestamp | None = None
    """The latest scheduled time that was handled (a run created, or deliberately skipped)."""
    next_schedule_time: Timestamp | None = None
    """When the next run is due."""
    last_run: str | None = None
    """Name of the latest MaterializationJob the schedule created."""
    message: str | None = None
    """Why the schedule is not creating a run now (suspended, Forbid, missed deadline), if so."""


class InjectionStatus(StatusModel):
    """Training pods that asked for this project's client configuration."""

    missed_pods: int = 0
    """Labelled pods that exist without the injected configuration (the webhook was down or timed out)."""
    missed_pod_names: list[str] = Field(default_factory=list, max_length=10)
    """Up to ten of them."""


class UnmaterializableView(StatusModel):
    """A feature view Feast refuses to materialize, even by name."""

    name: str
    """Name of the feature view."""
    reason: Annotated[str, Field(max_length=1024)]
    """Why, in Feast's words (e.g. an on-demand feature view that does not write to the online store)."""


class FeatureStoreProjectStatus(StatusModel):
    """Observed state of the project, written by the operator."""

    observed_generation: int | None = None
    """metadata.generation the status reflects."""
    conditions: Conditions = Field(default_factory=list)
    """Ready, Reconciling, Stalled and Applied conditions."""
    last_apply: LastApply | None = None
    """The most recent `feast apply`."""
    last_successful_apply: LastApply | None = None
    """The most recent `feast apply` that succeeded: what the registry holds, and what every
    MaterializationJob runs against (its revision, snapshot and commit)."""
    last_materialization: LastMaterialization | None = None
    """The most recent materialization."""
    schedule: ScheduleStatus | None = None
    """State of spec.materialization's schedule."""
    feature_views: list[str] = Field(default_factory=list)
    """Feature views in the registry after the last apply (on-demand and stream ones included); empty
    when there are more than the runner's 4 KiB result can name (featureViewCount says how many)."""
    feature_view_count: int | None = None
    """How many feature views the registry holds after the last apply."""
    feature_service_count: int | None = None
    """How many feature services the registry holds after the last apply."""
    entity_count: int | None = None
    """How many entities the registry holds after the last apply."""
    materialized_feature_views: list[str] | None = None
    """Feature views `feast materialize` materializes when it is given none: what a
    MaterializationJob without featureViews materializes."""
    unmaterializable_feature_views: list[UnmaterializableView] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Feature views Feast refuses to materialize even by name, and why."""
    feature_services: list[str] = Field(default_factory=list)
    """Feature services in the registry after the last apply."""
    entities: list[str] = Field(default_factory=list)
    """Entities in the registry after the last apply."""
    client_config_map: str | None = None
    """ConfigMap with the client feature_store.yaml that injected pods mount."""
    runner_config_map: str | None = None
    """ConfigMap with the feature_store.yaml the runner uses."""
    pending_audit: list[dict[str, Any]] = Field(default_factory=list)
    """Compact operation records waiting for delivery to MLflow."""
    undeliverable_audit: list[dict[str, Any]] = Field(default_factory=list)
    """Audit records that cannot reach MLflow as configured (``record``, ``reason``, ``since``), set aside
    so they hold back no other record; the newest few are kept."""
    applied_spec_hash: str | None = None
    """Hash of the spec and repo revision of the last successful apply."""
    pending_apply: PendingApply | None = None
    """The apply waiting for a running apply (or, with a file registry, a materialization) to finish."""
    last_superseded_apply: PendingApply | None = None
    """The latest apply that was superseded by a newer revision before it started, and never ran."""
    injection: InjectionStatus | None = None
    """Pods that asked for injection and missed it."""


class FeatureStoreProject(CamelModel):
    """FeatureStoreProject is a Feast project whose repo the operator applies, materializes and
    exposes to training pods, recording each operation in MLflow."""

    api_version: Literal["featurelineage.io/v1alpha1"] = "featurelineage.io/v1alpha1"
    """API version of the resource."""
    kind: Literal["FeatureStoreProject"] = "FeatureStoreProject"
    """Kind of the resource."""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    """Standard object metadata."""
    spec: FeatureStoreProjectSpec
    """Desired state."""
    status: FeatureStoreProjectStatus | None = None
    """Observed state."""
