"""What each ``lineage`` question answers: the objects ``-o json`` / ``-o yaml`` print.

Field names are camelCase, as in the resources' status; times are RFC 3339 in UTC; a fact no
source holds is ``null`` (never guessed), and ``sources`` says where an entry was read from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer
from pydantic.alias_generators import to_camel

from feast_lineage.timestamps import rfc3339

Source = Literal["mlflow", "job", "status", "materializationJob", "pendingAudit"]


class LineageModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def to_json_ready(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class Timed(LineageModel):
    """Times print as Kubernetes does: RFC 3339, UTC, to the second."""

    @field_serializer("*", when_used="json")
    def _times(self, value: Any) -> Any:
        return rfc3339(value) if isinstance(value, datetime) else value


class RunRef(LineageModel):
    """An MLflow run and where to see it."""

    run_id: str
    url: str | None = None


class Changes(LineageModel):
    """Objects an apply changed, in the runner's notation: ``+created``, ``~updated``, ``-deleted``."""

    feature_views: list[str] = Field(default_factory=list)
    feature_services: list[str] = Field(default_factory=list)
    entities: list[str] = Field(default_factory=list)

    def empty(self) -> bool:
        return not (self.feature_views or self.feature_services or self.entities)


class ApplyEntry(Timed):
    """One ``feast apply`` of a project."""

    operation: Literal["apply"] = "apply"
    audit_id: str | None = None
    """Key that ties the Job, the status and the MLflow run of the same apply together."""
    time: datetime | None = None
    """When it finished (or started, while it runs)."""
    start_time: datetime | None = None
    outcome: str | None = None
    """succeeded | failed | running"""
    trigger: str | None = None
    revision: str | None = None
    commit: str | None = None
    changes: Changes | None = None
    """``null`` when no source recorded the changes."""
    error: str | None = None
    job_name: str | None = None
    generation: int | None = None
    run: RunRef | None = None
    sources: list[Source] = Field(default_factory=list)


class MaterializationEntry(Timed):
    """One materialization of a project (a MaterializationJob and/or its MLflow run)."""

    operation: Literal["materialize"] = "materialize"
    name: str | None = None
    """The MaterializationJob."""
    audit_id: str | None = None
    time: datetime | None = None
    """When it finished (or started, while it runs)."""
    start_time: datetime | None = None
    outcome: str | None = None
    """succeeded | failed | running | pending"""
    trigger: str | None = None
    """schedule | gitops | manual"""
    mode: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    feature_views: list[str] = Field(default_factory=list)
    error: str | None = None
    job_name: str | None = None
    run: RunRef | None = None
    sources: list[Source] = Field(default_factory=list)


HistoryEntry = ApplyEntry | MaterializationEntry


class ProjectRef(LineageModel):
    """A FeatureStoreProject, and whether the cluster still has it."""

    namespace: str
    name: str
    feast_project: str | None = None
    ops_experiment: str | None = None
    in_cluster: bool | None = None
    """``null`` when the cluster was not read."""


class ModelVersionRef(Timed):
    """A registered model version."""

    name: str
    version: str
    aliases: list[str] = Field(default_factory=list)
    status: str | None = None
    created: datetime | None = None
    run_id: str | None = None
    source: str | None = None
    feature_service: str | None = None
    """Its ``feast.feature_service`` tag."""
    uri: str


class TrainingRun(Timed):
    run_id: str
    run_name: str | None = None
    experiment_id: str | None = None
    experiment: str | None = None
    status: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    user: str | None = None
    url: str | None = None


class EntityDf(Timed):
    """The training rows: what the retrieval tagged, and the artifact that reproduces them."""

    type: str | None = None
    """dataframe | sql | range"""
    rows: int | None = None
    columns: list[str] = Field(default_factory=list)
    query: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    artifact: str | None = None
    """``runs:/<id>/entity_df.parquet`` when logged (``spec.mlflow.autoLogEntityDf``)."""


class PodRef(LineageModel):
    """Where the training ran: the run's ``k8s.*`` tags, and what the cluster holds now."""

    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    container: str | None = None
    image: str | None = None
    owner_kind: str | None = None
    owner_name: str | None = None
    job: str | None = None
    role: str | None = None
    pod_phase: str | None = None
    """The pod's phase now; ``null`` when it is gone (or the cluster was not read)."""
    job_status: str | None = None
    """Complete | Failed | Running, of the Job now; ``null`` when it is gone or there is none."""


class ViewLineage(LineageModel):
    """A feature view a training run read: which of its features, the apply that last changed it
    and the last materialization of it before the run started."""

    name: str
    features: list[str] = Field(default_factory=list)
    last_changed_by: ApplyEntry | None = None
    last_materialization: MaterializationEntry | None = None


class TrainingLineage(LineageModel):
    """The answer of ``lineage model`` and ``lineage run``: model -> training run -> pod/Job ->
    feature service -> feature views -> the apply and materializations behind them."""

    kind: Literal["ModelLineage", "RunLineage"]
    model: ModelVersionRef | None = None
    run: TrainingRun
    feature_service: str | None = None
    feature_service_from: str | None = None
    """Where the feature service came from: the model version's tag or the run's."""
    features: list[str] = Field(default_factory=list)
    """Feature references, ``view:feature``."""
    feature_views: list[ViewLineage] = Field(default_factory=list)
    entity_df: EntityDf | None = None
    pod: PodRef | None = None
    project: ProjectRef | None = None
    apply: ApplyEntry | None = None
    """The apply in effect when the pod was created."""
    apply_from: str | None = None
    """``run tag`` (featurelineage.apply_run_id), or ``history`` (the last successful apply before the run)."""
    current_apply: ApplyEntry | None = None
    """The project's last apply now, when it is not the one above."""
    registered_versions: list[ModelVersionRef] = Field(default_factory=list)
    """Model versions registered from this run."""
    warnings: list[str] = Field(default_factory=list)


class RunUse(Timed):
    run_id: str
    run_name: str | None = None
    experiment: str | None = None
    status: str | None = None
    start_time: datetime | None = None
    feature_service: str | None = None
    feature_views: list[str] = Field(default_factory=list)
    project: str | None = None
    pod: str | None = None
    job: str | None = None
    url: str | None = None


class FeatureUsage(LineageModel):
    """The answer of ``lineage uses``: registered model versions and recent runs that read a
    feature view or feature service, within one namespace."""

    kind: Literal["FeatureUsage"] = "FeatureUsage"
    name: str
    namespace: str
    object_kind: Literal["featureView", "featureService", "unknown"]
    """What the name is in the namespace's registries (``unknown``: in none of them now)."""
    projects: list[str] = Field(default_factory=list)
    """FeatureStoreProjects whose registry has it."""
    model_versions: list[ModelVersionRef] = Field(default_factory=list)
    runs: list[RunUse] = Field(default_factory=list)
    """Newest first, at most ``--limit``."""
    runs_matched: int = 0
    """All matching runs found, of which ``runs`` shows the newest."""
    warnings: list[str] = Field(default_factory=list)


class ProjectHistory(LineageModel):
    """The answer of ``lineage history``: applies and materializations, newest first."""

    kind: Literal["ProjectHistory"] = "ProjectHistory"
    project: ProjectRef
    entries: list[HistoryEntry] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
