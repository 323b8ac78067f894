"""Which reads each lineage question needs, and how a source that cannot be read is reported.

Every function takes its sources as arguments (the readers of :mod:`.sources`, or fakes in
tests). MLflow not answering ends the question (:class:`SourceUnavailable`); the cluster not
answering, where MLflow alone still answers, leaves a warning and marks the answer incomplete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from feast_lineage.audit import tags as ops_tags
from feast_lineage.lineage import assemble, records
from feast_lineage.lineage.answers import (
    ApplyEntry,
    LineageModel,
    MaterializationEntry,
    ProjectRef,
)
from feast_lineage.lineage.records import ModelVersion, Run
from feast_lineage.lineage.sources import SourceUnavailable, quote, tag_equals

Obj = dict[str, Any]
T = TypeVar("T")

MAX_OPS_RUNS = 5000
"""Operation runs read per project; older ones are left out with a warning."""
MAX_USE_RUNS = 10000
"""Runs read per ``uses`` question; older ones are left out with a warning."""
MAX_VERSION_RUN_LOOKUPS = 100
_IN_CHUNK = 50


class NotFound(Exception):
    """What the question names does not exist (in MLflow, or in the cluster and MLflow)."""


class Mlflow(Protocol):
    base_url: str

    def model_version(self, name: str, version: str) -> ModelVersion | None: ...
    def model_version_by_alias(self, name: str, alias: str) -> ModelVersion | None: ...
    def run(self, run_id: str) -> Run | None: ...
    def experiment_name(self, experiment_id: str | None) -> str | None: ...
    def experiment_id(self, name: str) -> str | None: ...
    def experiments(self) -> dict[str, str]: ...
    def search_runs(
        self, experiment_ids: Sequence[str], filter_string: str, max_runs: int
    ) -> tuple[list[Run], bool]: ...
    def search_model_versions(self, filter_string: str, max_versions: int = ...) -> list[ModelVersion]: ...
    def artifacts(self, run_id: str) -> list[str]: ...


class Cluster(Protocol):
    def project(self, namespace: str, name: str) -> Obj | None: ...
    def projects(self, namespace: str) -> list[Obj]: ...
    def materialization_jobs(self, namespace: str) -> list[Obj]: ...
    def apply_jobs(self, namespace: str, project: str) -> list[Obj]: ...
    def job(self, namespace: str, name: str) -> Obj | None: ...
    def pod(self, namespace: str, name: str) -> Obj | None: ...


@dataclass
class Result:
    answer: LineageModel
    incomplete: bool
    """A source could not be read; the answer's warnings say which and what is missing."""


class _Notes:
    """Warnings, and whether one of them means part of the answer is missing."""

    def __init__(self, cluster_problem: str | None = None) -> None:
        self.warnings: list[str] = []
        self.incomplete = False
        if cluster_problem:
            self.missing(cluster_problem)

    def missing(self, message: str) -> None:
        self.incomplete = True
        if message not in self.warnings:
            self.warnings.append(message)

    def note(self, message: str) -> None:
        self.warnings.append(message)


def _cluster_read(cluster: Cluster | None, notes: _Notes, read: Callable[[Cluster], T], default: T) -> T:
    if cluster is None:
        return default
    try:
        return read(cluster)
    except SourceUnavailable as error:
        notes.missing(f"cluster not read: {error}")
        return default


@dataclass
class _ProjectFacts:
    project: ProjectRef
    project_obj: Obj | None
    applies: list[ApplyEntry]
    materializations: list[MaterializationEntry]
    found_anything: bool


def _project_facts(
    namespace: str,
    name: str,
    mlflow: Mlflow | None,
    cluster: Cluster | None,
    notes: _Notes,
    *,
    feast_project: str | None = None,
    extra_run_ids: Sequence[str] = (),
) -> _ProjectFacts:
    cluster_ok = cluster is not None
    project_obj: Obj | None = None
    apply_jobs: list[Obj] = []
    materialization_objs: list[Obj] = []
    if cluster is not None:
        try:
            project_obj = cluster.project(namespace, name)
            apply_jobs = cluster.apply_jobs(namespace, name)
            materialization_objs = cluster.materialization_jobs(namespace)
        except SourceUnavailable as error:
            notes.missing(f"cluster not read: {error}")
            cluster_ok = False
    project = assemble.project_ref(namespace, name, project_obj, cluster_ok)
    if project.feast_project is None and feast_project:
        project = project.model_copy(
            update={"feast_project": feast_project, "ops_experiment": f"{feast_project}-feast-ops"}
        )
    ops_runs: list[Run] = []
    if mlflow is not None:
        ops_runs = _ops_runs(mlflow, project, notes)
        known = {run.run_id for run in ops_runs}
        for run_id in extra_run_ids:
            if run_id and run_id not in known:
                run = mlflow.run(run_id)
                if run is not None:
                    ops_runs.append(run)
    if project.feast_project is None:
        # A project gone from the cluster (or not read) is still named by its runs.
        named = next((run.tag(ops_tags.PROJECT) for run in ops_runs if run.tag(ops_tags.PROJECT)), None)
        project = project.model_copy(update={"feast_project": named})
    base_url = mlflow.base_url if mlflow is not None else None
    applies, materializations, left_out = assemble.project_operations(
        namespace,
        name,
        project_obj=project_obj,
        apply_jobs=apply_jobs,
        materialization_objs=materialization_objs,
        ops_runs=ops_runs,
        base_url=base_url,
    )
    if left_out:
        notes.note(
            f"{left_out} operation run(s) in MLflow belong to an earlier FeatureStoreProject "
            f"{namespace}/{name} (deleted and created again) and are left out"
        )
    return _ProjectFacts(
        project, project_obj, applies, materializations, bool(project_obj or applies or materializations)
    )


