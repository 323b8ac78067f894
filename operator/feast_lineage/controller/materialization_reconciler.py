"""Reconcile one MaterializationJob: wait, create its Job, and record the outcome, exactly once."""

from __future__ import annotations

import contextlib
import datetime
import logging
import uuid

from pydantic import ValidationError

from feast_lineage import contract
from feast_lineage.api import (
    FEATURE_STORE_PROJECT_KIND,
    FEATURE_STORE_PROJECT_PLURAL,
    MATERIALIZATION_JOB_KIND,
    MATERIALIZATION_JOB_PLURAL,
    FeatureStoreProject,
    FeatureStoreProjectStatus,
    LastApply,
    LastMaterialization,
    MaterializationJob,
    MaterializationJobSpec,
    MaterializationJobStatus,
    Provenance,
    validation_message,
)
from feast_lineage.controller import metrics
from feast_lineage.controller.backoff import Backoff
from feast_lineage.controller.errors import stalled_by
from feast_lineage.controller.events import emit, emit_transitions, report_distrusted
from feast_lineage.controller.kube import Kube, Obj, OwnershipConflict, StatusConflict, controlled_by, read
from feast_lineage.controller.locks import ObjectLocks
from feast_lineage.controller.logs import object_fields
from feast_lineage.controller.outcome_audit import operations_logged, outcome_record
from feast_lineage.controller.pass_log import DELETING, FINISHED, GONE, OK, STALLED, logged_pass
from feast_lineage.controller.project_cache import ProjectCache, SnapshotIndex
from feast_lineage.controller.project_inputs import learn_secrets
from feast_lineage.controller.project_models import ProjectModels
from feast_lineage.controller.project_reconciler import runner_config_map_name
from feast_lineage.controller.settings import OperatorSettings
from feast_lineage.domain import labels
from feast_lineage.domain.apply_plan import RepoIdentity
from feast_lineage.domain.materialization_state import (
    TERMINAL,
    MaterializationDecision,
    MaterializationObservation,
    Peer,
    applied_revision,
    decide_materialization,
    holds_on_copy,
    lists_every_view,
    stall_run,
    zero_row_views,
)
from feast_lineage.domain.provenance import (
    TAG_APPLY_AUDIT_ID,
    TAG_APPLY_JOB,
    TAG_APPLY_RUN_ID,
    TAG_REVISION,
    provenance_tags,
    triggered_by,
)
from feast_lineage.domain.runner_job import RunnerJobRequest, render_runner_job
from feast_lineage.domain.runner_outcome import JobObservation, observe_job
from feast_lineage.domain.status_owners import PROJECT_LAST_MATERIALIZATION, RUN_RECONCILER
from feast_lineage.domain.unlogged_outcome import run_needs_record
from feast_lineage.redaction import redact
from feast_lineage.timestamps import parse_rfc3339, rfc3339, utc_now

log = logging.getLogger(__name__)
PASS_ATTEMPTS = 3


def materialize_job_name(name: str) -> str:
    return labels.child_name(name, "materialize")


def creating_manager(metadata: Obj) -> str | None:
    """The field manager that created the object (kubectl, argocd-controller, kustomize-controller, ...)."""
    # A create is recorded as the earliest "Update" (or "Apply") of the main resource. The operator's
    # own writes (the run finalizer, the settled label) are never the creator's, even in the same second.
    entries = [
        e
        for e in metadata.get("managedFields") or []
        if not e.get("subresource") and e.get("manager") and e.get("manager") != labels.OPERATOR_FIELD_MANAGER
    ]
    entries.sort(key=lambda e: str(e.get("time", "")))
    return str(entries[0]["manager"]) if entries else None


def creator(metadata: Obj) -> dict[str, str]:
    """Who created the object: authenticated at admission when the webhook recorded it, else self-reported."""
    recorded = (metadata.get("annotations") or {}).get(labels.ANNOTATION_CREATOR)
    if recorded:
        return {"creator": str(recorded), "creatorSource": "admission"}
    manager = creating_manager(metadata)
    return {"creator": manager, "creatorSource": "managedFields"} if manager else {}


