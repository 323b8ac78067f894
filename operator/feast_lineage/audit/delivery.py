"""Exactly-once delivery of an :class:`AuditRecord` as one MLflow run.

Every run carries the record's id as a tag. Delivery first looks the id up: a finished run is
the answer; an unfinished one (an earlier attempt died midway) is completed; only when there is
none is a run created - with all its tags in the creating call, so a run that exists is always
findable by its id.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from feast_lineage.audit import tags
from feast_lineage.audit.errors import DeliveryError, MlflowApiError
from feast_lineage.audit.mlflow_rest import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, Credentials, MlflowRestClient
from feast_lineage.audit.record import AuditRecord
from feast_lineage.contract import MlflowRun

_TERMINAL = frozenset({"FINISHED", "FAILED", "KILLED"})
_PARAMS_PER_BATCH = 100  # MLflow's log-batch limit
_METRICS_PER_BATCH = 1000


@dataclass(frozen=True)
class DeliveredRun:
    """The MLflow run that holds an audit record."""

    experiment: str
    experiment_id: str
    run_id: str
    run_url: str

    def as_contract(self) -> MlflowRun:
        return MlflowRun(
            experiment=self.experiment, experiment_id=self.experiment_id, run_id=self.run_id, run_url=self.run_url
        )


def deliver(
    record: AuditRecord,
    tracking_uri: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_retries: int = DEFAULT_MAX_RETRIES,
    credentials: Credentials | None = None,
    deadline: float | None = None,
) -> DeliveredRun:
    """Make sure exactly one run of ``record`` exists and is finished; raises :class:`DeliveryError`.

    ``credentials`` default to MLflow's environment variables. The whole call takes at most
    ``deadline`` seconds (default ``2 * timeout * (max_retries + 1)``), whatever the server does.
    """
    client = MlflowRestClient(
        tracking_uri, timeout=timeout, max_retries=max_retries, credentials=credentials, deadline=deadline
    )
    experiment_id = _experiment_id(client, record.experiment)
    run = _find_run(client, experiment_id, record.id)
    if run is None:
        created = client.post(
            "runs/create",
            {
                "experiment_id": experiment_id,
                "run_name": record.run_name,
                "start_time": record.start_time_ms,
                "tags": _key_values({**record.tags, tags.AUDIT_ID: record.id}),
            },
        )
        run_id = str(_dig(created, "run", "info", "run_id"))
        _complete(client, run_id, record, logged_params={}, logged_metrics=set())
    else:
        run_id = str(_dig(run, "info", "run_id"))
        if _dig(run, "info", "status") not in _TERMINAL:
            data = run.get("data", {})
            logged_params = {item["key"]: item.get("value", "") for item in data.get("params", [])}
            logged_metrics = {item["key"] for item in data.get("metrics", [])}
            _complete(client, run_id, record, logged_params=logged_params, logged_metrics=logged_metrics)
    return DeliveredRun(
        experiment=record.experiment,
        experiment_id=experiment_id,
        run_id=run_id,
        run_url=f"{client.base_url}/#/experiments/{experiment_id}/runs/{run_id}",
    )


def _experiment_id(client: MlflowRestClient, name: str) -> str:
    found = _get_experiment(client, name)
    if found is None:
        try:
            return str(_dig(client.post("experiments/create", {"name": name}), "experiment_id"))
        except MlflowApiError as error:
            # Another deliverer created it between our two calls.
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        found = _get_experiment(client, name)
        if found is None:
            raise DeliveryError(f"MLflow experiment {name!r} neither exists nor can be created")
    if found.get("lifecycle_stage") == "deleted":
        raise DeliveryError(f"MLflow experiment {name!r} is deleted; restore it (or purge it) to deliver audit records")
    return str(found["experiment_id"])


def _get_experiment(client: MlflowRestClient, name: str) -> dict[str, Any] | None:
    try:
        experiment = client.get("experiments/get-by-name", {"experiment_name": name}).get("experiment")
    except MlflowApiError as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    if not isinstance(experiment, dict):
        raise DeliveryError(f"MLflow returned no experiment for {name!r}")
    return experiment


def _find_run(client: MlflowRestClient, experiment_id: str, audit_id: str) -> dict[str, Any] | None:
    found = client.post(
        "runs/search",
        {
            "experiment_ids": [experiment_id],
            # The id's alphabet (see AuditId) needs no escaping inside the quotes.
            "filter": f"tags.`{tags.AUDIT_ID}` = '{audit_id}'",
            "run_view_type": "ACTIVE_ONLY",
            "max_results": 10,
            "order_by": ["attributes.start_time ASC"],
        },
    )
    runs = found.get("runs") or []
    if not runs:
        return None
    # Prefer a finished run; duplicates cannot arise from this module, but a user may copy tags.
    finished = [run for run in runs if _dig(run, "info", "status") in _TERMINAL]
    chosen = (finished or runs)[0]
    if not isinstance(chosen, dict):
        raise DeliveryError("MLflow runs/search returned a malformed run")
    return chosen


def _complete(
    client: MlflowRestClient,
    run_id: str,
    record: AuditRecord,
    *,
    logged_params: Mapping[str, str],
    logged_metrics: set[str],
) -> None:
    params = [(key, value) for key, value in record.params.items() if key not in logged_params]
    metrics = [(key, value) for key, value in record.metrics.items() if key not in logged_metrics]
    for chunk in _chunks(params, _PARAMS_PER_BATCH):
        client.post("runs/log-batch", {"run_id": run_id, "params": _key_values(dict(chunk))})
    for chunk in _chunks(metrics, _METRICS_PER_BATCH):
        client.post(
            "runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [
                    {"key": key, "value": value, "timestamp": record.end_time_ms, "step": 0} for key, value in chunk
                ],
            },
        )
    client.post("runs/update", {"run_id": run_id, "status": record.status, "end_time": record.end_time_ms})


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _key_values(values: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in values.items()]


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            raise DeliveryError(f"MLflow answered without {'.'.join(keys)}")
        data = data[key]
    return data
