"""The generated CRDs: in sync with crds/, structural, and consistent with the models and the case table."""

import copy
import json
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from feast_lineage.api import FeatureStoreProject, MaterializationJob, diff_crds, generate_crds, write_crds
from feast_lineage.api.crd import HEADER
from tests.api_cases import (
    BAD_CASES,
    MINIMAL_JOB,
    MINIMAL_PROJECT,
    SERVER_ENUM,
    SERVER_MAXIMUM,
    SERVER_MINIMUM,
    SERVER_REQUIRED,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CRDS_DIR = REPO_ROOT / "crds"
FSP_FILE = "featurelineage.io_featurestoreprojects.yaml"
MJ_FILE = "featurelineage.io_materializationjobs.yaml"

Schema = dict[str, Any]

# Keys that a structural schema may not carry, or that mean an unresolved pydantic construct.
FORBIDDEN_KEYS = {"$ref", "$defs", "oneOf", "allOf", "not", "title", "const", "nullable", "uniqueItems"}


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load(generate_crds()[name])
    assert isinstance(document, dict)
    return document


def root_schema(name: str) -> Schema:
    schema = load(name)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


def walk(node: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every schema node with its dotted path (`[]` for list items, `{}` for map values)."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}" if path else name)
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def all_nodes() -> Iterator[tuple[str, str, Schema]]:
    for name in (FSP_FILE, MJ_FILE):
        for path, node in walk(root_schema(name)):
            yield name, path, node


def test_committed_crds_match_the_models() -> None:
    assert diff_crds(CRDS_DIR) == [], "crds/ is out of date: run `feast-lineage crds`"


def test_one_file_per_kind() -> None:
    assert sorted(generate_crds()) == [FSP_FILE, MJ_FILE]


def test_generation_is_deterministic() -> None:
    assert generate_crds() == generate_crds()


def test_write_and_diff(tmp_path: Path) -> None:
    assert diff_crds(tmp_path) == [FSP_FILE, MJ_FILE]
    written = write_crds(tmp_path / "out")
    assert sorted(path.name for path in written) == [FSP_FILE, MJ_FILE]
    assert diff_crds(tmp_path / "out") == []
    (tmp_path / "out" / MJ_FILE).write_text("# edited\n", encoding="utf-8")
    assert diff_crds(tmp_path / "out") == [MJ_FILE]


def test_files_start_with_the_generated_header() -> None:
    for text in generate_crds().values():
        assert text.startswith(HEADER)


@pytest.mark.parametrize(
    "name, kind, plural, short",
    [
        (FSP_FILE, "FeatureStoreProject", "featurestoreprojects", "fsp"),
        (MJ_FILE, "MaterializationJob", "materializationjobs", "mj"),
    ],
)
def test_names_scope_and_version(name: str, kind: str, plural: str, short: str) -> None:
    crd = load(name)
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1" and crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{plural}.featurelineage.io"
    spec = crd["spec"]
    assert spec["group"] == "featurelineage.io" and spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": kind.lower(),
        "shortNames": [short],
        "categories": ["featurelineage"],
    }
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def test_printer_columns() -> None:
    columns = {
        name: [
            (column["name"], column["jsonPath"], column.get("priority", 0))
            for column in load(name)["spec"]["versions"][0]["additionalPrinterColumns"]
        ]
        for name in (FSP_FILE, MJ_FILE)
    }
    ready = '.status.conditions[?(@.type=="Ready")]'
    # `kubectl get` says why a resource is not Ready; `-o wide` adds the message.
    assert columns[FSP_FILE] == [
        ("Project", ".spec.project", 0),
        ("Ready", f"{ready}.status", 0),
        ("Reason", f"{ready}.reason", 0),
        ("Revision", ".status.lastApply.revision", 0),
        ("Age", ".metadata.creationTimestamp", 0),
        ("Message", f"{ready}.message", 1),
    ]
    assert columns[MJ_FILE] == [
        ("Project", ".spec.projectRef.name", 0),
        ("Mode", ".spec.mode", 0),
        ("Phase", ".status.phase", 0),
        ("Reason", f"{ready}.reason", 0),
        ("Start", ".status.window.start", 0),
        ("End", ".status.window.end", 0),
        ("MLflow Run", ".status.mlflow.runId", 1),
        ("Age", ".metadata.creationTimestamp", 0),
        ("Message", f"{ready}.message", 1),
    ]


@pytest.mark.parametrize("name", [FSP_FILE, MJ_FILE])
def test_top_level_schema(name: str) -> None:
    schema = root_schema(name)
    assert schema["type"] == "object" and schema["required"] == ["spec"]
    assert list(schema["properties"]) == ["apiVersion", "kind", "metadata", "spec", "status"]
    assert schema["properties"]["metadata"] == {"type": "object"}