def peer_summary(name: str, meta: Obj, spec: Obj, status: Obj) -> Obj:
    """What the index keeps of each run: enough to tell which runs share feature views. A run that
    names its views is also kept as the :class:`Peer` every pass of its project's other runs reads
    (``peer``): made once per run event, not once per peer and pass (a burst of N runs made N²)."""
    views = list(status.get("featureViews") or spec.get("featureViews") or [])
    created, phase = meta.get("creationTimestamp", ""), str(status.get("phase") or "")
    summary = {
        "name": name,
        "created": created,
        "scheduledTime": (meta.get("annotations") or {}).get(labels.ANNOTATION_SCHEDULED_TIME),
        "featureViews": views,
        "phase": phase,
    }
    if views:
        summary["peer"] = Peer(name, created, frozenset(views), phase)
    return summary


def kept_in_index(meta: Obj, status: Obj) -> bool:
    """Whether a run's summary is worth its memory: an unfinished run can hold up others, and the
    schedule counts and prunes the runs it made. Finished runs of anyone else (the history, which
    grows without bound) are needed by no decision."""
    scheduled = (meta.get("annotations") or {}).get(labels.ANNOTATION_SCHEDULED_TIME) is not None
    return scheduled or status.get("phase") not in TERMINAL


def file_registry(project: Obj | None) -> bool:
    registry = ((project or {}).get("spec") or {}).get("featureStore", {}).get("registry", {})
    return bool(project) and registry.get("registryType", "file") == "file"


def to_peers(summaries: list[Obj], status: FeatureStoreProjectStatus) -> list[Peer]:
    all_views = status.feature_views if status.materialized_feature_views is None else status.materialized_feature_views
    # One set shared by every peer that names no views: a project lists hundreds, a burst has hundreds of peers.
    every_view = frozenset(all_views)
    listed = lists_every_view(status)
    return [
        s.get("peer")
        or Peer(
            s["name"],
            s["created"],
            frozenset(s["featureViews"]) if s["featureViews"] else every_view,
            s["phase"],
            every=not s["featureViews"] and not listed,
        )
        for s in summaries
    ]


def _raw_project_ref(body: Obj) -> str | None:
    """spec.projectRef.name of a run whose spec did not validate."""
    ref = ((body.get("spec") or {}).get("projectRef") or {}).get("name")
    return ref if isinstance(ref, str) and ref else None


class JobExists(Exception):
    """A pass that took the run's Job to be missing found it there: the pass is done again on a fresh read."""


