"""In-memory MLflow and cluster sources for the lineage tests, holding data in the shapes the
REST API and the API server return (as read from a real tracking server and control plane)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from feast_lineage.lineage.records import ModelVersion, Run, parse_model_version, parse_run
from feast_lineage.lineage.sources import SourceUnavailable

Obj = dict[str, Any]
BASE_URL = "http://mlflow.test:5000"
NS = "team-a"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp() * 1000)


def rest_run(
    run_id: str,
    experiment_id: str,
    tags: Mapping[str, str],
    start: str,
    end: str | None = None,
    status: str = "FINISHED",
    params: Mapping[str, str] | None = None,
    name: str | None = None,
) -> Obj:
    info: Obj = {
        "run_uuid": run_id,
        "run_id": run_id,
        "experiment_id": experiment_id,
        "run_name": name or run_id,
        "user_id": "root",
        "status": status,
        "start_time": ms(start),
        "lifecycle_stage": "active",
    }
    if end:
        info["end_time"] = ms(end)
    return {
        "info": info,
        "data": {
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
            "params": [{"key": k, "value": v} for k, v in (params or {}).items()],
        },
    }


def rest_version(name: str, version: str, run_id: str, created: str, **tags: str) -> Obj:
    return {
        "name": name,
        "version": version,
        "creation_timestamp": ms(created),
        "current_stage": "None",
        "source": "models:/m-0123",
        "run_id": run_id,
        "status": "READY",
        "tags": [{"key": k, "value": v} for k, v in tags.items()],
    }


def apply_run(
    run_id: str, audit_id: str, start: str, end: str, namespace: str = NS, name: str = "drivers", **tags: str
) -> Obj:
    return rest_run(
        run_id,
        "1",
        {
            "feast.operation": "apply",
            "feast.project": "driver_stats",
            "featurelineage.audit_id": audit_id,
            "featurelineage.outcome": "succeeded",
            "featurelineage.trigger": "spec changed",
            "k8s.namespace": namespace,
            "k8s.kind": "FeatureStoreProject",
            "k8s.name": name,
            "k8s.job": f"{name}-apply-{audit_id[:6]}",
            **tags,
        },
        start,
        end,
        name="apply_driver_stats",
    )


def materialize_run(
    run_id: str,
    audit_id: str,
    start: str,
    end: str,
    views: str,
    window: tuple[str, str],
    namespace: str = NS,
    mj: str = "backfill",
    outcome: str = "succeeded",
) -> Obj:
    return rest_run(
        run_id,
        "1",
        {
            "feast.operation": "materialize",
            "feast.project": "driver_stats",
            "feast.materialize.feature_views": views,
            "feast.materialize.start_date": window[0],
            "feast.materialize.end_date": window[1],
            "featurelineage.audit_id": audit_id,
            "featurelineage.outcome": outcome,
            "featurelineage.trigger": "manual",
            "k8s.namespace": namespace,
            "k8s.kind": "MaterializationJob",
            "k8s.name": mj,
            "k8s.project": "drivers",
            "k8s.job": f"{mj}-materialize",
        },
        start,
        end,
        status="FINISHED" if outcome == "succeeded" else "FAILED",
        name="materialize_driver_stats",
    )


def training_tags(namespace: str = NS, **extra: str) -> dict[str, str]:
    return {
        "feast.project": "driver_stats",
        "feast.retrieval_type": "historical",
        "feast.feature_service": "driver_activity_v1",
        "feast.feature_views": "driver_daily_trips,driver_hourly_stats",
        "feast.feature_refs": "driver_hourly_stats:conv_rate,driver_hourly_stats:acc_rate,"
        "driver_daily_trips:avg_daily_trips",
        "feast.entity_df_type": "dataframe",
        "feast.entity_df_rows": "20",
        "feast.entity_df_columns": "driver_id,event_timestamp",
        "k8s.namespace": namespace,
        "k8s.pod": "train-abcde",
        "k8s.pod_uid": "uid-1",
        "k8s.container": "train",
        "k8s.image": "trainer:1",
        "k8s.owner_kind": "Job",
        "k8s.owner_name": "train",
        "k8s.job": "train",
        "featurelineage.project": "drivers",
        "featurelineage.feast_project": "driver_stats",
        "featurelineage.role": "training",
        "featurelineage.revision": "configmap/repo@aaaa",
        "featurelineage.apply_run_id": "apply1",
        **extra,
    }


_CONDITION = re.compile(r"^(tags\.`(?P<tag>[^`]+)`|(?P<attr>run_id|name))\s+(?P<op>=|LIKE|IN)\s+(?P<value>.+)$")


def _matches(filter_string: str, tags: Mapping[str, str], attributes: Mapping[str, str | None] | None = None) -> bool:
    """The part of MLflow's filter grammar the lineage queries use: AND of =, LIKE and IN."""
    for condition in filter_string.split(" AND "):
        found = _CONDITION.match(condition.strip())
        assert found, f"filter the fake does not understand: {condition!r}"
        actual = tags.get(found["tag"]) if found["tag"] else (attributes or {}).get(found["attr"])
        value = found["value"].strip()
        if found["op"] == "IN":
            options = [item.strip().strip("'") for item in value.strip("()").split(",")]
            if actual not in options:
                return False
            continue
        wanted = value.strip("'")
        if actual is None:
            return False
        if found["op"] == "=" and actual != wanted:
            return False
        if found["op"] == "LIKE":
            pattern = "^" + ".".join(re.escape(part).replace("%", ".*") for part in wanted.split("_")) + "$"
            if not re.match(pattern, actual):
                return False
    return True


