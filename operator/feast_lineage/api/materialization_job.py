"""The MaterializationJob resource: one run of `feast materialize` for a project."""

from typing import Annotated, Any, Literal, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from .cel import CelRule, validations
from .common import (
    FEATURE_VIEW_LIST,
    CamelModel,
    Conditions,
    FeatureViewName,
    LocalObjectReference,
    MlflowRunRef,
    ObjectMeta,
    RunnerImageRecord,
    StatusModel,
    Timestamp,
    TimeWindow,
    check_unique,
)

SPEC_IMMUTABLE = CelRule(
    rule="self == oldSelf",
    message="spec is immutable; create a new MaterializationJob to run again",
)
RANGE_NEEDS_WINDOW = CelRule(
    rule="self.mode != 'Range' || (has(self.startTime) && has(self.endTime))",
    message="mode Range requires startTime and endTime",
)
INCREMENTAL_NO_START = CelRule(
    rule="self.mode != 'Incremental' || !has(self.startTime)",
    message="mode Incremental must not set startTime; it continues from the last materialized time",
)
# date-time strings are CEL timestamps in Kubernetes, so they compare as times, not as text.
START_BEFORE_END = CelRule(
    rule="!has(self.startTime) || !has(self.endTime) || self.startTime < self.endTime",
    message="startTime must be before endTime",
)
SPEC_RULES = (SPEC_IMMUTABLE, RANGE_NEEDS_WINDOW, INCREMENTAL_NO_START, START_BEFORE_END)


class MaterializationJobSpec(CamelModel):
    """What to materialize. Immutable: a new run is a new object, so a Git history is an audit trail."""

    # Bounded lists and strings keep the CEL cost estimate of the whole-spec comparison low.
    model_config = ConfigDict(json_schema_extra=validations(*SPEC_RULES))

    project_ref: LocalObjectReference
    """FeatureStoreProject to materialize, in the same namespace."""
    mode: Literal["Incremental", "Range"] = "Incremental"
    """Incremental continues from the last materialized time up to endTime; Range loads
    [startTime, endTime)."""
    start_time: Timestamp | None = None
    """Start of the event-time window (Range only)."""
    end_time: Timestamp | None = None
    """End of the event-time window; the time the job starts when not set (Incremental only)."""
    feature_views: list[FeatureViewName] = Field(
        default_factory=list, max_length=100, json_schema_extra=FEATURE_VIEW_LIST
    )
    """Feature views to materialize; all of the project's when empty."""
    backoff_limit: Annotated[int, Field(ge=0, le=10)] = 0
    """Retries of a failed runner pod."""
    active_deadline_seconds: Annotated[int, Field(ge=1)] | None = None
    """Seconds the Job may run before it is stopped; no limit when not set."""

    @field_validator("feature_views")
    @classmethod
    def _unique_views(cls, value: list[str]) -> list[str]:
        check_unique(value, "feature view")
        return value

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.mode == "Range" and (self.start_time is None or self.end_time is None):
            raise ValueError(RANGE_NEEDS_WINDOW.message)
        if self.mode == "Incremental" and self.start_time is not None:
            raise ValueError(INCREMENTAL_NO_START.message)
        if self.start_time is not None and self.end_time is not None and self.start_time >= self.end_time:
            raise ValueError(START_BEFORE_END.message)
        return self


class Provenance(StatusModel):
    """Who or what created the MaterializationJob."""

    triggered_by: Literal["schedule", "gitops", "manual"] | None = None
    """A project's schedule, a GitOps tool (Argo CD, Flux) or a person."""
    git_revision: str | None = None
    """Git revision the object was synced from."""
    git_repository: str | None = None
    """Git repository the object was synced from."""
    manager: str | None = None
    """Field manager or GitOps application that created the object (self-reported by the client)."""
    creator: str | None = None
    """Who created the object: the user as the API server authenticated them, recorded at admission;
    the field manager when the object was created without the operator's webhooks."""
    creator_source: Literal["admission", "managedFields"] | None = None
    """admission: authenticated; managedFields: self-reported by the client, anyone can name any manager."""
    scheduled_time: Timestamp | None = None
    """Schedule tick the object was created for."""
    rerun_of: str | None = None
    """The MaterializationJob this one runs again (`feast-lineage rerun`)."""


class ViewRows(StatusModel):
    """Rows a run wrote for one feature view."""

    feature_view: str
    """Name of the feature view."""
    rows: int
    """Rows written to the online store (one per entity key and event), as the runner counted them."""


class MaterializationJobStatus(RunnerImageRecord):
    """Observed state of the run, written by the operator."""

    observed_generation: int | None = None
    """metadata.generation the status reflects."""
    conditions: Conditions = Field(default_factory=list)
    """Ready, Reconciling and Stalled conditions."""
    phase: Literal["Pending", "Running", "Succeeded", "Failed"] | None = None
    """Where the run is in its life."""
    job_name: str | None = None
    """Kubernetes Job that runs it."""
    window: TimeWindow | None = None
    """Event-time window that is materialized."""
    start_time: Timestamp | None = None
    """When the Job started."""
    completion_time: Timestamp | None = None
    """When the Job finished."""
    duration_seconds: float | None = None
    """How long the run took."""
    mlflow: MlflowRunRef | None = None
    """MLflow run that recorded it."""
    provenance: Provenance | None = None
    """Who or what created the object."""
    reason: str | None = None
    """Machine-readable CamelCase reason of the current phase."""
    message: str | None = None
    """Human-readable details of the current phase."""
    waiting_for: str | None = None
    """What a Pending run waits for, e.g. the project becoming Ready or a running job."""
    feature_views: list[str] = Field(default_factory=list)
    """Feature views this run materializes (the spec's, or all of the project's)."""
    revision: str | None = None
    """Repo revision it ran against: that of the project's last successful apply."""
    commit: str | None = None
    """Git commit of that revision."""
    apply_job: str | None = None
    """The apply Job of that revision."""
    apply_audit_id: str | None = None
    """Audit record id of that apply (tag `featurelineage.audit_id` of its MLflow run)."""
    apply_run_id: str | None = None
    """MLflow run id of that apply, when it was known as this run started."""
    rows_written: list[ViewRows] | None = Field(
        default=None,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["featureView"]},
    )
    """Rows written to the online store per feature view, counted by the runner (0: the window had none)."""
    audit_id: str | None = None
    """Identity of its MLflow audit record (tag `featurelineage.audit_id`)."""
    pending_audit: list[dict[str, Any]] = Field(default_factory=list)
    """The audit record, while MLflow could not take it; delivered and removed once it can."""
    undeliverable_audit: list[dict[str, Any]] = Field(default_factory=list)
    """Audit records that cannot reach MLflow as configured (``record``, ``reason``, ``since``), set aside
    so they hold back no other record; the newest few are kept."""


class MaterializationJob(CamelModel):
    """MaterializationJob is one run of `feast materialize` for a FeatureStoreProject, committed to
    Git, created by the project's schedule or created by hand."""

    api_version: Literal["featurelineage.io/v1alpha1"] = "featurelineage.io/v1alpha1"
    """API version of the resource."""
    kind: Literal["MaterializationJob"] = "MaterializationJob"
    """Kind of the resource."""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    """Standard object metadata."""
    spec: MaterializationJobSpec
    """Desired state."""
    status: MaterializationJobStatus | None = None
    """Observed state."""
