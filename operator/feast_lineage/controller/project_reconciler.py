"""Reconcile one FeatureStoreProject: read, let the domain decide, write.

Level-triggered and idempotent: whatever triggered it (a change, a resync, a Job
event, an operator restart), it reads the current state and converges. Children
have deterministic names, so running it twice, or in two processes, creates
nothing twice.
"""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from feast_lineage.api import (
    FEATURE_STORE_PROJECT_KIND,
    FEATURE_STORE_PROJECT_PLURAL,
    FeatureStoreProject,
    FeatureStoreProjectStatus,
    validation_message,
)
from feast_lineage.contract import FEATURE_STORE_YAML
from feast_lineage.controller import metrics
from feast_lineage.controller.backoff import Backoff
from feast_lineage.controller.errors import stalled_by
from feast_lineage.controller.events import emit, emit_transitions, report_distrusted
from feast_lineage.controller.git_resolver import GitResolver, ProjectKey, ResolutionPending
from feast_lineage.controller.kube import (
    Kube,
    Obj,
    OwnershipConflict,
    StatusConflict,
    controlled_by,
    create,
    read,
)
from feast_lineage.controller.locks import ObjectLocks
from feast_lineage.controller.logs import object_fields
from feast_lineage.controller.outcome_audit import apply_outcome_record, operations_logged
from feast_lineage.controller.pass_log import (
    DELETING,
    ERROR,
    GONE,
    OK,
    SETTLED,
    STALLED,
    WAITING,
    logged_pass,
    pass_done,
)
from feast_lineage.controller.project_inputs import gather_inputs
from feast_lineage.controller.settings import OperatorSettings
from feast_lineage.domain import labels
from feast_lineage.domain.apply_gate import approved_plan, impact_env
from feast_lineage.domain.apply_plan import (
    RepoIdentity,
    apply_hash,
    apply_job_name,
    last_applied_git_repo,
    spec_hash,
    trigger,
)
from feast_lineage.domain.conditions import RECONCILING
from feast_lineage.domain.project_state import (
    SOURCE_REASONS,
    InputProblem,
    ProjectDecision,
    ProjectObservation,
    decide_project,
    keep_records,
)
from feast_lineage.domain.provenance import TAG_REVISION, provenance_tags
from feast_lineage.domain.repo_snapshot import (
    SNAPSHOT_COMPONENT,
    in_use,
    render_snapshot,
    snapshot_name,
    unreferenced,
)
from feast_lineage.domain.runner_job import RunnerJobRequest, render_runner_job
from feast_lineage.domain.runner_outcome import JobObservation, observe_job
from feast_lineage.domain.status_owners import PROJECT_RECONCILER
from feast_lineage.domain.store_config import client_config_data, render_feature_store_yaml
from feast_lineage.domain.store_paths import ephemeral_store_paths
from feast_lineage.domain.tenancy import policy_violations
from feast_lineage.timestamps import utc_now

log = logging.getLogger(__name__)
PASS_ATTEMPTS = 3
FULL_RESYNC_EVERY = 10
"""A settled project's resync is a full pass only every this many resyncs (see :meth:`ProjectReconciler.resync`)."""


def runner_config_map_name(project_resource: str) -> str:
    return labels.child_name(project_resource, "runner-config")


def client_config_map_name(project_resource: str) -> str:
    return labels.child_name(project_resource, "client-config")