def _ops_runs(mlflow: Mlflow, project: ProjectRef, notes: _Notes) -> list[Run]:
    """The project's apply and materialization runs: in its ops experiment when known, else in any."""
    if project.ops_experiment:
        experiment = mlflow.experiment_id(project.ops_experiment)
        experiment_ids = [experiment] if experiment else []
    else:
        experiment_ids = list(mlflow.experiments())
    in_namespace = tag_equals(records.TAG_NAMESPACE, project.namespace)
    applies = f"{tag_equals(records.TAG_NAME, project.name)} AND {tag_equals(ops_tags.OPERATION, 'apply')}"
    filters = [
        f"{in_namespace} AND {applies}",
        f"{in_namespace} AND {tag_equals(records.TAG_OPS_PROJECT, project.name)}",
    ]
    runs: list[Run] = []
    for filter_string in filters:
        found, truncated = mlflow.search_runs(experiment_ids, filter_string, MAX_OPS_RUNS)
        runs += found
        if truncated:
            notes.note(f"only the newest {MAX_OPS_RUNS} operation runs of each kind were read")
    return runs


# -- model and run ---------------------------------------------------------------------------------


def model_lineage(
    name: str,
    version: str | None,
    alias: str | None,
    mlflow: Mlflow,
    cluster: Cluster | None,
    cluster_problem: str | None = None,
) -> Result:
    if alias:
        found = mlflow.model_version_by_alias(name, alias)
    elif version == "latest":
        versions = mlflow.search_model_versions(f"name = {quote(name)}")
        found = max(versions, key=lambda v: int(v.version) if v.version.isdigit() else -1, default=None)
    else:
        found = mlflow.model_version(name, version or "")
    if found is None:
        raise NotFound(
            f"model version {name}@{alias} not found" if alias else f"model version {name}/{version} not found"
        )
    notes = _Notes(cluster_problem)
    run = mlflow.run(found.run_id) if found.run_id else None
    if run is None:
        notes.note(f"the model version's run {found.run_id or '(none)'} is not in MLflow (deleted?)")
        run = Run(run_id=found.run_id or "")
    return _training(run, mlflow, cluster, notes, model=found)


def run_lineage(run_id: str, mlflow: Mlflow, cluster: Cluster | None, cluster_problem: str | None = None) -> Result:
    run = mlflow.run(run_id)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    return _training(run, mlflow, cluster, _Notes(cluster_problem))


def _training(
    run: Run, mlflow: Mlflow, cluster: Cluster | None, notes: _Notes, model: ModelVersion | None = None
) -> Result:
    experiment = mlflow.experiment_name(run.experiment_id)
    artifacts: list[str] | None = None
    registered: list[ModelVersion] = []
    if run.run_id and run.experiment_id:
        try:
            artifacts = mlflow.artifacts(run.run_id)
        except SourceUnavailable as error:
            notes.note(f"the run's artifacts could not be listed: {error}")
        registered = [
            version
            for version in mlflow.search_model_versions(f"run_id = {quote(run.run_id)}")
            if model is None or (version.name, version.version) != (model.name, model.version)
        ]
    namespace, project_name = run.tag(records.TAG_NAMESPACE), run.tag(records.TAG_PROJECT)
    project: ProjectRef | None = None
    applies: list[ApplyEntry] = []
    materializations: list[MaterializationEntry] = []
    pod_obj = job_obj = None
    if namespace and project_name:
        facts = _project_facts(
            namespace,
            project_name,
            mlflow,
            cluster,
            notes,
            feast_project=run.tag(records.TAG_FEAST_PROJECT_OF_POD),
            extra_run_ids=[run.tag(records.TAG_APPLY_RUN_ID) or ""],
        )
        project, applies, materializations = facts.project, facts.applies, facts.materializations
        pod_name, job_name = run.tag(records.TAG_POD), run.tag(records.TAG_JOB)
        if pod_name:
            pod_obj = _cluster_read(cluster, notes, lambda c: c.pod(namespace, pod_name), None)
        if job_name:
            job_obj = _cluster_read(cluster, notes, lambda c: c.job(namespace, job_name), None)
    answer = assemble.assemble_training(
        run,
        experiment=experiment,
        base_url=mlflow.base_url,
        model=model,
        registered=registered,
        artifacts=artifacts,
        project=project,
        applies=applies,
        materializations=materializations,
        pod_obj=pod_obj,
        job_obj=job_obj,
        warnings=notes.warnings,
    )
    return Result(answer, notes.incomplete)


