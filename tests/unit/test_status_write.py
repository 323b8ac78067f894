"""Status writes: owned fields stored whole from the typed models, other writers' fields kept, conflicts."""

from __future__ import annotations

import copy
import types
import typing
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import AwareDatetime, BaseModel

from feast_lineage.api import (
    FEATURE_STORE_PROJECT_PLURAL,
    FeatureStoreProjectStatus,
    InjectionStatus,
    LastApply,
    MaterializationJobStatus,
    StatusModel,
)
from feast_lineage.controller.kube import Kube, StatusConflict
from feast_lineage.controller.rest import CustomObjects
from feast_lineage.domain.status_owners import (
    PROJECT_INJECTION,
    PROJECT_RECONCILER,
    PROJECT_SCHEDULE,
    RUN_RECONCILER,
    stored_status,
)

WHEN = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _sample(annotation: Any) -> Any:
    """A value of ``annotation`` with every optional part set."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _sample(args[0])
    if origin in (typing.Union, types.UnionType):
        return _sample(next(arg for arg in args if arg is not type(None)))
    if origin is typing.Literal:
        return args[0]
    if origin is list:
        return [_sample(args[0])]
    if origin is dict:
        return {"i": "record"}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return full(annotation)
    if annotation in (datetime, AwareDatetime):
        return WHEN
    return {str: "x", int: 1, float: 1.5, bool: True}[annotation]


def full(model: type[BaseModel]) -> Any:
    """An instance of ``model`` with every field set, nested optional ones included."""
    return model(**{name: _sample(field.annotation) for name, field in model.model_fields.items()})


def _may_be_empty(annotation: Any) -> bool:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _may_be_empty(args[0])
    return origin is list or (origin in (typing.Union, types.UnionType) and type(None) in args)


def optional_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every field that may be left out (None or an empty list), at any depth, by attribute name."""
    paths = []
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        if _may_be_empty(field.annotation):
            paths.append(path)
        nested = [
            arg
            for arg in (field.annotation, *typing.get_args(field.annotation))
            if isinstance(arg, type) and issubclass(arg, BaseModel)
        ]
        for sub in nested:
            paths.extend(optional_paths(sub, path))
    return paths


def cleared(status: StatusModel, path: tuple[str, ...]) -> StatusModel:
    copied = status.model_copy(deep=True)
    target: Any = copied
    for name in path[:-1]:
        target = getattr(target, name)
        target = target[0] if isinstance(target, list) else target
    value = getattr(target, path[-1])
    setattr(target, path[-1], [] if isinstance(value, list) else None)
    return copied


def wire_path(model: type[BaseModel], path: tuple[str, ...]) -> list[str]:
    names = []
    for name in path:
        field = model.model_fields[name]
        names.append(field.alias or name)
        nested = [
            arg
            for arg in (field.annotation, *typing.get_args(field.annotation))
            if isinstance(arg, type) and issubclass(arg, BaseModel)
        ]
        model = nested[0] if nested else model
    return names


def lookup(stored: dict[str, Any], names: list[str]) -> Any:
    value: Any = stored
    for name in names:
        if isinstance(value, list):
            value = value[0] if value else None
        if not isinstance(value, dict) or name not in value:
            return None
        value = value[name]
    return value


CASES: list[tuple[type[StatusModel], frozenset[str]]] = [
    (FeatureStoreProjectStatus, PROJECT_RECONCILER | PROJECT_SCHEDULE | PROJECT_INJECTION | {"lastMaterialization"}),
    (MaterializationJobStatus, RUN_RECONCILER),
]


@pytest.mark.parametrize(
    ("model", "path"),
    [(model, path) for model, _ in CASES for path in optional_paths(model)],
    ids=lambda value: ".".join(value) if isinstance(value, tuple) else value.__name__,
)
def test_every_optional_field_set_then_cleared_is_gone(model: type[StatusModel], path: tuple[str, ...]) -> None:
    owned = dict(CASES)[model]
    before = full(model)
    names = wire_path(model, path)
    stored_before = stored_status({}, before, owned)
    assert lookup(stored_before, names) not in (None, []), f"{'.'.join(names)} was not set"
    stored_after = stored_status(stored_before, cleared(before, path), owned)
    assert lookup(stored_after, names) in (None, []), f"{'.'.join(names)} survived: {stored_after}"