class FakeMlflow:
    base_url = BASE_URL

    def __init__(
        self,
        runs: Sequence[Obj] = (),
        versions: Sequence[Obj] = (),
        experiments: Mapping[str, str] | None = None,
        artifacts: Mapping[str, list[str]] | None = None,
        aliases: Mapping[tuple[str, str], str] | None = None,
        down: bool = False,
    ) -> None:
        self.runs = [parse_run(raw) for raw in runs]
        self.versions = [parse_model_version(raw) for raw in versions]
        self.experiment_names = dict(experiments or {"1": "driver_stats-feast-ops", "2": "driver_stats"})
        self.artifact_paths = dict(artifacts or {})
        self.aliases = dict(aliases or {})
        self.down = down
        self.calls: list[str] = []

    def _call(self, what: str) -> None:
        self.calls.append(what)
        if self.down:
            raise SourceUnavailable("MLflow at http://mlflow.test:5000 unreachable")

    def model_version(self, name: str, version: str) -> ModelVersion | None:
        self._call("model_version")
        return next((v for v in self.versions if (v.name, v.version) == (name, version)), None)

    def model_version_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        self._call("model_version_by_alias")
        version = self.aliases.get((name, alias))
        return self.model_version(name, version) if version else None

    def run(self, run_id: str) -> Run | None:
        self._call("run")
        return next((run for run in self.runs if run.run_id == run_id), None)

    def experiment_name(self, experiment_id: str | None) -> str | None:
        self._call("experiment_name")
        return self.experiment_names.get(experiment_id or "")

    def experiment_id(self, name: str) -> str | None:
        self._call("experiment_id")
        return next((key for key, value in self.experiment_names.items() if value == name), None)

    def experiments(self) -> dict[str, str]:
        self._call("experiments")
        return dict(self.experiment_names)

    def search_runs(self, experiment_ids: Sequence[str], filter_string: str, max_runs: int) -> tuple[list[Run], bool]:
        self._call(f"search_runs {filter_string}")
        found = [run for run in self.runs if run.experiment_id in experiment_ids and _matches(filter_string, run.tags)]
        found.sort(key=lambda run: run.start or datetime.min.replace(tzinfo=UTC), reverse=True)
        return found[:max_runs], len(found) > max_runs

    def search_model_versions(self, filter_string: str, max_versions: int = 10000) -> list[ModelVersion]:
        self._call(f"search_model_versions {filter_string}")
        return [v for v in self.versions if _matches(filter_string, v.tags, {"run_id": v.run_id, "name": v.name})][
            :max_versions
        ]

    def artifacts(self, run_id: str) -> list[str]:
        self._call("artifacts")
        return list(self.artifact_paths.get(run_id, []))


