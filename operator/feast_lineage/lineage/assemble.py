"""The lineage answers, assembled from facts the sources returned (pure functions).

One operation can be known to several sources at once: the project's status (its last apply),
its Job (while kept), its MLflow run, and the audit record still pending in status. They share
the audit id, which :func:`merge_entries` joins them on.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar

from feast_lineage.audit import tags as ops_tags
from feast_lineage.lineage import records
from feast_lineage.lineage.answers import (
    ApplyEntry,
    EntityDf,
    FeatureUsage,
    HistoryEntry,
    MaterializationEntry,
    ModelVersionRef,
    PodRef,
    ProjectHistory,
    ProjectRef,
    RunRef,
    RunUse,
    TrainingLineage,
    TrainingRun,
    ViewLineage,
)
from feast_lineage.lineage.records import ModelVersion, Run

Entry = TypeVar("Entry", ApplyEntry, MaterializationEntry)
Obj = Mapping[str, Any]

_EARLIEST = datetime.datetime.min.replace(tzinfo=datetime.UTC)


def _fill(into: Entry, other: Entry) -> Entry:
    """``into`` with its unknown fields taken from ``other``; sources joined."""
    updates: dict[str, Any] = {}
    for name in type(into).model_fields:
        mine: Any = getattr(into, name)
        theirs: Any = getattr(other, name)
        if name == "sources":
            updates[name] = [*mine, *(source for source in theirs if source not in mine)]
        elif mine is None or (mine == [] and theirs):
            updates[name] = theirs
    return into.model_copy(update=updates)


def merge_entries(entries: Iterable[Entry]) -> list[Entry]:
    """One entry per operation, in the order first seen; earlier entries win where sources differ.

    Entries are the same operation when they share an audit id, or (lacking one) a Job name.
    """
    merged: list[Entry] = []
    by_key: dict[tuple[str, str], int] = {}
    for entry in entries:
        keys = [("audit", entry.audit_id)] if entry.audit_id else []
        if entry.job_name:
            keys.append(("job", entry.job_name))
        index = next((by_key[key] for key in keys if key in by_key), None)
        if index is None:
            merged.append(entry)
            index = len(merged) - 1
        else:
            merged[index] = _fill(merged[index], entry)
        for key in [("audit", merged[index].audit_id), ("job", merged[index].job_name)]:
            if key[1]:
                by_key[(key[0], key[1])] = index
    return merged


def newest_first(entries: Iterable[HistoryEntry]) -> list[HistoryEntry]:
    return sorted(entries, key=lambda entry: entry.time or _EARLIEST, reverse=True)


def _is_apply_of(run: Run, namespace: str, name: str) -> bool:
    return (
        run.tag(ops_tags.OPERATION) == "apply"
        and run.tag(records.TAG_NAMESPACE) == namespace
        and run.tag(records.TAG_KIND) in (None, "FeatureStoreProject")
        and run.tag(records.TAG_NAME) == name
    )


def _is_materialization_of(run: Run, namespace: str, name: str) -> bool:
    return (
        (run.tag(ops_tags.OPERATION) or "").startswith("materialize")
        and run.tag(records.TAG_NAMESPACE) == namespace
        and run.tag(records.TAG_OPS_PROJECT) == name
    )


EARLIER_PROJECT_SLACK = datetime.timedelta(seconds=60)
"""Clock difference allowed between the API server and the pods that log runs."""


def earlier_project(run: Run, project_obj: Obj | None) -> bool:
    """Whether ``run`` belongs to an earlier project of the same name (deleted, then created again):
    an apply by its resource uid, a materialization by starting before the project existed."""
    meta = (project_obj or {}).get("metadata") or {}
    if not meta:
        return False
    uid = run.tag(records.TAG_UID)
    if run.tag(ops_tags.OPERATION) == "apply" and uid and meta.get("uid"):
        return uid != str(meta["uid"])
    created = records.from_rfc3339(meta.get("creationTimestamp"))
    return created is not None and run.start is not None and run.start < created - EARLIER_PROJECT_SLACK


def project_operations(
    namespace: str,
    name: str,
    *,
    project_obj: Obj | None,
    apply_jobs: Sequence[Obj],
    materialization_objs: Sequence[Obj],
    ops_runs: Sequence[Run],
    base_url: str | None,
) -> tuple[list[ApplyEntry], list[MaterializationEntry], int]:
    """Every apply and materialization of one project that any source knows, merged, newest first;
    and how many runs of an earlier project of the same name were left out."""
    own_runs = [run for run in ops_runs if not earlier_project(run, project_obj)]
    left_out = len(ops_runs) - len(own_runs)
    ops_runs = own_runs
    applies: list[ApplyEntry] = []
    last_apply = ((project_obj or {}).get("status") or {}).get("lastApply")
    if last_apply:
        applies.append(records.apply_from_status(last_apply))
    pending = records.pending_runs(project_obj) if project_obj else []
    applies += [records.apply_from_run(run, base_url) for run in ops_runs if _is_apply_of(run, namespace, name)]
    applies += [records.apply_from_run(run, base_url) for run in pending if run.tag(ops_tags.OPERATION) == "apply"]
    applies += [records.apply_from_job(job) for job in apply_jobs]

    materializations: list[MaterializationEntry] = []
    own = [obj for obj in materialization_objs if ((obj.get("spec") or {}).get("projectRef") or {}).get("name") == name]
    materializations += [records.materialization_from_object(obj) for obj in own]
    materializations += [
        records.materialization_from_run(run, base_url)
        for run in ops_runs
        if _is_materialization_of(run, namespace, name)
    ]
    for obj in own:
        materializations += [records.materialization_from_run(run, base_url) for run in records.pending_runs(obj)]
    merged_applies = [entry for entry in newest_first(merge_entries(applies)) if isinstance(entry, ApplyEntry)]
    merged_materializations = [
        entry for entry in newest_first(merge_entries(materializations)) if isinstance(entry, MaterializationEntry)
    ]
    return merged_applies, merged_materializations, left_out


def project_ref(namespace: str, name: str, project_obj: Obj | None, cluster_read: bool) -> ProjectRef:
    spec = (project_obj or {}).get("spec") or {}
    feast_project = spec.get("project")
    suffix = (spec.get("mlflow") or {}).get("opsExperimentSuffix", "-feast-ops")
    return ProjectRef(
        namespace=namespace,
        name=name,
        feast_project=feast_project,
        ops_experiment=f"{feast_project}{suffix}" if feast_project else None,
        in_cluster=(project_obj is not None) if cluster_read else None,
    )


def assemble_history(
    project: ProjectRef,
    applies: Sequence[ApplyEntry],
    materializations: Sequence[MaterializationEntry],
    *,
    limit: int | None = None,
    warnings: Sequence[str] = (),
) -> ProjectHistory:
    entries = newest_first([*applies, *materializations])
    return ProjectHistory(project=project, entries=entries[:limit] if limit else entries, warnings=list(warnings))


# -- a training run ------------------------------------------------------------------------------


def features_by_view(run: Run) -> dict[str, list[str]]:
    """``feast.feature_refs`` (``view:feature``) grouped by view, plus views named without refs."""
    grouped: dict[str, list[str]] = {}
    for ref in records.split_names(run.tag(records.TAG_FEATURE_REFS)):
        view, _, feature = ref.partition(":")
        grouped.setdefault(view, [])
        if feature and feature not in grouped[view]:
            grouped[view].append(feature)
    for view in records.split_names(run.tag(records.TAG_FEATURE_VIEWS)):
        grouped.setdefault(view, [])
    return dict(sorted(grouped.items()))


def entity_df(run: Run, artifacts: Sequence[str] | None) -> EntityDf | None:
    rows = run.tag(records.TAG_ENTITY_DF_ROWS)
    logged = artifacts is not None and records.ENTITY_DF_ARTIFACT in artifacts
    found = EntityDf(
        type=run.tag(records.TAG_ENTITY_DF_TYPE),
        rows=int(rows) if rows and rows.isdigit() else None,
        columns=records.split_names(run.tag(records.TAG_ENTITY_DF_COLUMNS)),
        query=run.tag(records.TAG_ENTITY_DF_QUERY),
        start_date=run.tag(records.TAG_START_DATE),
        end_date=run.tag(records.TAG_END_DATE),
        artifact=f"runs:/{run.run_id}/{records.ENTITY_DF_ARTIFACT}" if logged else None,
    )
    return found if found.type or found.artifact else None


def pod_ref(run: Run, pod_obj: Obj | None, job_obj: Obj | None) -> PodRef | None:
    if not run.tag(records.TAG_POD) and not run.tag(records.TAG_NAMESPACE):
        return None
    uid = run.tag(records.TAG_POD_UID)
    pod_meta = (pod_obj or {}).get("metadata") or {}
    same_pod = pod_obj is not None and (uid is None or pod_meta.get("uid") == uid)
    return PodRef(
        namespace=run.tag(records.TAG_NAMESPACE),
        name=run.tag(records.TAG_POD),
        uid=uid,
        container=run.tag(records.TAG_CONTAINER),
        image=run.tag(records.TAG_IMAGE),
        owner_kind=run.tag(records.TAG_OWNER_KIND),
        owner_name=run.tag(records.TAG_OWNER_NAME),
        job=run.tag(records.TAG_JOB),
        role=run.tag(records.TAG_ROLE),
        pod_phase=((pod_obj or {}).get("status") or {}).get("phase") if same_pod else None,
        job_status=records.job_status(job_obj),
    )


def _finished_before(entry: HistoryEntry, moment: datetime.datetime | None) -> bool:
    return entry.outcome == "succeeded" and entry.time is not None and (moment is None or entry.time <= moment)


def view_lineage(
    views: Mapping[str, list[str]],
    applies: Sequence[ApplyEntry],
    materializations: Sequence[MaterializationEntry],
    started: datetime.datetime | None,
) -> list[ViewLineage]:
    """Per view: the newest apply that created or updated it, and the newest materialization of
    it, each finished before ``started``. Both lists are newest first."""
    found = []
    for view, features in views.items():
        changed_by = next(
            (a for a in applies if _finished_before(a, started) and view in records.changed_views(a.changes)),
            None,
        )
        materialized = next(
            (m for m in materializations if _finished_before(m, started) and view in m.feature_views), None
        )
        found.append(
            ViewLineage(name=view, features=features, last_changed_by=changed_by, last_materialization=materialized)
        )
    return found


def apply_in_effect(run: Run, applies: Sequence[ApplyEntry]) -> tuple[ApplyEntry | None, str | None, ApplyEntry | None]:
    """The apply whose registry the pod read, how it was found, and the project's last apply now
    (when it is a different one)."""
    apply_run_id = run.tag(records.TAG_APPLY_RUN_ID)
    in_effect: ApplyEntry | None = None
    how: str | None = None
    if apply_run_id:
        in_effect = next((a for a in applies if a.run is not None and a.run.run_id == apply_run_id), None)
        how = "run tag"
        if in_effect is None:
            revision, commit = run.tag(records.TAG_REVISION), run.tag(records.TAG_GIT_COMMIT)
            in_effect = ApplyEntry(
                outcome="succeeded", revision=revision, commit=commit, run=RunRef(run_id=apply_run_id)
            )
    else:
        in_effect = next((a for a in applies if _finished_before(a, run.start)), None)
        how = "history" if in_effect is not None else None
    if in_effect is not None and in_effect.revision is None and run.tag(records.TAG_REVISION):
        in_effect = in_effect.model_copy(update={"revision": run.tag(records.TAG_REVISION)})
    latest = next((a for a in applies if a.outcome == "succeeded"), None)
    same = latest is None or (
        in_effect is not None
        and (
            (latest.audit_id is not None and latest.audit_id == in_effect.audit_id)
            or (latest.run is not None and in_effect.run is not None and latest.run.run_id == in_effect.run.run_id)
        )
    )
    return in_effect, how, None if same else latest


def training_run(run: Run, experiment: str | None, base_url: str | None) -> TrainingRun:
    return TrainingRun(
        run_id=run.run_id,
        run_name=run.run_name,
        experiment_id=run.experiment_id,
        experiment=experiment,
        status=run.status,
        start_time=run.start,
        end_time=run.end,
        user=run.user,
        url=records.run_url(base_url, run.experiment_id, run.run_id),
    )


def assemble_training(
    run: Run,
    *,
    experiment: str | None,
    base_url: str | None,
    model: ModelVersion | None = None,
    registered: Sequence[ModelVersion] = (),
    artifacts: Sequence[str] | None = None,
    project: ProjectRef | None = None,
    applies: Sequence[ApplyEntry] = (),
    materializations: Sequence[MaterializationEntry] = (),
    pod_obj: Obj | None = None,
    job_obj: Obj | None = None,
    warnings: Sequence[str] = (),
) -> TrainingLineage:
    notes = list(warnings)
    model_service = model.tags.get(records.TAG_FEATURE_SERVICE) if model is not None else None
    run_service = run.tag(records.TAG_FEATURE_SERVICE)
    service = model_service or run_service
    service_from = "model version tag" if model_service else "run tag" if run_service else None
    if model_service and run_service and model_service != run_service:
        notes.append(f"the model version is tagged with feature service {model_service}, its run with {run_service}")
    views = features_by_view(run)
    if not views:
        notes.append(
            "the run has no feast.feature_views tag: no feature retrieval happened inside it "
            "with the project's client configuration"
        )
    if run.tag(records.TAG_POD) is None:
        notes.append("the run has no k8s.* tags: it was not started in a pod the operator configured")
    in_effect, how, current = apply_in_effect(run, applies)
    refs = [f"{view}:{feature}" for view, features in views.items() for feature in features]
    return TrainingLineage(
        kind="ModelLineage" if model is not None else "RunLineage",
        model=model.ref() if model is not None else None,
        run=training_run(run, experiment, base_url),
        feature_service=service,
        feature_service_from=service_from,
        features=refs,
        feature_views=view_lineage(views, applies, materializations, run.start),
        entity_df=entity_df(run, artifacts),
        pod=pod_ref(run, pod_obj, job_obj),
        project=project,
        apply=in_effect,
        apply_from=how,
        current_apply=current,
        registered_versions=[version.ref() for version in registered],
        warnings=notes,
    )


# -- who uses a feature view or service ------------------------------------------------------------


ObjectKind = Literal["featureView", "featureService", "unknown"]


def object_kind(name: str, projects: Sequence[Obj]) -> tuple[ObjectKind, list[str]]:
    """What ``name`` is in the registries of ``projects`` (their status), and which have it."""
    services = [p for p in projects if name in ((p.get("status") or {}).get("featureServices") or [])]
    views = [p for p in projects if name in ((p.get("status") or {}).get("featureViews") or [])]
    kind: ObjectKind = "featureService" if services else "featureView" if views else "unknown"
    having = services or views
    return kind, sorted(str((p.get("metadata") or {}).get("name")) for p in having)


def run_uses(run: Run, name: str, kind: str) -> bool:
    uses_service = run.tag(records.TAG_FEATURE_SERVICE) == name
    uses_view = name in records.split_names(run.tag(records.TAG_FEATURE_VIEWS))
    if kind == "featureService":
        return uses_service
    if kind == "featureView":
        return uses_view
    return uses_service or uses_view


def assemble_usage(
    name: str,
    namespace: str,
    *,
    projects: Sequence[Obj],
    runs: Sequence[Run],
    versions: Sequence[ModelVersion],
    version_runs: Mapping[str, Run],
    experiments: Mapping[str, str],
    base_url: str | None,
    project_filter: str | None = None,
    limit: int = 20,
    warnings: Sequence[str] = (),
) -> FeatureUsage:
    """Runs in ``namespace`` that read ``name``, and the model versions registered from them or
    tagged with it (when it is a feature service) whose run is in ``namespace``."""
    candidates = [
        p for p in projects if project_filter is None or (p.get("metadata") or {}).get("name") == project_filter
    ]
    kind, having = object_kind(name, candidates)

    def in_scope(run: Run) -> bool:
        return run.tag(records.TAG_NAMESPACE) == namespace and (
            project_filter is None or run.tag(records.TAG_PROJECT) == project_filter
        )

    matched = sorted(
        (run for run in runs if in_scope(run) and run_uses(run, name, kind)),
        key=lambda run: run.start or _EARLIEST,
        reverse=True,
    )
    matched_ids = {run.run_id for run in matched}
    chosen: dict[tuple[str, str], ModelVersionRef] = {}
    for version in versions:
        run = version_runs.get(version.run_id or "")
        by_run = version.run_id in matched_ids
        by_tag = (
            kind != "featureView"
            and version.tags.get(records.TAG_FEATURE_SERVICE) == name
            and run is not None
            and in_scope(run)
        )
        if by_run or by_tag:
            chosen[(version.name, version.version)] = version.ref()
    ordered = sorted(chosen.values(), key=lambda v: (v.name, -int(v.version) if v.version.isdigit() else 0))
    return FeatureUsage(
        name=name,
        namespace=namespace,
        object_kind=kind,
        projects=having,
        model_versions=ordered,
        runs=[_run_use(run, experiments, base_url) for run in matched[:limit]],
        runs_matched=len(matched),
        warnings=list(warnings),
    )


def _run_use(run: Run, experiments: Mapping[str, str], base_url: str | None) -> RunUse:
    return RunUse(
        run_id=run.run_id,
        run_name=run.run_name,
        experiment=experiments.get(run.experiment_id or ""),
        status=run.status,
        start_time=run.start,
        feature_service=run.tag(records.TAG_FEATURE_SERVICE),
        feature_views=records.split_names(run.tag(records.TAG_FEATURE_VIEWS)),
        project=run.tag(records.TAG_PROJECT),
        pod=run.tag(records.TAG_POD),
        job=run.tag(records.TAG_JOB),
        url=records.run_url(base_url, run.experiment_id, run.run_id),
    )
