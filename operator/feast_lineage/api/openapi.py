"""Pydantic JSON Schema -> Kubernetes structural OpenAPI v3 schema.

Structural means: every node has a type, no `$ref`, no `anyOf`/`oneOf` beyond
the int-or-string form, free-form objects marked as preserving unknown fields.
"""

import json
from typing import Any

from pydantic import BaseModel

JsonSchema = dict[str, Any]

# Fixed key order makes the generated YAML stable and easy to read.
KEY_ORDER = (
    "description",
    "type",
    "format",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "default",
    "anyOf",
    "items",
    "properties",
    "additionalProperties",
    "required",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
)
# JSON Schema keys that have no place in a CRD schema.
DROPPED_KEYS = frozenset({"title", "$defs", "const"})
INT_OR_STRING_BRANCHES = [{"type": "integer"}, {"type": "string"}]


class SchemaError(ValueError):
    """The model uses a construct that has no structural CRD equivalent."""


def structural_schema(model: type[BaseModel]) -> JsonSchema:
    """The structural schema of `model`, with camelCase property names."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _convert(raw, raw.get("$defs", {}), path=model.__name__)


def _convert(node: JsonSchema, defs: JsonSchema, path: str) -> JsonSchema:
    node = _flatten(node, defs, path)
    out: JsonSchema = {}
    for key, value in node.items():
        if key in DROPPED_KEYS or (key == "default" and value is None):
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, defs, f"{path}.{name}") for name, sub in sorted(value.items())}
        elif key == "items":
            out[key] = _convert(value, defs, f"{path}[]")
        elif key == "additionalProperties":
            if value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out[key] = _convert(value, defs, f"{path}{{}}")
            # False comes from extra="forbid": the API server prunes unknown fields instead.
        elif key == "required":
            out[key] = sorted(value)
        elif key == "x-kubernetes-validations":
            out[key] = [{"rule": entry["rule"], "message": entry["message"]} for entry in value]
        elif key == "description":
            # Docstrings wrap at the source's line length; the wrapping means nothing in a schema.
            out[key] = " ".join(value.split())
        else:
            out[key] = value
    if node.get("type") == "object" and "properties" not in node and "additionalProperties" not in node:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "description" in out and "default" in out:
        out["description"] = with_default(out["description"], out["default"])
    if "type" not in out and not out.get("x-kubernetes-int-or-string"):
        raise SchemaError(f"{path}: no type")
    return _ordered(out)


def with_default(description: str, default: Any) -> str:
    """The description followed by the default: `kubectl explain` shows descriptions, not defaults.

    An object's default (`{}`) only lets the API server fill in its fields, whose descriptions
    carry their own defaults, so it is not mentioned.
    """
    if isinstance(default, (dict, list)):
        return description
    value = "an empty string" if default == "" else json.dumps(default)
    return f"{description.rstrip('.')}. Defaults to {value}."


def _flatten(node: JsonSchema, defs: JsonSchema, path: str) -> JsonSchema:
    """Resolve `$ref` and drop the null branch of Optional; keys beside them win over the target."""
    if "$ref" in node:
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        return _flatten({**target, **siblings}, defs, path)
    if "anyOf" in node and node["anyOf"] != INT_OR_STRING_BRANCHES:
        branches = [branch for branch in node["anyOf"] if branch.get("type") != "null"]
        if len(branches) != 1:
            raise SchemaError(f"{path}: unions other than Optional[...] have no structural form")
        siblings = {key: value for key, value in node.items() if key != "anyOf"}
        return _flatten({**branches[0], **siblings}, defs, path)
    for key in ("oneOf", "allOf"):
        if key in node:
            raise SchemaError(f"{path}: {key} has no structural form")
    return node


def _ordered(node: JsonSchema) -> JsonSchema:
    known = {key: node[key] for key in KEY_ORDER if key in node}
    rest = {key: node[key] for key in sorted(node) if key not in known}
    return {**known, **rest}