class MaterializationReconciler:
    def __init__(
        self,
        kube: Kube,
        settings: OperatorSettings,
        locks: ObjectLocks,
        projects: ProjectCache | None = None,
        snapshots: SnapshotIndex | None = None,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.locks = locks
        # The watch's copies of projects and their snapshots (see project_cache); without them, GETs.
        self.projects = projects
        self.snapshots = snapshots
        # The projects' models, validated once per project version rather than several times a pass.
        self.models = ProjectModels()
        # Waiting runs are looked at less and less often, and at once when a run of their project ends.
        self.waiting = Backoff(settings.active_poll_seconds, settings.resync_seconds / 4)

    @logged_pass(MATERIALIZATION_JOB_KIND)
    def reconcile(self, namespace: str, name: str, peers: list[Obj], seen: Obj | None = None) -> str:
        """One pass; ``peers`` are summaries of the project's runs (from the operator's index). Returns
        how it ended (:mod:`.pass_log`).

        ``seen`` is the run as the watch delivered it: the first attempt starts from it rather than a
        GET. A stale copy costs nothing wrong: the Job's name is deterministic, and the status write
        carries its resourceVersion, so the API server refuses it and the next attempt reads afresh.
        """
        with self.locks.hold(MATERIALIZATION_JOB_KIND, namespace, name):
            for attempt in range(PASS_ATTEMPTS):
                fresh = attempt > 0 or seen is None
                body = self.kube.get_custom(MATERIALIZATION_JOB_PLURAL, namespace, name) if fresh else seen
                if body is None:
                    return GONE
                if body["metadata"].get("deletionTimestamp"):
                    return DELETING
                if (body.get("status") or {}).get("phase") in TERMINAL:
                    return FINISHED
                # A run no pass has looked at has no Job yet, unless a pass died between creating it and
                # writing status: its creation is refused then (the name is fixed), and the next
                # attempt reads the run and its Job afresh.
                unseen = not fresh and not (body.get("status") or {}).get("phase")
                try:
                    self._reconcile(body, peers, job_unknown=unseen)
                except (StatusConflict, JobExists):
                    if attempt + 1 < PASS_ATTEMPTS:
                        continue
                    metrics.RECONCILES.labels(MATERIALIZATION_JOB_KIND, "error").inc()
                    raise
                except Exception as error:
                    metrics.RECONCILES.labels(MATERIALIZATION_JOB_KIND, "error").inc()
                    if not self._stall(body, error):
                        raise
                    return STALLED
                metrics.RECONCILES.labels(MATERIALIZATION_JOB_KIND, "ok").inc()
                return OK
            raise AssertionError("unreachable: the last attempt returns or raises")

    def _stall(self, body: Obj, error: Exception) -> bool:
        """A pass that fails the same way each time: Stalled with the reason rather than a traceback loop."""
        problem = stalled_by(error)
        if problem is None:
            return False
        meta = body["metadata"]
        status = MaterializationJobStatus.from_k8s(body.get("status"))
        decision = stall_run(status, meta.get("generation"), problem.reason, problem.message, utc_now())
        try:
            self.kube.write_status(MATERIALIZATION_JOB_PLURAL, body, decision.status, RUN_RECONCILER)
        except Exception:
            return False
        emit_transitions(self.kube, body, decision.transitions)
        if decision.transitions:
            log.warning(
                "stalled: %s",
                problem.message,
                extra=object_fields(meta["namespace"], meta["name"], meta.get("generation")),
            )
        return True

    def poll_waiting(self, namespace: str, name: str, peers: list[Obj]) -> None:
        """A pass for a waiting run, once its backoff has passed."""
        if self.waiting.due(f"{namespace}/{name}"):
            self.reconcile(namespace, name, peers)

    def _track_waiting(self, namespace: str, name: str, decision: MaterializationDecision, peers: list[Obj]) -> None:
        key = f"{namespace}/{name}"
        if decision.status.phase == "Pending":
            if decision.status.reason == "QueueFull":
                self.waiting.defer(key, self.settings.resync_seconds)
            else:
                self.waiting.failed(key)
        else:
            self.waiting.forget(key)
        if decision.finished is not None:
            for peer in peers:
                self.waiting.forget(f"{namespace}/{peer['name']}")

    def _reconcile(self, body: Obj, peer_summaries: list[Obj], job_unknown: bool = False) -> None:
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        now = utc_now()
        spec, invalid = None, None
        try:
            spec = MaterializationJob.model_validate(
                {k: v for k, v in body.items() if k in ("apiVersion", "kind", "metadata", "spec")}
            ).spec
        except ValidationError as error:
            invalid = validation_message(error)
        project, copied = None, False
        job_name = materialize_job_name(name)
        job_observation = None
        if spec is not None:
            project, copied = self._project(namespace, spec.project_ref.name)
            try:
                job = (
                    None
                    if job_unknown
                    else self.kube.owned_job(job_name, namespace, meta["uid"], f"MaterializationJob {name}")
                )
            except OwnershipConflict as conflict:
                job, invalid = None, str(conflict)
                spec = None
            if job is not None:
                job_observation = observe_job(job, self.kube.job_pods(job))
        observation, decision = self._decide(body, spec, invalid, project, job_observation, peer_summaries, now)
        if copied and not holds_on_copy(observation, decision):
            # A verdict about the project's state now: made on what the API server says now.
            assert spec is not None
            project = self.kube.get_custom(FEATURE_STORE_PROJECT_PLURAL, namespace, spec.project_ref.name)
            observation, decision = self._decide(body, spec, invalid, project, job_observation, peer_summaries, now)
        if job_observation is not None and job_observation.finished and project is not None:
            self._learn_secrets(project)
        ended = decision.status.phase in TERMINAL  # a pass starts only on a run that has not ended
        if ended and project is not None and run_needs_record(decision.status, decision.finished):
            self._keep_outcome_record(body, project, spec, decision.status, job_name, now)
        self.kube.write_status(MATERIALIZATION_JOB_PLURAL, body, decision.status, RUN_RECONCILER)
        emit_transitions(self.kube, body, decision.transitions)
        self._track_waiting(namespace, name, decision, peer_summaries)
        if decision.finished is not None:
            report_distrusted(self.kube, body, decision.finished)
        if ended:
            # Counted once the status that records the outcome is written: whatever decided it, the
            # runner's result, the Job's deadline or the operator before any Job existed.
            result = decision.finished.result if decision.finished is not None else None
            duration = result.duration_seconds if result is not None else None
            project_name = spec.project_ref.name if spec is not None else _raw_project_ref(body)
            if project_name:
                self._record_on_project(namespace, project_name, name, decision.status, duration)
            empty = zero_row_views(decision.status)
            if decision.status.phase == "Succeeded" and empty:
                emit(
                    self.kube,
                    body,
                    "Warning",
                    "NoRowsWritten",
                    f"no rows written for feature view(s) {', '.join(empty)}: the window had no data for them",
                )

    def _project(self, namespace: str, name: str) -> tuple[Obj | None, bool]:
        """The run's project: the watch's copy when there is one (``True``), else a fresh read."""
        if self.projects is not None and (cached := self.projects.get(namespace, name)) is not None:
            return cached, True
        return self.kube.get_custom(FEATURE_STORE_PROJECT_PLURAL, namespace, name), False

    def _decide(
        self,
        body: Obj,
        spec: MaterializationJobSpec | None,
        invalid: str | None,
        project: Obj | None,
        job_observation: JobObservation | None,
        peer_summaries: list[Obj],
        now: datetime.datetime,
    ) -> tuple[MaterializationObservation, MaterializationDecision]:
        """What the run needs next, and its Job created if that is to start it."""
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        job_name = materialize_job_name(name)
        status = MaterializationJobStatus.from_k8s(body.get("status"))
        project_status = self.models.status(project) if project is not None else None
        peers: list[Peer] = []
        revision_problem = None
        if job_observation is None and project is not None and project_status is not None and spec is not None:
            peers = to_peers(peer_summaries, project_status)
            revision_problem = self._revision_problem(project, project_status)
        if status.job_name is None:
            status.job_name = job_name
        if status.provenance is None:
            status.provenance = self._provenance(body, project, project_status)
        exclusive = spec is not None and job_observation is None and file_registry(project)
        # With a file registry a run and an apply never overlap: deciding to start and starting happen
        # under the project's lock, under which the project reconciler checks for runs before it applies.
        guard = (
            self.locks.hold(FEATURE_STORE_PROJECT_KIND, namespace, spec.project_ref.name)
            if exclusive and spec is not None
            else contextlib.nullcontext()
        )
        with guard:
            apply_running = None
            if exclusive and spec is not None:
                apply_running = self._running_apply(namespace, spec.project_ref.name)
            observation = MaterializationObservation(
                name=name,
                created=meta.get("creationTimestamp", ""),
                generation=meta.get("generation"),
                status=status,
                now=now,
                spec=spec,
                invalid=invalid,
                project=project,
                project_status=project_status,
                job=job_observation,
                peers=peers,
                one_at_a_time=file_registry(project),
                apply_running=apply_running,
                max_waiting=self.settings.max_waiting_runs,
                revision_problem=revision_problem,
            )
            decision = decide_materialization(observation)
            if decision.create_job:
                assert spec is not None and project is not None
                audit_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{meta['uid']}/{job_name}"))
                decision.status.audit_id = audit_id
                assert project_status is not None
                self._create_job(body, spec, project, project_status, decision.status, job_name, audit_id, now)
        return observation, decision

    def _revision_problem(self, project: Obj, project_status: FeatureStoreProjectStatus) -> str | None:
        """Why the revision a run would start on cannot be mounted: its snapshot is gone (deleted by hand)."""
        applied = applied_revision(project_status)
        if applied is None or not applied.snapshot:
            return None
        meta = project["metadata"]
        if self.snapshots is not None and self.snapshots.owned_by(meta["namespace"], applied.snapshot, meta["uid"]):
            return None
        # Not seen by the watch (not yet, or gone): only a fresh read may call it missing.
        snapshot = read(self.kube.core.read_namespaced_config_map, applied.snapshot, meta["namespace"])
        if snapshot is not None and controlled_by(snapshot, meta["uid"]):
            return None
        return (
            f"the snapshot ConfigMap {applied.snapshot} of revision {applied.revision} (the project's last "
            "successful apply) is missing or not the project's (the project makes it again while its repo "
            "still has that content)"
        )

    def _keep_outcome_record(
        self,
        body: Obj,
        project_body: Obj,
        spec: MaterializationJobSpec | None,
        status: MaterializationJobStatus,
        job_name: str,
        now: datetime.datetime,
    ) -> None:
        """A failed run no runner logged gets its MLflow record, delivered like any pending one."""
        try:
            project = self.models.project(project_body)
        except ValidationError:
            return
        if not operations_logged(project, self.settings.mlflow_tracking_uri):
            return
        meta = body["metadata"]
        audit_id = status.audit_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{meta['uid']}/{job_name}"))
        created = parse_rfc3339(meta["creationTimestamp"]) if meta.get("creationTimestamp") else now
        record = outcome_record(
            audit_id=audit_id,
            project=project,
            spec=spec,
            status=status,
            provenance=self._run_tags(body, project_body, status, job_name),
            created=created,
            now=now,
        )
        status.audit_id = audit_id
        status.pending_audit = [record.to_compact()]

    def _learn_secrets(self, project_body: Obj) -> None:
        """The values of the project's Secrets, before the runner's words are written (after a restart,
        the project's own pass may not have read them yet)."""
        try:
            project = FeatureStoreProject.model_validate(
                {k: project_body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in project_body}
            )
        except ValidationError:
            return
        learn_secrets(self.kube, project)

    def _running_apply(self, namespace: str, project_name: str) -> str | None:
        """An apply Job of the project that has not finished, if any."""
        selector = f"{labels.LABEL_PROJECT}={project_name},{labels.LABEL_OPERATION}=apply"
        for job in self.kube.list_json(self.kube.batch.list_namespaced_job, namespace, label_selector=selector):
            conditions = (job.get("status") or {}).get("conditions") or []
            if not any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions):
                return str(job["metadata"]["name"])
        return None

    def _provenance(
        self, body: Obj, project: Obj | None, project_status: FeatureStoreProjectStatus | None = None
    ) -> Provenance:
        meta = body["metadata"]
        scheduled = (meta.get("annotations") or {}).get(labels.ANNOTATION_SCHEDULED_TIME)
        recorded = creator(meta)
        provenance = Provenance(
            # Both marks, which only the schedule sets (admission refuses them from anyone else).
            triggered_by=triggered_by(
                meta,
                created_by_schedule=scheduled is not None
                and project is not None
                and labels.controller_owner_uid(meta, FEATURE_STORE_PROJECT_KIND) == project["metadata"]["uid"],
            ),
            manager=creating_manager(meta),
            creator=recorded.get("creator"),
            creator_source=recorded.get("creatorSource"),
            scheduled_time=parse_rfc3339(scheduled) if scheduled else None,
            rerun_of=(meta.get("annotations") or {}).get(labels.ANNOTATION_RERUN_OF),
        )
        if project is not None:
            git = (project.get("spec") or {}).get("repo", {}).get("git")
            last_apply = (project_status or self.models.status(project)).last_apply
            if git:
                provenance.git_repository = redact(git["url"])
                provenance.git_revision = (last_apply.commit if last_apply else None) or git.get("revision")
        return provenance

    def _run_tags(
        self, body: Obj, project_body: Obj, status: MaterializationJobStatus, job_name: str
    ) -> dict[str, str]:
        """The MLflow tags of the run: where it came from, and the revision and apply it runs against."""
        meta = body["metadata"]
        provenance = status.provenance or self._provenance(body, project_body)
        git = ((project_body.get("spec") or {}).get("repo") or {}).get("git") or {}
        links = {
            TAG_REVISION: status.revision,
            TAG_APPLY_JOB: status.apply_job,
            TAG_APPLY_AUDIT_ID: status.apply_audit_id,
            TAG_APPLY_RUN_ID: status.apply_run_id,
        }
        return provenance_tags(
            namespace=meta["namespace"],
            kind=MATERIALIZATION_JOB_KIND,
            name=meta["name"],
            uid=meta["uid"],
            generation=meta.get("generation"),
            job_name=job_name,
            trigger=provenance.triggered_by or "manual",
            metadata=meta,
            git_url=git.get("url"),
            git_revision=git.get("revision"),
            git_commit=status.commit,
            extra={
                "k8s.project": project_body["metadata"]["name"],
                **({"k8s.manager": provenance.manager} if provenance.manager else {}),
                **(
                    {"k8s.creator": provenance.creator}
                    if provenance.creator_source == "admission" and provenance.creator
                    else {}
                ),
                **({"featurelineage.rerun_of": provenance.rerun_of} if provenance.rerun_of else {}),
                **{key: value for key, value in links.items() if value},
            },
        )

    def _create_job(
        self,
        body: Obj,
        spec: MaterializationJobSpec,
        project_body: Obj,
        project_status: FeatureStoreProjectStatus,
        status: MaterializationJobStatus,
        job_name: str,
        audit_id: str,
        now: datetime.datetime,
    ) -> None:
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        project = self.models.project(project_body)
        # The revision of the last successful apply: the content the registry was built from, mounted
        # from its immutable snapshot (a ConfigMap edited since is the next apply's business).
        applied = applied_revision(project_status) or LastApply()
        repo_kind = "configMap" if project.spec.repo.config_map else "git" if project.spec.repo.git else "image"
        repo = RepoIdentity(repo_kind, applied.revision or "", applied.repo_digest or "", applied.commit)
        # The end of an open window is fixed once, here: a restarted operator reads it back from the Job.
        end = spec.end_time or now
        extra_env = [
            {"name": contract.ENV_MATERIALIZE_MODE, "value": spec.mode},
            {"name": contract.ENV_MATERIALIZE_END, "value": rfc3339(end)},
            # Named views only: for "all", Feast picks exactly what `feast materialize` would.
            {"name": contract.ENV_FEATURE_VIEWS, "value": ",".join(spec.feature_views)},
        ]
        if spec.start_time is not None:
            extra_env.append({"name": contract.ENV_MATERIALIZE_START, "value": rfc3339(spec.start_time)})
        tags = self._run_tags(body, project_body, status, job_name)
        job_labels = {
            **labels.standard_labels(project.metadata.name or "", "materialize-runner"),
            labels.LABEL_OPERATION: "materialize",
            labels.LABEL_MATERIALIZATION: name,
        }
        request = RunnerJobRequest(
            operation="materialize",
            job_name=job_name,
            runner_image=project.spec.runner.image or self.settings.runner_image,
            runner_config_map=runner_config_map_name(project.metadata.name or ""),
            repo=repo,
            provenance=tags,
            audit_id=audit_id,
            labels=job_labels,
            annotations={labels.ANNOTATION_AUDIT_ID: audit_id},
            owner=labels.owner_reference(MATERIALIZATION_JOB_KIND, name, meta["uid"]),
            backoff_limit=spec.backoff_limit,
            tracking_uri=project.spec.mlflow.tracking_uri or self.settings.mlflow_tracking_uri,
            active_deadline_seconds=spec.active_deadline_seconds,
            extra_env=extra_env,
            repo_snapshot=applied.snapshot,
        )
        if not self.kube.create_job(namespace, render_runner_job(project, request)):
            raise JobExists(f"Job {job_name} exists already")
        log.info("created materialize Job %s", job_name, extra=object_fields(namespace, name, meta.get("generation")))

    def _record_on_project(
        self,
        namespace: str,
        project_name: str,
        run_name: str,
        run: MaterializationJobStatus,
        duration_seconds: float | None,
    ) -> None:
        """The finished run in the project's metrics and lastMaterialization (written only here, so
        no other writer undoes it)."""
        with self.locks.hold(FEATURE_STORE_PROJECT_KIND, namespace, project_name):
            project = self.kube.get_custom(FEATURE_STORE_PROJECT_PLURAL, namespace, project_name)
            if project is None:
                return
            # Under the project's lock and on a fresh read: a deleted project's series stay removed.
            project_labels = metrics.ProjectLabels.of(project)
            if project_labels is not None:
                metrics.materialization_finished(project_labels, (run.phase or "").lower(), duration_seconds)
            status = FeatureStoreProjectStatus.from_k8s(project.get("status"))
            previous = status.last_materialization
            if (
                previous is not None
                and previous.completion_time is not None
                and run.completion_time is not None
                and previous.completion_time > run.completion_time
            ):
                return  # a later run finished first
            status.last_materialization = LastMaterialization(
                name=run_name, phase=run.phase, window=run.window, completion_time=run.completion_time
            )
            self.kube.write_status(FEATURE_STORE_PROJECT_PLURAL, project, status, PROJECT_LAST_MATERIALIZATION)


__all__ = ["MaterializationReconciler", "kept_in_index", "materialize_job_name", "peer_summary"]