def test_fields_a_writer_does_not_own_are_kept_as_read() -> None:
    read = {"injection": {"missedPods": 2, "missedPodNames": ["a", "b"]}, "schedule": {"message": "m"}, "x": 1}
    new = FeatureStoreProjectStatus(last_apply=LastApply(outcome="Succeeded"))
    stored = stored_status(read, new, PROJECT_RECONCILER)
    assert stored["injection"] == read["injection"] and stored["schedule"] == read["schedule"]
    assert stored["lastApply"] == {"outcome": "Succeeded"}
    # A field no writer knows (written by a newer version) is kept too, until its owner rewrites it.
    assert stored["x"] == 1


# -- the write itself, against an API server stand-in ---------------------------------------------


class FakeStatusApi:
    """replace_namespaced_custom_object_status with the API server's optimistic concurrency."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.writes: list[dict[str, Any]] = []
        self.before_write: list[Any] = []

    def bump(self, status: dict[str, Any]) -> None:
        """Another writer's change."""
        self.obj = copy.deepcopy({**self.obj, "status": status})
        meta = self.obj["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)

    def replace_namespaced_custom_object_status(self, *args: Any, **kwargs: Any) -> None:
        body = args[-1]
        if self.before_write:
            self.before_write.pop(0)()
        if body["metadata"]["resourceVersion"] != self.obj["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        self.writes.append(copy.deepcopy(body["status"]))
        self.bump(body["status"])

    def get_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        return types.SimpleNamespace(data=__import__("json").dumps(self.obj))


def _kube(api: FakeStatusApi) -> Kube:
    kube = Kube(client.ApiClient())
    kube.custom = cast(CustomObjects, api)
    return kube


def _project(status: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": "p", "namespace": "ns", "resourceVersion": "1"}
    return {
        "apiVersion": "featurelineage.io/v1alpha1",
        "kind": "FeatureStoreProject",
        "metadata": meta,
        "status": status,
    }


def test_write_replaces_nested_fields_instead_of_merging() -> None:
    read = _project({"lastApply": {"outcome": "Failed", "error": "boom", "mlflow": {"runId": "old"}}})
    api = FakeStatusApi(copy.deepcopy(read))
    status = FeatureStoreProjectStatus.from_k8s(read["status"])
    status.last_apply = LastApply(outcome="Succeeded")
    assert _kube(api).write_status(FEATURE_STORE_PROJECT_PLURAL, read, status, PROJECT_RECONCILER)
    assert api.obj["status"]["lastApply"] == {"outcome": "Succeeded"}


def test_an_unchanged_status_is_not_written() -> None:
    read = _project(FeatureStoreProjectStatus(last_apply=LastApply(outcome="Succeeded", time=WHEN)).to_k8s())
    api = FakeStatusApi(copy.deepcopy(read))
    status = FeatureStoreProjectStatus.from_k8s(read["status"])
    assert not _kube(api).write_status(FEATURE_STORE_PROJECT_PLURAL, read, status, PROJECT_RECONCILER)
    assert api.writes == []


def test_a_concurrent_write_of_another_field_is_kept() -> None:
    read = _project({})
    api = FakeStatusApi(copy.deepcopy(read))
    injection = InjectionStatus(missed_pods=1, missed_pod_names=["pod"]).to_k8s()
    api.before_write.append(lambda: api.bump({"injection": injection}))
    status = FeatureStoreProjectStatus(last_apply=LastApply(outcome="Succeeded"))
    assert _kube(api).write_status(FEATURE_STORE_PROJECT_PLURAL, read, status, PROJECT_RECONCILER)
    assert api.obj["status"] == {**status.to_k8s(), "injection": injection}
    assert len(api.writes) == 1


def test_a_concurrent_write_of_an_owned_field_asks_for_a_new_pass() -> None:
    read = _project({})
    api = FakeStatusApi(copy.deepcopy(read))
    api.before_write.append(lambda: api.bump({"lastApply": {"outcome": "Failed"}}))
    status = FeatureStoreProjectStatus(last_apply=LastApply(outcome="Succeeded"))
    with pytest.raises(StatusConflict):
        _kube(api).write_status(FEATURE_STORE_PROJECT_PLURAL, read, status, PROJECT_RECONCILER)
    assert api.obj["status"] == {"lastApply": {"outcome": "Failed"}}


def test_a_status_that_no_longer_parses_loses_only_the_bad_field() -> None:
    status = FeatureStoreProjectStatus.from_k8s({"lastApply": {"time": "yesterday"}, "featureViews": ["a"]})
    assert status.last_apply is None and status.feature_views == ["a"]
