"""Exactly-once delivery of an :class:`AuditRecord` as one MLflow run.

Every run carries the record's id as a tag. Delivery first looks the id up: a finished run is
the answer; an unfinished one (an earlier attempt died midway) is completed; only when there is
none is a run created - with all its tags in the creating call, so a run that exists is always
findable by its id. A create whose answer is lost is never repeated blindly: the id is looked up
again first, and a run found is adopted.

One operation is one run, however often its Job retries: each attempt has the same id, and an
attempt that ended later than the one the run holds is recorded in it (``featurelineage.attempts``
counts them, metrics get the attempt as their step) and its outcome becomes the run's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from feast_lineage.audit import tags
from feast_lineage.audit.errors import DeliveryError, MlflowApiError, PermanentDeliveryError
from feast_lineage.audit.mlflow_rest import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, Credentials, MlflowRestClient
from feast_lineage.audit.record import AuditRecord
from feast_lineage.contract import MlflowRun

_TERMINAL = frozenset({"FINISHED", "FAILED", "KILLED"})
_PARAMS_PER_BATCH = 100  # MLflow's log-batch limit
_METRICS_PER_BATCH = 1000
_TAGS_PER_BATCH = 100
MAX_DELIVERY_SECONDS = 120.0
"""Bound of one delivery whatever the caller's timeout and retries (a spec allows 300 s x 11 attempts)."""


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
    """Make sure exactly one run of ``record`` exists and holds its outcome; raises :class:`DeliveryError`
    (:class:`PermanentDeliveryError` when trying again cannot help).

    ``credentials`` default to MLflow's environment variables. The whole call takes at most
    ``deadline`` seconds (default ``2 * timeout * (max_retries + 1)``, never more than
    :data:`MAX_DELIVERY_SECONDS`), whatever the server does.
    """
    budget = min(deadline if deadline is not None else 2 * timeout * (max_retries + 1), MAX_DELIVERY_SECONDS)
    try:
        client = MlflowRestClient(
            tracking_uri, timeout=timeout, max_retries=max_retries, credentials=credentials, deadline=budget
        )
    except DeliveryError as error:
        raise PermanentDeliveryError(str(error)) from None
    experiment_id = _experiment_id(client, record.experiment)
    run = _find_run(client, experiment_id, record.id)
    if run is None:
        created = _create_once(client, experiment_id, record, max_retries + 1)
        if created is None:
            run = _find_run(client, experiment_id, record.id)
            if run is None:
                raise DeliveryError(f"MLflow lost the run of audit record {record.id} it reported created")
        else:
            run_id = created
            _complete(client, run_id, record, logged_params={}, logged_metrics=set())
    if run is not None:
        run_id = str(_dig(run, "info", "run_id"))
        info, data = run.get("info", {}), run.get("data", {})
        logged_params = {item["key"]: item.get("value", "") for item in data.get("params", [])}
        if info.get("status") not in _TERMINAL:
            logged_metrics = {item["key"] for item in data.get("metrics", [])}
            _complete(client, run_id, record, logged_params=logged_params, logged_metrics=logged_metrics)
        elif int(info.get("end_time") or 0) < record.end_time_ms:
            _record_later_attempt(client, run_id, record, data, logged_params)
    return DeliveredRun(
        experiment=record.experiment,
        experiment_id=experiment_id,
        run_id=run_id,
        run_url=f"{client.base_url}/#/experiments/{experiment_id}/runs/{run_id}",
    )


def _create_once(client: MlflowRestClient, experiment_id: str, record: AuditRecord, tries: int) -> str | None:
    """The new run's id; None when MLflow may have created it without the answer arriving (the caller
    then finds it by its id). Never creates twice: each try after a lost answer looks first."""
    for attempt in range(tries):
        if attempt and _find_run(client, experiment_id, record.id) is not None:
            return None
        try:
            created = client.post(
                "runs/create",
                {
                    "experiment_id": experiment_id,
                    "run_name": record.run_name,
                    "start_time": record.start_time_ms,
                    "tags": _key_values({**record.tags, tags.AUDIT_ID: record.id, tags.ATTEMPTS: "1"}),
                },
                retry=False,
            )
        except PermanentDeliveryError:
            raise
        except DeliveryError:
            if attempt + 1 == tries:
                raise
            continue
        return str(_dig(created, "run", "info", "run_id"))
    return None


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
        raise PermanentDeliveryError(
            f"MLflow experiment {name!r} is deleted; restore it (or purge it) to deliver audit records"
        )
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


def _record_later_attempt(
    client: MlflowRestClient, run_id: str, record: AuditRecord, data: Mapping[str, Any], logged: Mapping[str, str]
) -> None:
    """A retry of the operation ended after the attempt the run holds: its outcome becomes the run's."""
    run_tags = {item["key"]: item.get("value", "") for item in data.get("tags", [])}
    try:
        attempts = int(run_tags.get(tags.ATTEMPTS, "1")) + 1
    except ValueError:
        attempts = 2
    if tags.ERROR in run_tags and tags.ERROR not in record.tags:
        # An earlier attempt's error is not this outcome's.
        client.post("runs/delete-tag", {"run_id": run_id, "key": tags.ERROR})
    new_tags = {**record.tags, tags.ATTEMPTS: str(attempts)}
    for chunk in _chunks(list(new_tags.items()), _TAGS_PER_BATCH):
        client.post("runs/log-batch", {"run_id": run_id, "tags": _key_values(dict(chunk))})
    # Params cannot change in MLflow; those of the window are tags as well.
    params = [(key, value) for key, value in record.params.items() if key not in logged]
    for chunk in _chunks(params, _PARAMS_PER_BATCH):
        client.post("runs/log-batch", {"run_id": run_id, "params": _key_values(dict(chunk))})
    _log_metrics(client, run_id, record, list(record.metrics.items()), step=attempts - 1)
    client.post("runs/update", {"run_id": run_id, "status": record.status, "end_time": record.end_time_ms})


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
    _log_metrics(client, run_id, record, metrics, step=0)
    client.post("runs/update", {"run_id": run_id, "status": record.status, "end_time": record.end_time_ms})


def _log_metrics(
    client: MlflowRestClient, run_id: str, record: AuditRecord, metrics: list[tuple[str, float]], step: int
) -> None:
    for chunk in _chunks(metrics, _METRICS_PER_BATCH):
        client.post(
            "runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [
                    {"key": key, "value": value, "timestamp": record.end_time_ms, "step": step} for key, value in chunk
                ],
            },
        )


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