class ProjectReconciler:
    def __init__(self, kube: Kube, settings: OperatorSettings, locks: ObjectLocks) -> None:
        self.kube = kube
        self.settings = settings
        self.locks = locks
        # Up to a quarter of a resync: an outage's end is noticed well before the next resync.
        self.source_backoff = Backoff(settings.active_poll_seconds, settings.resync_seconds / 4)
        self.git = GitResolver(self._woken)
        self._wakeups = ThreadPoolExecutor(2, thread_name_prefix="project-wake")
        # When each settled project's last full pass ended, and whether the running pass settles it.
        self._settled: dict[str, float] = {}
        self._settles: dict[str, bool] = {}

    def _woken(self, project: ProjectKey) -> None:
        """A Git answer changed (or came for the first time): a pass of its own, off the resolver's pool."""
        self._wakeups.submit(self._wake_pass, *project)

    def _wake_pass(self, namespace: str, name: str) -> None:
        try:
            self.reconcile(namespace, name)
        except Exception:
            # Kopf does not retry this pass; the next event or resync does.
            log.exception("a pass after a Git answer failed", extra=object_fields(namespace, name))

    def shutdown(self) -> None:
        self.git.shutdown()
        self._wakeups.shutdown(wait=False, cancel_futures=True)

    def resync(self, namespace: str, name: str) -> None:
        """The periodic look that catches what no event reported. A project whose last full pass left
        it settled (nothing applying, nothing created), with no event since that could change that
        (its spec, approval, repo and trust ConfigMaps, owned ConfigMaps and apply Jobs all come with
        watch events, which pass or unsettle it), costs no request: only its Git revision, which no
        event reports, is asked again (a changed answer wakes it). Every ``FULL_RESYNC_EVERY``
        resyncs it gets a full pass anyway (Secrets, which are not watched, and anything missed)."""
        key = f"{namespace}/{name}"
        settled_at = self._settled.get(key)
        full_every = FULL_RESYNC_EVERY * self.settings.resync_seconds
        if settled_at is not None and time.monotonic() - settled_at < full_every:
            started, outcome = time.time(), ERROR
            try:
                self.git.refresh((namespace, name))
                outcome = SETTLED
            finally:  # as logged_pass does: a pass that raised is a pass too
                pass_done(FEATURE_STORE_PROJECT_KIND, namespace, name, outcome, started)
            return
        self.reconcile(namespace, name)

    def unsettle(self, namespace: str, name: str) -> None:
        """Something the project depends on changed: its next resync is a full pass."""
        self._settled.pop(f"{namespace}/{name}", None)

    @logged_pass(FEATURE_STORE_PROJECT_KIND)
    def reconcile(self, namespace: str, name: str) -> str:
        """One pass over the project; safe to call from any handler, any number of times. Returns how
        it ended (:mod:`.pass_log`)."""
        # Handlers of one object can overlap (a timer and a Job event): one pass at a time per
        # object, each on a fresh read, so no pass writes a status computed from a stale one.
        key = f"{namespace}/{name}"
        with self.locks.hold(FEATURE_STORE_PROJECT_KIND, namespace, name):
            self._settled.pop(key, None)
            self._settles[key] = False
            try:
                outcome = self._pass(namespace, name)
            except BaseException:
                self._settles.pop(key, None)
                raise
            if self._settles.pop(key, False):
                self._settled[key] = time.monotonic()
            return outcome

    def _pass(self, namespace: str, name: str) -> str:
        for attempt in range(PASS_ATTEMPTS):
            body = self.kube.get_custom(FEATURE_STORE_PROJECT_PLURAL, namespace, name)
            if body is None:
                return GONE
            if body["metadata"].get("deletionTimestamp"):
                return DELETING
            try:
                self._reconcile(body)
            except ResolutionPending:
                return WAITING  # the project's first Git answer wakes it for another pass
            except StatusConflict:
                if attempt + 1 < PASS_ATTEMPTS:
                    continue  # another writer changed what this pass decided on: decide again
                metrics.RECONCILES.labels(FEATURE_STORE_PROJECT_KIND, "error").inc()
                raise
            except Exception as error:
                metrics.RECONCILES.labels(FEATURE_STORE_PROJECT_KIND, "error").inc()
                # A pass that fails the same way each time stalls the project with the reason,
                # instead of a traceback retried forever; a transient error is retried.
                if not self._stall(body, error):
                    raise
                return STALLED
            metrics.RECONCILES.labels(FEATURE_STORE_PROJECT_KIND, "ok").inc()
            return OK
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _stall(self, body: Obj, error: Exception) -> bool:
        problem = stalled_by(error)
        if problem is None:
            return False
        meta = body["metadata"]
        status = FeatureStoreProjectStatus.from_k8s(body.get("status"))
        decision = decide_project(ProjectObservation(meta.get("generation"), status, problem), utc_now())
        try:
            self._write(body, decision)
        except Exception:
            return False
        if decision.transitions:
            log.warning(
                "stalled: %s",
                problem.message,
                extra=object_fields(meta["namespace"], meta["name"], meta.get("generation")),
            )
        return True

    def retry_source(self, namespace: str, name: str) -> None:
        """A pass for a project whose source was unavailable, once its backoff has passed: recovery
        is noticed within seconds, never a whole resync later, and a dead server is not hammered."""
        if self.source_backoff.due(f"{namespace}/{name}"):
            self.reconcile(namespace, name)

    def deleted(self, namespace: str, name: str) -> None:
        """The project is being deleted: remove its metric series (Kubernetes removes its children)."""
        # Under the project's lock, so that a pass still running finishes first; later passes see
        # the deletionTimestamp and record nothing.
        with self.locks.hold(FEATURE_STORE_PROJECT_KIND, namespace, name):
            metrics.forget_project(namespace, name)
            self.source_backoff.forget(f"{namespace}/{name}")
            self._settled.pop(f"{namespace}/{name}", None)
            self.git.forget((namespace, name))

    def _track_source(self, namespace: str, name: str, problem: InputProblem | None) -> None:
        key = f"{namespace}/{name}"
        if problem is not None and problem.reason in SOURCE_REASONS:
            delay = self.source_backoff.failed(key)
            log.info(
                "repo source unavailable (%s); next attempt in %.0fs",
                problem.reason,
                delay,
                extra=object_fields(namespace, name),
            )
        else:
            self.source_backoff.forget(key)

    def _reconcile(self, body: Obj) -> None:
        meta = body["metadata"]
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        generation = meta.get("generation")
        status = FeatureStoreProjectStatus.from_k8s(body.get("status"))
        now = utc_now()
        try:
            project = FeatureStoreProject.model_validate(
                {k: v for k, v in body.items() if k in ("apiVersion", "kind", "metadata", "spec")}
            )
        except ValidationError as error:
            invalid = InputProblem("InvalidSpec", validation_message(error))
            self._write(body, decide_project(ProjectObservation(generation, status, invalid), now))
            return
        # Admission refuses these; a spec that got past it (webhook not installed, older object) stalls here.
        violations = policy_violations(project.spec, self.settings.tenancy)
        if violations:
            refused = InputProblem("NotAllowed", "; ".join(violations))
            self._write(body, decide_project(ProjectObservation(generation, status, refused), now))
            return

        owner = labels.owner_reference(FEATURE_STORE_PROJECT_KIND, name, uid)
        try:
            self._write_config_maps(project, owner)
        except OwnershipConflict as conflict:
            self._write(
                body,
                decide_project(ProjectObservation(generation, status, InputProblem("Conflict", str(conflict))), now),
            )
            return
        status.runner_config_map = runner_config_map_name(name)
        status.client_config_map = client_config_map_name(name)

        ephemeral = ephemeral_store_paths(project.spec)
        if ephemeral:
            stores = InputProblem("EphemeralStore", "; ".join(ephemeral))
            self._write(body, decide_project(ProjectObservation(generation, status, stores), now))
            return
        runner_image = project.spec.runner.image or self.settings.runner_image
        spec_digest = spec_hash(project, runner_image)
        approval = approved_plan(project.spec, meta.get("annotations"))
        repo, problem = gather_inputs(
            self.kube,
            project,
            self.settings.git_timeout_seconds,
            sorted(self.settings.tenancy.git_protocols),
            lambda request: self.git.commit((namespace, name), request),
        )
        if problem is not None:
            problem = self._with_retry_hint(problem)
        source_problem = None
        git = project.spec.repo.git
        if repo is None and problem is not None and problem.reason == "GitUnreachable" and git is not None:
            # An outage of the Git server: the registry still holds the last applied commit.
            repo = last_applied_git_repo(
                status.last_apply, status.applied_spec_hash, spec_digest, git.revision, git.path, approval
            )
            if repo is not None:
                problem, source_problem = None, problem
        self._track_source(namespace, name, source_problem or problem)
        if repo is None:
            self._write(body, decide_project(ProjectObservation(generation, status, problem), now))
            return

        digest = apply_hash(spec_digest, repo, approval)
        job_name = apply_job_name(name, digest)
        try:
            self.kube.owned_job(job_name, namespace, uid, f"FeatureStoreProject {name}")
            if repo.kind == "configMap":
                self._ensure_snapshot(project, repo, owner)
        except OwnershipConflict as conflict:
            self._write(
                body,
                decide_project(ProjectObservation(generation, status, InputProblem("Conflict", str(conflict))), now),
            )
            return
        applies = self._observe_jobs(namespace, name, uid, "apply")
        observed = applies.pop(job_name, None)
        running_materializations: list[str] = []
        if project.spec.feature_store.registry.registry_type == "file":
            running_materializations = [
                job.name
                for job in self._observe_jobs(namespace, name, None, "materialize").values()
                if not job.finished
            ]
        observation = ProjectObservation(
            generation,
            status,
            None,
            repo,
            digest,
            job_name,
            observed,
            source_problem,
            other_applies=list(applies.values()),
            running_materializations=running_materializations,
        )
        decision = decide_project(observation, now)
        self._keep_outcome_records(project, decision, now)

        for superseded in decision.delete_jobs:
            # Its pod never started: it must not start later and apply an old revision.
            try:
                self.kube.batch.delete_namespaced_job(superseded, namespace, propagation_policy="Background")
            except ApiException as error:
                if error.status != 404:
                    raise
            log.info("deleted superseded apply Job %s", superseded, extra=object_fields(namespace, name, generation))
        if decision.create_job:
            why = trigger(decision.status.last_apply, spec_digest, repo, approval)
            self._create_apply_job(
                project, body, job_name, runner_image, repo, (spec_digest, digest), why, generation, approval
            )
        self._write(body, decision)
        for event_type, reason, message in decision.events:
            emit(self.kube, body, event_type, reason, message)
        metrics.audit_lost(namespace, "cap", len(decision.dropped_audit))
        finished = decision.finished_job
        if finished is not None:
            report_distrusted(self.kube, body, finished)
        project_labels = metrics.ProjectLabels.of(body)
        if finished is not None and project_labels is not None:
            # Counted once the status that records this Job is written, so a failed write does not
            # count the same apply again on the next pass.
            outcome = "succeeded" if finished.state == "succeeded" else "failed"
            if outcome == "succeeded" and finished.result is not None and finished.result.impact is not None:
                outcome = "held" if finished.result.impact.held else outcome
            duration = finished.result.duration_seconds if finished.result is not None else None
            metrics.apply_finished(project_labels, outcome, duration)
        self._prune_apply_jobs(namespace, name, keep=job_name)
        current = snapshot_name(name, repo.fingerprint) if repo.kind == "configMap" else None
        applied = decision.status.last_successful_apply
        self._prune_snapshots(namespace, name, uid, [current, applied.snapshot if applied else None])

    def _keep_outcome_records(self, project: FeatureStoreProject, decision: ProjectDecision, now: datetime) -> None:
        """Applies that failed without a word from their runner get their MLflow record, delivered like
        any pending one (written with the status that records the apply, so it is made once)."""
        if not decision.unlogged_applies or not operations_logged(project, self.settings.mlflow_tracking_uri):
            return
        records = (
            apply_outcome_record(project=project, job=unlogged.job, recorded=unlogged.recorded, now=now)
            for unlogged in decision.unlogged_applies
        )
        keep_records(decision, [record.to_compact() for record in records if record is not None])

    def _with_retry_hint(self, problem: InputProblem) -> InputProblem:
        """A message that waits on something says when it will look again."""
        if problem.reason in ("SecretNotFound", "SecretKeyNotFound"):
            hint = f"looking again every {self.settings.input_retry_seconds:g} s"
        elif problem.reason in ("RepoNotFound", "ConfigMapNotFound"):
            hint = "acted on as soon as it is created or changed"
        else:
            return problem
        return InputProblem(problem.reason, f"{problem.message}; {hint}")

    def _observe_jobs(
        self, namespace: str, name: str, owner_uid: str | None, operation: str
    ) -> dict[str, JobObservation]:
        """The project's Jobs of one operation, by name, each with the pods it controls. Labels can be
        forged: only Jobs ``owner_uid`` controls count (materialize Jobs belong to their runs)."""
        selector = f"{labels.LABEL_PROJECT}={name},{labels.LABEL_OPERATION}={operation}"
        jobs = self.kube.list_json(self.kube.batch.list_namespaced_job, namespace, label_selector=selector)
        if owner_uid is not None:
            jobs = [job for job in jobs if controlled_by(job, owner_uid)]
        if not jobs:
            return {}
        pods = self.kube.list_json(self.kube.core.list_namespaced_pod, namespace, label_selector=selector)
        by_job: dict[str, list[Obj]] = {}
        for pod in pods:
            by_job.setdefault((pod["metadata"].get("labels") or {}).get("job-name", ""), []).append(pod)
        return {
            job["metadata"]["name"]: observe_job(
                job, [p for p in by_job.get(job["metadata"]["name"], []) if controlled_by(p, job["metadata"]["uid"])]
            )
            for job in jobs
        }

    # -- writes ----------------------------------------------------------------------------------

    def _write(self, body: Obj, decision: ProjectDecision) -> None:
        self.kube.write_status(FEATURE_STORE_PROJECT_PLURAL, body, decision.status, PROJECT_RECONCILER)
        meta = body["metadata"]
        # Settled unless an apply is in flight or starts now; the pass must still end without an error.
        self._settles[f"{meta['namespace']}/{meta['name']}"] = not (
            decision.create_job
            or decision.delete_jobs
            or any(c.type == RECONCILING and c.status == "True" for c in decision.status.conditions)
        )
        emit_transitions(self.kube, body, decision.transitions)
        project = metrics.ProjectLabels.of(body)
        if project is not None:
            metrics.audit_pending(project, len(decision.status.pending_audit))

    def _write_config_maps(self, project: FeatureStoreProject, owner: Obj) -> None:
        name = project.metadata.name or ""
        config_maps = (
            (
                runner_config_map_name(name),
                "runner-config",
                {FEATURE_STORE_YAML: render_feature_store_yaml(project.spec, "runner")},
            ),
            (client_config_map_name(name), "client-config", client_config_data(project.spec)),
        )
        for cm_name, component, data in config_maps:
            manifest = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": cm_name,
                    "namespace": project.metadata.namespace,
                    "labels": labels.standard_labels(name, component),
                    "ownerReferences": [owner],
                },
                "data": data,
            }
            self.kube.apply_config_map(manifest)

    def _ensure_snapshot(self, project: FeatureStoreProject, repo: RepoIdentity, owner: Obj) -> None:
        """The immutable snapshot of ``repo``'s content, made from exactly what was hashed."""
        namespace = project.metadata.namespace or ""
        manifest = render_snapshot(project.metadata.name or "", namespace, repo, owner)
        existing = read(self.kube.core.read_namespaced_config_map, manifest["metadata"]["name"], namespace)
        if existing is None:
            create(self.kube.core.create_namespaced_config_map, namespace, manifest)
        elif not controlled_by(existing, owner["uid"]):
            raise OwnershipConflict(
                f'ConfigMap "{manifest["metadata"]["name"]}" exists and is not controlled by this '
                "FeatureStoreProject; delete or rename it"
            )

    def _prune_snapshots(self, namespace: str, name: str, uid: str, keep: list[str | None]) -> None:
        """Delete the project's repo snapshots that no apply Job, running materialization or the
        last successful apply refers to any more."""
        selector = f"{labels.LABEL_PROJECT}={name},{labels.LABEL_COMPONENT}={SNAPSHOT_COMPONENT}"
        snapshots = [
            cm["metadata"]["name"]
            for cm in self.kube.list_json(self.kube.core.list_namespaced_config_map, namespace, label_selector=selector)
            if controlled_by(cm, uid)
        ]
        if not snapshots:
            return
        jobs = self.kube.list_json(
            self.kube.batch.list_namespaced_job, namespace, label_selector=f"{labels.LABEL_PROJECT}={name}"
        )
        referenced = [*keep, *in_use(jobs)]
        for stale in unreferenced(snapshots, referenced):
            try:
                self.kube.core.delete_namespaced_config_map(stale, namespace)
            except ApiException as error:
                if error.status != 404:
                    raise
            log.info("deleted repo snapshot %s (nothing refers to it)", stale, extra=object_fields(namespace, name))

    def _create_apply_job(
        self,
        project: FeatureStoreProject,
        body: Obj,
        job_name: str,
        runner_image: str,
        repo: RepoIdentity,
        hashes: tuple[str, str],
        why: str,
        generation: int | None,
        approval: str | None,
    ) -> None:
        spec_digest, digest = hashes
        meta = body["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        audit_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{meta['uid']}/{job_name}"))
        git = project.spec.repo.git
        tags = provenance_tags(
            namespace=namespace,
            kind=FEATURE_STORE_PROJECT_KIND,
            name=name,
            uid=meta["uid"],
            generation=generation,
            job_name=job_name,
            trigger=why,
            metadata=meta,
            git_url=git.url if git else None,
            git_revision=git.revision if git else None,
            git_commit=repo.commit,
            extra={TAG_REVISION: repo.revision},
        )
        job_labels = {**labels.standard_labels(name, "apply-runner"), labels.LABEL_OPERATION: "apply"}
        annotations = {
            labels.ANNOTATION_APPLY_HASH: digest,
            labels.ANNOTATION_SPEC_HASH: spec_digest,
            labels.ANNOTATION_REVISION: repo.revision,
            labels.ANNOTATION_TRIGGER: why,
            labels.ANNOTATION_AUDIT_ID: audit_id,
            labels.ANNOTATION_GENERATION: str(generation),
        }
        if repo.commit:
            annotations[labels.ANNOTATION_COMMIT] = repo.commit
        snapshot = None
        if repo.kind == "configMap":
            snapshot = snapshot_name(name, repo.fingerprint)
            annotations[labels.ANNOTATION_REPO_DIGEST] = repo.fingerprint
            annotations[labels.ANNOTATION_SNAPSHOT] = snapshot
        request = RunnerJobRequest(
            operation="apply",
            job_name=job_name,
            runner_image=runner_image,
            runner_config_map=runner_config_map_name(name),
            repo=repo,
            provenance=tags,
            audit_id=audit_id,
            labels=job_labels,
            annotations=annotations,
            owner=labels.owner_reference(FEATURE_STORE_PROJECT_KIND, name, meta["uid"]),
            backoff_limit=project.spec.runner.backoff_limit,
            tracking_uri=project.spec.mlflow.tracking_uri or self.settings.mlflow_tracking_uri,
            active_deadline_seconds=project.spec.runner.active_deadline_seconds,
            git_protocols=tuple(sorted(self.settings.tenancy.git_protocols)),
            extra_env=impact_env(project.spec, namespace, approval),
            repo_snapshot=snapshot,
        )
        manifest = render_runner_job(project, request)
        if create(self.kube.batch.create_namespaced_job, namespace, manifest):
            log.info("created apply Job %s (%s)", job_name, why, extra=object_fields(namespace, name, generation))

    def _prune_apply_jobs(self, namespace: str, name: str, keep: str) -> None:
        selector = f"{labels.LABEL_PROJECT}={name},{labels.LABEL_OPERATION}=apply"
        jobs = self.kube.list_json(self.kube.batch.list_namespaced_job, namespace, label_selector=selector)
        finished = [
            j
            for j in jobs
            if j["metadata"]["name"] != keep
            and any(c.get("status") == "True" for c in (j.get("status") or {}).get("conditions") or [])
        ]
        finished.sort(key=lambda j: j["metadata"].get("creationTimestamp", ""), reverse=True)
        for job in finished[max(self.settings.apply_jobs_kept - 1, 0) :]:
            self.kube.batch.delete_namespaced_job(job["metadata"]["name"], namespace, propagation_policy="Background")