# -- history ---------------------------------------------------------------------------------------


def project_history(
    namespace: str,
    name: str,
    mlflow: Mlflow | None,
    cluster: Cluster | None,
    *,
    limit: int | None = None,
    mlflow_problem: str | None = None,
    cluster_problem: str | None = None,
) -> Result:
    notes = _Notes(cluster_problem)
    if mlflow_problem:
        notes.missing(mlflow_problem)
    if mlflow is not None:
        try:
            facts = _project_facts(namespace, name, mlflow, cluster, notes)
        except SourceUnavailable as error:
            notes.missing(f"MLflow not read: {error}")
            facts = _project_facts(namespace, name, None, cluster, notes)
    else:
        facts = _project_facts(namespace, name, None, cluster, notes)
    if not facts.found_anything and not notes.incomplete:
        raise NotFound(f"FeatureStoreProject {namespace}/{name} not found, and MLflow holds no operation of it")
    answer = assemble.assemble_history(
        facts.project, facts.applies, facts.materializations, limit=limit, warnings=notes.warnings
    )
    return Result(answer, notes.incomplete)


# -- uses ------------------------------------------------------------------------------------------


def feature_usage(
    name: str,
    namespace: str,
    mlflow: Mlflow,
    cluster: Cluster | None,
    *,
    project_filter: str | None = None,
    limit: int = 20,
    cluster_problem: str | None = None,
) -> Result:
    quote(name)  # refuses names the filter grammar cannot hold, before any read
    notes = _Notes(cluster_problem)
    no_projects: list[Obj] = []
    projects = _cluster_read(cluster, notes, lambda c: c.projects(namespace), no_projects)
    kind, _ = assemble.object_kind(
        name, [p for p in projects if project_filter is None or p["metadata"]["name"] == project_filter]
    )
    experiments = mlflow.experiments()
    in_namespace = tag_equals(records.TAG_NAMESPACE, namespace)
    filters = []
    if kind != "featureService":
        # LIKE matches more than the name ("_" is a wildcard, "a" is in "ab"): the exact test follows.
        filters.append(f"{in_namespace} AND tags.`{records.TAG_FEATURE_VIEWS}` LIKE {quote('%' + name + '%')}")
    if kind != "featureView":
        filters.append(f"{in_namespace} AND {tag_equals(records.TAG_FEATURE_SERVICE, name)}")
    runs: dict[str, Run] = {}
    for filter_string in filters:
        found, truncated = mlflow.search_runs(list(experiments), filter_string, MAX_USE_RUNS)
        runs.update((run.run_id, run) for run in found)
        if truncated:
            notes.note(f"only the newest {MAX_USE_RUNS} runs were read")
    matching = [run for run in runs.values() if assemble.run_uses(run, name, kind)]
    versions: dict[tuple[str, str], ModelVersion] = {}
    ids = sorted(run.run_id for run in matching)
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ", ".join(quote(run_id) for run_id in ids[start : start + _IN_CHUNK])
        for version in mlflow.search_model_versions(f"run_id IN ({chunk})"):
            versions[(version.name, version.version)] = version
    version_runs: dict[str, Run] = dict(runs)
    if kind != "featureView":
        tagged = mlflow.search_model_versions(tag_equals(records.TAG_FEATURE_SERVICE, name))
        unknown = sorted({v.run_id for v in tagged if v.run_id and v.run_id not in version_runs})
        if len(unknown) > MAX_VERSION_RUN_LOOKUPS:
            notes.note(
                f"{len(unknown)} model versions tagged {name} come from runs outside this namespace's "
                f"search; only {MAX_VERSION_RUN_LOOKUPS} of them were checked"
            )
        for run_id in unknown[:MAX_VERSION_RUN_LOOKUPS]:
            run = mlflow.run(run_id)
            if run is not None:
                version_runs[run_id] = run
        for version in tagged:
            versions.setdefault((version.name, version.version), version)
    answer = assemble.assemble_usage(
        name,
        namespace,
        projects=projects,
        runs=list(runs.values()),
        versions=list(versions.values()),
        version_runs=version_runs,
        experiments=experiments,
        base_url=mlflow.base_url,
        project_filter=project_filter,
        limit=limit,
        warnings=notes.warnings,
    )
    if (
        answer.object_kind == "unknown"
        and not answer.runs_matched
        and not answer.model_versions
        and not notes.incomplete
    ):
        raise NotFound(
            f"{name} is no feature view or feature service of a project in namespace {namespace}, "
            "and no run or model version there uses it"
        )
    return Result(answer, notes.incomplete)
