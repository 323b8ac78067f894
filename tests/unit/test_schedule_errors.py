"""A schedule tick that fails the same way each time says why in status.schedule.message."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from feast_lineage.controller.kube import Kube
from feast_lineage.controller.locks import ObjectLocks
from feast_lineage.controller.rest import CustomObjects
from feast_lineage.controller.schedule_reconciler import ScheduleReconciler
from tests.unit.test_status_write import FakeStatusApi


class RefusingApi(FakeStatusApi):
    """The API server refuses to create MaterializationJobs (a 422), or is down (a 503)."""

    def __init__(self, obj: dict[str, Any], status: int) -> None:
        super().__init__(obj)
        self.status = status

    def create_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> None:
        error = ApiException(status=self.status, reason="Refused")
        error.body = json.dumps({"message": 'MaterializationJob.featurelineage.io "x" is invalid'})
        raise error


def _project() -> dict[str, Any]:
    return {
        "apiVersion": "featurelineage.io/v1alpha1",
        "kind": "FeatureStoreProject",
        "metadata": {
            "name": "drivers",
            "namespace": "ml",
            "uid": "u-1",
            "resourceVersion": "1",
            "creationTimestamp": "2026-11-26T10:00:00Z",
        },
        "spec": {
            "project": "driver_stats",
            "repo": {"configMap": {"name": "repo"}},
            "featureStore": {"registry": {"path": "/data/registry.db"}},
            "materialization": {"schedule": "0 * * * *"},
        },
        "status": {"lastApply": {"outcome": "Succeeded"}},
    }


def _tick(api: RefusingApi) -> None:
    kube = Kube(client.ApiClient())
    kube.custom = cast(CustomObjects, api)
    ScheduleReconciler(kube, ObjectLocks()).tick("ml", "drivers", [], now=datetime(2026, 11, 26, 12, 1, tzinfo=UTC))


def test_a_refused_run_is_reported_in_the_schedule_message() -> None:
    api = RefusingApi(copy.deepcopy(_project()), 422)
    _tick(api)
    schedule = api.obj["status"]["schedule"]
    assert schedule["message"] == (
        "ApiRequestRejected: the API server refused a request (422): "
        'MaterializationJob.featurelineage.io "x" is invalid'
    )
    assert api.obj["status"]["lastApply"] == {"outcome": "Succeeded"}


def test_a_transient_error_is_raised_for_a_retry() -> None:
    with pytest.raises(ApiException):
        _tick(RefusingApi(copy.deepcopy(_project()), 503))
