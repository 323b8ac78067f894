"""Pods that asked for injection: find the ones that missed it, and finish the MLflow runs of dead ones.

The webhook fails open, so a pod can start without its configuration (webhook down, timed
out). This watch - only of labelled pods, filtered by the API server - asks the same
question the webhook asks; a pod that should have been injected and was not is reported
with an Event, a count in its project's status and a metric. It is level-based: after a
restart the count is rebuilt from the pods that exist.

A training process killed inside an MLflow run leaves the run RUNNING forever. When an
injected pod ends (Failed, or deleted before it finished) its RUNNING runs - found by the
pod UID tag the webhook put in MLFLOW_RUN_CONTEXT - are ended FAILED or KILLED, off the
watch thread, each call bounded.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from feast_lineage.api import FEATURE_STORE_PROJECT_PLURAL, FeatureStoreProjectStatus, InjectionStatus, MlflowConfig
from feast_lineage.audit.errors import DeliveryError, MlflowApiError
from feast_lineage.audit.mlflow_rest import MlflowRestClient
from feast_lineage.controller import metrics
from feast_lineage.controller.audit_redelivery import mlflow_credentials
from feast_lineage.controller.events import emit
from feast_lineage.controller.kube import Kube, StatusConflict
from feast_lineage.controller.list_watch import ListCall, ListWatch, scopes
from feast_lineage.controller.settings import ApiTimeouts
from feast_lineage.domain import labels
from feast_lineage.domain.injection import decide_injection
from feast_lineage.domain.status_owners import PROJECT_INJECTION
from feast_lineage.injection.targets import InjectionTargets

log = logging.getLogger(__name__)

_REPORTED_LIMIT = 10_000
_MISSED_NAMES_SHOWN = 10


@dataclass
class _PodState:
    namespace: str
    name: str
    project: str | None
    missed: bool
    injected: bool
    phase: str


class _BoundedSet:
    """Remembers the last ``limit`` keys, so memory stays flat however many pods come and go."""

    def __init__(self, limit: int = _REPORTED_LIMIT) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def add(self, key: str) -> bool:
        """True when ``key`` is new."""
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self._limit:
            self._keys.popitem(last=False)
        return True


class PodMonitor:
    def __init__(
        self,
        kube: Kube,
        targets: InjectionTargets,
        namespaces: list[str],
        default_tracking_uri: str | None,
        run_finish_timeout: float = 10.0,
        api_timeouts: ApiTimeouts | None = None,
    ) -> None:
        self.kube = kube
        self.targets = targets
        self.namespaces = namespaces
        self.default_tracking_uri = default_tracking_uri
        self.run_finish_timeout = run_finish_timeout
        self.api_timeouts = api_timeouts
        self._pods: dict[str, _PodState] = {}
        self._lock = threading.Lock()
        self._reported = _BoundedSet()
        self._finished = _BoundedSet()
        self._written: dict[tuple[str, str], tuple[int, tuple[str, ...]]] = {}
        self._mlflow = ThreadPoolExecutor(max_workers=2, thread_name_prefix="run-finisher")
        self._watches: list[ListWatch] = []

    def start(self) -> None:
        for namespace in scopes(self.namespaces):
            if namespace is None:
                call: ListCall = self.kube.core.list_pod_for_all_namespaces
            else:
                call = functools.partial(self.kube.core.list_namespaced_pod, namespace)
            watch = ListWatch(
                f"labelled pods in {namespace or 'all namespaces'}",
                call,
                self.observe,
                label_selector=labels.LABEL_INJECT,
                on_synced=functools.partial(self._correct_counts, namespace),
                timeouts=self.api_timeouts,
            )
            self._watches.append(watch)
            watch.start()

    def stop(self) -> None:
        for watch in self._watches:
            watch.stop()
        self._mlflow.shutdown(wait=False, cancel_futures=True)

    # -- watching -----------------------------------------------------------------------------

    def _correct_counts(self, namespace: str | None) -> None:
        """After a (re)list (pods that vanished meanwhile were reported deleted): a count written
        before a restart, for pods that are gone or were injected since, is corrected."""
        for target in self.targets.all():
            if (namespace is None or target.namespace == namespace) and target.recorded_missed:
                self._write_missed(target.namespace, target.name)

    # -- deciding -----------------------------------------------------------------------------

    def observe(self, event_type: str | None, pod: dict[str, Any]) -> None:
        pod = {"apiVersion": "v1", "kind": "Pod", **pod}  # list items come without them; Events need them
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        if event_type == "DELETED":
            self._forget(uid, pod)
            return
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        annotations = meta.get("annotations") or {}
        phase = str((pod.get("status") or {}).get("phase", "Pending"))
        injected = bool(annotations.get(labels.ANNOTATION_INJECTED))
        project = annotations.get(labels.ANNOTATION_INJECTED_PROJECT)
        missed = False
        caveats = annotations.get(labels.ANNOTATION_INJECTION_WARNINGS)
        if injected and caveats and self._reported.add(uid):
            emit(self.kube, pod, "Warning", "InjectionIncomplete", f"injected with caveats: {caveats}")
        if not injected:
            decision = decide_injection(pod, namespace, self.targets.in_namespace(namespace))
            project = decision.project
            if decision.skipped is not None:
                if self._reported.add(uid):
                    emit(self.kube, pod, "Warning", "InjectionSkipped", f"not injected: {decision.skipped}")
            else:
                missed = True
                if self._reported.add(uid):
                    emit(
                        self.kube,
                        pod,
                        "Warning",
                        "InjectionMissed",
                        f"started without the configuration of FeatureStoreProject {project}: the injection "
                        "webhook did not answer; recreate the pod once it is back",
                    )
        with self._lock:
            self._pods[uid] = _PodState(namespace, name, project, missed, injected, phase)
        if missed and project:
            self._write_missed(namespace, project)
        if injected and project and phase in ("Succeeded", "Failed"):
            self._finish_runs(uid, namespace, project, "FAILED" if phase == "Failed" else "KILLED", phase)

    def _forget(self, uid: str, pod: dict[str, Any] | None = None) -> None:
        with self._lock:
            state = self._pods.pop(uid, None)
        if state is None:
            return
        if state.missed and state.project:
            self._write_missed(state.namespace, state.project)
        if state.injected and state.project and state.phase not in ("Succeeded", "Failed"):
            self._finish_runs(uid, state.namespace, state.project, "KILLED", "deleted while " + state.phase)

    def missed_pods(self, namespace: str, project: str) -> list[str]:
        with self._lock:
            return sorted(
                s.name for s in self._pods.values() if s.missed and s.namespace == namespace and s.project == project
            )

    def _write_missed(self, namespace: str, project: str) -> None:
        names = self.missed_pods(namespace, project)
        summary = (len(names), tuple(names[:_MISSED_NAMES_SHOWN]))
        if self._written.get((namespace, project)) == summary:
            return
        target = self.targets.get(namespace, project)
        if target is None:
            return  # no such project (yet): nothing to count on
        if target.spec is not None:
            metrics.injection_missed(metrics.ProjectLabels(namespace, project, target.spec.project), len(names))
        injection = InjectionStatus(missed_pods=summary[0], missed_pod_names=list(summary[1]))
        try:
            body = self.kube.get_custom(FEATURE_STORE_PROJECT_PLURAL, namespace, project)
            if body is None:
                return
            status = FeatureStoreProjectStatus.from_k8s(body.get("status"))
            status.injection = injection
            self.kube.write_status(FEATURE_STORE_PROJECT_PLURAL, body, status, PROJECT_INJECTION)
        except (ApiException, StatusConflict) as error:
            log.warning("could not record missed injections on %s/%s: %s", namespace, project, error)
            return
        self._written[(namespace, project)] = summary

    # -- ending runs of dead pods -------------------------------------------------------------

    def _finish_runs(self, uid: str, namespace: str, project: str, status: str, why: str) -> None:
        if not self._finished.add(uid):
            return
        target = self.targets.get(namespace, project)
        if target is None or target.spec is None or not target.spec.mlflow.enabled:
            return
        tracking_uri = target.spec.mlflow.tracking_uri or self.default_tracking_uri
        if not tracking_uri:
            return
        mlflow = target.spec.mlflow
        self._mlflow.submit(self._end_running_runs, uid, namespace, tracking_uri, mlflow, status, why)

    def _end_running_runs(
        self, uid: str, namespace: str, tracking_uri: str, mlflow: MlflowConfig, status: str, why: str
    ) -> None:
        try:
            rest = MlflowRestClient(
                tracking_uri,
                timeout=self.run_finish_timeout,
                max_retries=1,
                credentials=mlflow_credentials(self.kube, namespace, mlflow),
                deadline=3 * self.run_finish_timeout,
            )
            experiments = rest.post(
                "experiments/search", {"max_results": 1000, "order_by": ["last_update_time DESC"]}
            ).get("experiments", [])
            if not experiments:
                return
            runs = rest.post(
                "runs/search",
                {
                    "experiment_ids": [e["experiment_id"] for e in experiments],
                    "filter": f"tags.`k8s.pod_uid` = '{uid}' and attributes.status = 'RUNNING'",
                    "max_results": 100,
                },
            ).get("runs", [])
            now_ms = int(time.time() * 1000)
            for run in runs:
                run_id = run["info"]["run_id"]
                rest.post(
                    "runs/set-tag",
                    {"run_id": run_id, "key": "featurelineage.ended_by", "value": f"operator: pod {why}"},
                )
                rest.post("runs/update", {"run_id": run_id, "status": status, "end_time": now_ms})
                log.info("ended MLflow run %s %s: its pod (uid %s) %s", run_id, status, uid, why)
        except (DeliveryError, MlflowApiError, KeyError, ValueError) as error:
            log.warning("could not end the MLflow runs of pod %s: %s", uid, error)
