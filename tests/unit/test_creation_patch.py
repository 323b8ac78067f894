"""What the mutating webhook adds to a create: the creator, and on a run or a project the operator's finalizer."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from feast_lineage.domain.labels import ANNOTATION_CREATOR, RUN_FINALIZER
from feast_lineage.tenancy.admission import creation_patch, mutate_resource

Obj = dict[str, Any]


def request(kind: str, metadata: Obj, operation: str = "CREATE") -> Obj:
    return {
        "uid": "r-1",
        "operation": operation,
        "kind": {"group": "featurelineage.io", "version": "v1alpha1", "kind": kind},
        "userInfo": {"username": "alice"},
        "object": {"metadata": metadata},
    }


def test_a_new_run_gets_the_finalizer_with_its_creator() -> None:
    assert creation_patch(request("MaterializationJob", {"name": "r"})) == [
        {"op": "add", "path": "/metadata/annotations", "value": {ANNOTATION_CREATOR: "alice"}},
        {"op": "add", "path": "/metadata/finalizers", "value": [RUN_FINALIZER]},
    ]


def test_a_run_with_finalizers_of_its_own_keeps_them_and_gets_the_operators_after_them() -> None:
    patch = creation_patch(request("MaterializationJob", {"name": "r", "finalizers": ["example.com/keep"]}))
    assert patch[-1] == {"op": "add", "path": "/metadata/finalizers/-", "value": RUN_FINALIZER}


def test_a_run_that_names_the_finalizer_already_is_not_given_it_twice() -> None:
    patch = creation_patch(request("MaterializationJob", {"name": "r", "finalizers": [RUN_FINALIZER]}))
    assert [op["path"] for op in patch] == ["/metadata/annotations"]


def test_a_project_gets_the_finalizer_with_its_creator_and_an_update_nothing() -> None:
    assert creation_patch(request("FeatureStoreProject", {"name": "p"})) == [
        {"op": "add", "path": "/metadata/annotations", "value": {ANNOTATION_CREATOR: "alice"}},
        {"op": "add", "path": "/metadata/finalizers", "value": [RUN_FINALIZER]},
    ]
    assert creation_patch(request("MaterializationJob", {"name": "r"}, operation="UPDATE")) == []
    assert creation_patch(request("FeatureStoreProject", {"name": "p"}, operation="UPDATE")) == []


def test_the_review_carries_the_patch_as_a_json_patch() -> None:
    review = mutate_resource({"apiVersion": "admission.k8s.io/v1", "request": request("MaterializationJob", {})})
    response = review["response"]
    assert (response["uid"], response["allowed"], response["patchType"]) == ("r-1", True, "JSONPatch")
    assert json.loads(base64.b64decode(response["patch"])) == creation_patch(request("MaterializationJob", {}))
    untouched = mutate_resource({"request": request("MaterializationJob", {}, operation="UPDATE")})["response"]
    assert "patch" not in untouched


@pytest.mark.parametrize("kind", ["MaterializationJob", "FeatureStoreProject"])
def test_an_object_in_a_namespace_the_operator_does_not_watch_gets_no_finalizer(kind: str) -> None:
    # Nothing there would take it off again: the object could never be deleted.
    elsewhere = {**request(kind, {"name": "r"}), "namespace": "elsewhere"}
    assert [op["path"] for op in creation_patch(elsewhere, watched={"team-a"})] == ["/metadata/annotations"]
    watched = {**elsewhere, "namespace": "team-a"}
    assert creation_patch(watched, watched={"team-a"})[-1]["path"] == "/metadata/finalizers"
    # An operator of the whole cluster (no namespace named) passes every run.
    assert creation_patch(elsewhere)[-1]["path"] == "/metadata/finalizers"