class FakeCluster:
    def __init__(self, objects: Sequence[Obj] = (), down: bool = False) -> None:
        self.objects = list(objects)
        self.down = down

    def _of(self, kind: str, namespace: str) -> list[Obj]:
        if self.down:
            raise SourceUnavailable("the cluster at https://127.0.0.1:6443 is unreachable: MaxRetryError")
        return [o for o in self.objects if o["kind"] == kind and o["metadata"].get("namespace") == namespace]

    def _named(self, kind: str, namespace: str, name: str) -> Obj | None:
        return next((o for o in self._of(kind, namespace) if o["metadata"]["name"] == name), None)

    def project(self, namespace: str, name: str) -> Obj | None:
        return self._named("FeatureStoreProject", namespace, name)

    def projects(self, namespace: str) -> list[Obj]:
        return self._of("FeatureStoreProject", namespace)

    def materialization_jobs(self, namespace: str) -> list[Obj]:
        return self._of("MaterializationJob", namespace)

    def apply_jobs(self, namespace: str, project: str) -> list[Obj]:
        return [
            job
            for job in self._of("Job", namespace)
            if (job["metadata"].get("labels") or {}).get("featurelineage.io/project") == project
            and (job["metadata"].get("labels") or {}).get("featurelineage.io/operation") == "apply"
        ]

    def job(self, namespace: str, name: str) -> Obj | None:
        return self._named("Job", namespace, name)

    def pod(self, namespace: str, name: str) -> Obj | None:
        return self._named("Pod", namespace, name)


def project_obj(
    namespace: str = NS,
    name: str = "drivers",
    last_apply: Obj | None = None,
    pending: Sequence[Obj] = (),
    tracking_uri: str | None = None,
) -> Obj:
    mlflow: Obj = {"logOperations": True}
    if tracking_uri:
        mlflow["trackingUri"] = tracking_uri
    return {
        "kind": "FeatureStoreProject",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"project": "driver_stats", "mlflow": mlflow},
        "status": {
            "featureViews": ["driver_daily_trips", "driver_hourly_stats"],
            "featureServices": ["driver_activity_v1"],
            "entities": ["driver"],
            **({"lastApply": last_apply} if last_apply else {}),
            **({"pendingAudit": list(pending)} if pending else {}),
        },
    }


def apply_job(name: str, audit_id: str, revision: str, created: str, done: str | None, project: str = "drivers") -> Obj:
    status: Obj = {"startTime": created}
    if done:
        status.update(
            {
                "succeeded": 1,
                "completionTime": done,
                "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": done}],
            }
        )
    else:
        status["active"] = 1
    return {
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": NS,
            "creationTimestamp": created,
            "labels": {"featurelineage.io/project": project, "featurelineage.io/operation": "apply"},
            "annotations": {
                "featurelineage.io/audit-id": audit_id,
                "featurelineage.io/revision": revision,
                "featurelineage.io/trigger": "spec changed",
                "featurelineage.io/generation": "2",
            },
        },
        "status": status,
    }


def materialization_obj(
    name: str, audit_id: str, done: str, views: list[str], window: tuple[str, str], run_id: str | None = None
) -> Obj:
    status: Obj = {
        "phase": "Succeeded",
        "auditId": audit_id,
        "startTime": done,
        "completionTime": done,
        "featureViews": views,
        "window": {"start": window[0], "end": window[1]},
        "jobName": f"{name}-materialize",
        "provenance": {"triggeredBy": "gitops"},
    }
    if run_id:
        status["mlflow"] = {"experiment": "driver_stats-feast-ops", "runId": run_id}
    return {
        "kind": "MaterializationJob",
        "metadata": {"name": name, "namespace": NS, "creationTimestamp": done},
        "spec": {"projectRef": {"name": "drivers"}, "mode": "Range", "startTime": window[0], "endTime": window[1]},
        "status": status,
    }