def test_schema_is_structural() -> None:
    for name, path, node in all_nodes():
        where = f"{name}: {path}"
        assert not FORBIDDEN_KEYS & node.keys(), where
        if node.get("x-kubernetes-int-or-string"):
            assert node.get("anyOf") == [{"type": "integer"}, {"type": "string"}], where
            assert "type" not in node, where
            continue
        assert "anyOf" not in node, where
        assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}, where
        assert not ("properties" in node and "additionalProperties" in node), where
        assert node.get("additionalProperties") is not False, where
        if node["type"] == "object" and path != "metadata":
            assert {"properties", "additionalProperties", "x-kubernetes-preserve-unknown-fields"} & node.keys(), where
        if node["type"] == "array":
            assert "items" in node, where
        for required in node.get("required", []):
            assert required in node["properties"], where


def test_every_field_is_documented() -> None:
    for name, path, node in all_nodes():
        if path.split(".", 1)[0] in {"spec", "status"} and not path.endswith(("[]", "{}")):
            assert node.get("description"), f"{name}: {path} has no description"


def test_list_maps_are_keyed_by_required_fields() -> None:
    list_maps = []
    for name, path, node in all_nodes():
        if node.get("x-kubernetes-list-type") == "map":
            list_maps.append((name, path))
            item = node["items"]
            for key in node["x-kubernetes-list-map-keys"]:
                assert key in item.get("required", []) or "default" in item["properties"][key], path
        if node.get("x-kubernetes-list-type") == "set":
            assert node["items"]["type"] in {"string", "integer", "number", "boolean"}, path
    assert (FSP_FILE, "spec.featureStore.secretEnv") in list_maps
    assert (FSP_FILE, "status.conditions") in list_maps
    assert (MJ_FILE, "status.conditions") in list_maps


def test_cel_rules_only_touch_bounded_values() -> None:
    """The API server estimates the cost of each rule from the sizes below it and rejects a CRD over budget."""
    for name, path, node in all_nodes():
        if "x-kubernetes-validations" not in node:
            continue
        for sub_path, sub in walk(node, path):
            where = f"{name}: {sub_path}"
            if sub.get("type") == "string" and "enum" not in sub and sub.get("format") != "date-time":
                assert "maxLength" in sub, where
            if sub.get("type") == "array":
                assert "maxItems" in sub, where
            assert not sub.get("x-kubernetes-preserve-unknown-fields"), where


def test_defaults_are_allowed_values() -> None:
    for name, path, node in all_nodes():
        if "default" in node and "enum" in node:
            assert node["default"] in node["enum"], f"{name}: {path}"


def cel_rules() -> dict[str, tuple[str, str]]:
    """message -> (file, path) of every CEL rule."""
    rules = {}
    for name, path, node in all_nodes():
        for rule in node.get("x-kubernetes-validations", []):
            assert set(rule) == {"rule", "message"}
            rules[rule["message"]] = (name, path)
    return rules


def test_cel_rules_are_where_the_models_raise_them() -> None:
    assert cel_rules() == {
        "exactly one of repo.configMap, repo.git or repo.image must be set": (FSP_FILE, "spec.repo"),
        "repo.git.path must be a relative path without '..' segments": (FSP_FILE, "spec.repo.git"),
        "mlflow.credentials.usernameKey and passwordKey must be set together": (FSP_FILE, "spec.mlflow.credentials"),
        "mlflow.credentials needs tokenKey, or usernameKey and passwordKey": (FSP_FILE, "spec.mlflow.credentials"),
        "mlflow.trackingUri must not carry user info (user:password@); give credentials by mlflow.credentials": (
            FSP_FILE,
            "spec.mlflow",
        ),
        "spec is immutable; create a new MaterializationJob to run again": (MJ_FILE, "spec"),
        "mode Range requires startTime and endTime": (MJ_FILE, "spec"),
        "mode Incremental must not set startTime; it continues from the last materialized time": (MJ_FILE, "spec"),
        "startTime must be before endTime": (MJ_FILE, "spec"),
    }


def test_case_table_covers_every_cel_rule() -> None:
    covered = {case.server_message for case in BAD_CASES if case.server == "cel"}
    immutable = "spec is immutable; create a new MaterializationJob to run again"
    assert set(cel_rules()) - {immutable} <= covered


