"""Run a project's materialization schedule: create, replace and prune scheduled MaterializationJobs.

Runs are named from their scheduled instant, so an operator that restarts, or two that
overlap, create each run once; the Kubernetes API's "already exists" is the lock.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from feast_lineage.api import (
    API_VERSION,
    FEATURE_STORE_PROJECT_KIND,
    FEATURE_STORE_PROJECT_PLURAL,
    GROUP,
    MATERIALIZATION_JOB_KIND,
    MATERIALIZATION_JOB_PLURAL,
    VERSION,
    FeatureStoreProject,
    FeatureStoreProjectStatus,
    ScheduleStatus,
)
from feast_lineage.controller.errors import stalled_by
from feast_lineage.controller.kube import Kube, Obj, StatusConflict, create
from feast_lineage.controller.locks import ObjectLocks
from feast_lineage.controller.logs import object_fields
from feast_lineage.domain import labels
from feast_lineage.domain.schedule_plan import ScheduledRun, cap_waiting, plan_schedule
from feast_lineage.domain.status_owners import PROJECT_SCHEDULE
from feast_lineage.timestamps import rfc3339

log = logging.getLogger(__name__)


def _parse(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _iso(value: datetime.datetime | None) -> str | None:
    return rfc3339(value) if value else None


def scheduled_run_manifest(
    project: FeatureStoreProject, uid: str, name: str, scheduled: datetime.datetime
) -> dict[str, Any]:
    """An Incremental run up to its scheduled instant: the same window whenever it actually starts."""
    assert project.spec.materialization is not None
    project_name = project.metadata.name or ""
    spec: dict[str, Any] = {"projectRef": {"name": project_name}, "mode": "Incremental", "endTime": _iso(scheduled)}
    if project.spec.materialization.feature_views:
        spec["featureViews"] = list(project.spec.materialization.feature_views)
    return {
        "apiVersion": API_VERSION,
        "kind": MATERIALIZATION_JOB_KIND,
        "metadata": {
            "name": name,
            "namespace": project.metadata.namespace,
            "labels": {**labels.standard_labels(project_name, "scheduled-run"), labels.LABEL_CREATED_BY: "schedule"},
            "annotations": {labels.ANNOTATION_SCHEDULED_TIME: _iso(scheduled)},
            "ownerReferences": [labels.owner_reference(FEATURE_STORE_PROJECT_KIND, project_name, uid)],
        },
        "spec": spec,
    }


class ScheduleReconciler:
    def __init__(self, kube: Kube, locks: ObjectLocks, max_waiting: int = 10) -> None:
        self.kube = kube
        self.locks = locks
        self.max_waiting = max_waiting

    def tick(
        self,
        namespace: str,
        name: str,
        runs: list[Obj],
        now: datetime.datetime | None = None,
        seen: Obj | None = None,
    ) -> None:
        """``runs``: summaries of the project's MaterializationJobs (from the operator's index).

        ``seen`` is the project as the watch delivered it: a tick starts from it, so a schedule with
        nothing due costs no request. Nothing stale gets written: run names are deterministic and the
        status write carries the resourceVersion; on a conflict the tick reads afresh.
        """
        with self.locks.hold(FEATURE_STORE_PROJECT_KIND, namespace, name):
            if seen is not None:
                try:
                    self._tick(namespace, name, runs, now, seen)
                    return
                except StatusConflict:
                    pass
            body = self.kube.get_custom(FEATURE_STORE_PROJECT_PLURAL, namespace, name)
            self._tick(namespace, name, runs, now, body)

    def _tick(
        self, namespace: str, name: str, runs: list[Obj], now: datetime.datetime | None, body: Obj | None
    ) -> None:
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        try:
            project = FeatureStoreProject.model_validate(
                {k: body[k] for k in ("apiVersion", "kind", "metadata", "spec")}
            )
        except ValidationError:
            return  # the project reconciler reports it as Stalled
        if project.spec.materialization is None:
            return
        try:
            self._plan(body, project, runs, now)
        except StatusConflict:
            raise  # the caller reads afresh
        except Exception as error:
            # A tick that fails the same way each time says why in status.schedule.message
            # rather than a traceback every tick; a transient error is retried.
            problem = stalled_by(error)
            if problem is None:
                raise
            status = FeatureStoreProjectStatus.from_k8s(body.get("status"))
            status.schedule = (status.schedule or ScheduleStatus()).model_copy(
                update={"message": f"{problem.reason}: {problem.message}"}
            )
            self.kube.write_status(FEATURE_STORE_PROJECT_PLURAL, body, status, PROJECT_SCHEDULE)

    def _plan(self, body: Obj, project: FeatureStoreProject, runs: list[Obj], now: datetime.datetime | None) -> None:
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        schedule = project.spec.materialization
        assert schedule is not None
        status = FeatureStoreProjectStatus.from_k8s(body.get("status"))
        previous = status.schedule or ScheduleStatus()
        now = now or datetime.datetime.now(datetime.UTC)
        scheduled = [
            ScheduledRun(r["name"], _parse(r.get("scheduledTime")), r["phase"], _parse(r["created"]) or now)
            for r in runs
        ]
        decision = plan_schedule(
            schedule,
            project_resource=name,
            now=now,
            last_schedule_time=previous.last_schedule_time,
            project_created=_parse(body["metadata"]["creationTimestamp"]) or now,
            runs=scheduled,
        )
        decision = cap_waiting(decision, scheduled, self.max_waiting, previous.last_schedule_time)
        for run in [*decision.delete_active, *decision.prune]:
            self._delete_run(namespace, run)
        last_run = previous.last_run
        if decision.create is not None and decision.create_name is not None:
            manifest = scheduled_run_manifest(project, body["metadata"]["uid"], decision.create_name, decision.create)
            if create(
                self.kube.custom.create_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                MATERIALIZATION_JOB_PLURAL,
                manifest,
            ):
                log.info("schedule created %s", decision.create_name, extra=object_fields(namespace, name))
            last_run = decision.create_name
        # Built whole: a message from an earlier tick does not outlive its reason.
        status.schedule = ScheduleStatus(
            last_schedule_time=decision.last_schedule_time,
            next_schedule_time=decision.next_time,
            last_run=last_run,
            message=decision.waiting_reason,
        )
        self.kube.write_status(FEATURE_STORE_PROJECT_PLURAL, body, status, PROJECT_SCHEDULE)

    def _delete_run(self, namespace: str, name: str) -> None:
        try:
            self.kube.custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, MATERIALIZATION_JOB_PLURAL, name, propagation_policy="Background"
            )
        except ApiException as error:
            if error.status != 404:
                raise