def test_case_table_covers_every_enum_bound_and_required_field() -> None:
    """Each enum, minimum, maximum and required spec field has a bad case the API server rejects."""
    covered = {
        (case.manifest["kind"], case.field, case.server_message) for case in BAD_CASES if case.server == "schema"
    }
    kinds = {FSP_FILE: "FeatureStoreProject", MJ_FILE: "MaterializationJob"}
    missing: list[tuple[str, str]] = []
    for name, path, node in all_nodes():
        if not path.startswith("spec") or "[]" in path or "{}" in path:
            continue
        expected = []
        if "enum" in node:
            expected.append((path, SERVER_ENUM))
        if "minimum" in node:
            expected.append((path, SERVER_MINIMUM))
        if "maximum" in node:
            expected.append((path, SERVER_MAXIMUM))
        expected.extend((f"{path}.{required}", SERVER_REQUIRED) for required in node.get("required", []))
        missing.extend(item for item in expected if (kinds[name], *item) not in covered)
    assert missing == []


def apply_defaults(schema: Schema, value: Any) -> Any:
    """What the API server does with `default`s: fill in missing fields, then recurse into them."""
    if isinstance(value, dict) and "properties" in schema:
        for name, sub in schema["properties"].items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_defaults(sub, value[name])
    elif isinstance(value, list) and "items" in schema:
        return [apply_defaults(schema["items"], item) for item in value]
    return value


def without_empty(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: without_empty(sub) for key, sub in value.items() if sub not in ({}, [])}
    return value


@pytest.mark.parametrize(
    "name, manifest, model",
    [(FSP_FILE, MINIMAL_PROJECT, FeatureStoreProject), (MJ_FILE, MINIMAL_JOB, MaterializationJob)],
)
def test_schema_defaults_match_model_defaults(name: str, manifest: dict[str, Any], model: type[Any]) -> None:
    spec_schema = root_schema(name)["properties"]["spec"]
    by_server = apply_defaults(spec_schema, copy.deepcopy(manifest["spec"]))
    by_model = without_empty(model.model_validate(manifest).to_k8s()["spec"])
    assert by_server == by_model


def node_at(name: str, path: str) -> Schema:
    node = root_schema(name)
    for part in path.split("."):
        node = node["properties"][part]
    return node


@pytest.mark.parametrize(
    "name, path, default",
    [
        (FSP_FILE, "spec.materialization.concurrencyPolicy", "Forbid"),
        (FSP_FILE, "spec.materialization.timeZone", "UTC"),
        (FSP_FILE, "spec.mlflow.requestTimeoutSeconds", 10),
        (FSP_FILE, "spec.materialization.suspend", False),
        (MJ_FILE, "spec.mode", "Incremental"),
    ],
)
def test_kubectl_explain_shows_defaults(name: str, path: str, default: object) -> None:
    """`kubectl explain` prints descriptions but never `default`: the description says it."""
    node = node_at(name, path)
    assert node["default"] == default
    assert node["description"].endswith(f"Defaults to {json.dumps(default)}.")


def test_every_scalar_default_is_in_its_description() -> None:
    for name, path, node in all_nodes():
        if "default" in node and not isinstance(node["default"], (dict, list)):
            shown = "an empty string" if node["default"] == "" else json.dumps(node["default"])
            assert node["description"].endswith(f". Defaults to {shown}."), f"{name}: {path}"
            assert node["description"].count("Defaults to") == 1, f"{name}: {path}"
        elif "default" in node:
            assert "Defaults to" not in node["description"], f"{name}: {path}"


def _models_in(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model inside an annotation (Optional, Annotated, list) and whether it is a list of them."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = typing.get_origin(annotation)
    for arg in typing.get_args(annotation):
        model, listed = _models_in(arg)
        if model is not None:
            return model, listed or origin is list
    return None, False


def _spec_fields(model: type[BaseModel], schema: Schema, path: str) -> Iterator[tuple[str, FieldInfo, Schema]]:
    for field_name, field in model.model_fields.items():
        key = field.alias or field_name
        node = schema["properties"][key]
        yield f"{path}.{key}", field, node
        sub_model, listed = _models_in(field.annotation)
        if sub_model is not None:
            yield from _spec_fields(sub_model, node["items"] if listed else node, f"{path}.{key}")


@pytest.mark.parametrize("name, model", [(FSP_FILE, FeatureStoreProject), (MJ_FILE, MaterializationJob)])
def test_every_model_default_is_in_the_schema(name: str, model: type[BaseModel]) -> None:
    """A field with a default in the model carries it in the CRD, where the API server fills it in.

    Fields that default to an empty list or map (default_factory) do not: empty and absent mean
    the same, and their descriptions say what empty means.
    """
    spec_model = model.model_fields["spec"].annotation
    assert isinstance(spec_model, type) and issubclass(spec_model, BaseModel)
    checked = []
    for path, field, node in _spec_fields(spec_model, root_schema(name)["properties"]["spec"], "spec"):
        if field.default is not PydanticUndefined and field.default is not None:
            assert node.get("default") == field.default, f"{name}: {path}"
            checked.append(path)
    assert checked
