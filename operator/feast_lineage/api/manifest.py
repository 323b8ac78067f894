"""Validation of whole manifests, with errors that name the field and the rule."""

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .feature_store_project import FeatureStoreProject
from .group import API_VERSION
from .materialization_job import MaterializationJob

M = TypeVar("M", bound=BaseModel)

MODELS: dict[str, type[FeatureStoreProject] | type[MaterializationJob]] = {
    "FeatureStoreProject": FeatureStoreProject,
    "MaterializationJob": MaterializationJob,
}

# pydantic prefixes the messages of validators that raise ValueError; the rule's own words suffice.
VALUE_ERROR_PREFIX = "Value error, "


class ManifestError(ValueError):
    """A manifest that is not a valid resource; str() lists one `field.path: message` per line."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        """(field path, message) pairs, e.g. ("spec.repo", "exactly one of ...")."""
        super().__init__("\n".join(f"{path}: {message}" for path, message in errors))


def field_path(loc: tuple[int | str, ...]) -> str:
    """`("spec", "env", 0, "name")` -> `spec.env[0].name`, the way the API server writes paths."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path or "<root>"


def errors_of(error: ValidationError) -> list[tuple[str, str]]:
    errors = []
    for entry in error.errors():
        message = entry["msg"].removeprefix(VALUE_ERROR_PREFIX)
        errors.append((field_path(tuple(entry["loc"])), message))
    return errors


def validation_message(error: ValidationError) -> str:
    """All of a validation error's problems on one line: ``path: message; ...``."""
    return "; ".join(f"{path}: {message}" for path, message in errors_of(error))


def validate_manifest(obj: Mapping[str, Any]) -> FeatureStoreProject | MaterializationJob:
    """Validate a manifest of either kind (apiVersion, kind, metadata, spec, status)."""
    if obj.get("apiVersion") != API_VERSION:
        raise ManifestError([("apiVersion", f"should be {API_VERSION!r}, got {obj.get('apiVersion')!r}")])
    model = MODELS.get(str(obj.get("kind")))
    if model is None:
        raise ManifestError([("kind", f"should be one of {sorted(MODELS)}, got {obj.get('kind')!r}")])
    return validate_as(model, obj)


def validate_as(model: type[M], obj: Mapping[str, Any]) -> M:
    """Validate `obj` as `model` the way the API server reads it, raising ManifestError.

    The manifest goes through JSON in strict mode and by camelCase names only, so "3" is not an
    integer and `tracking_uri` is not `trackingUri`: what the server would reject or drop fails here.
    """
    text = json.dumps(obj, default=_yaml_scalar)
    try:
        return model.model_validate_json(text, strict=True, by_alias=True, by_name=False)
    except ValidationError as error:
        raise ManifestError(errors_of(error)) from None


def _yaml_scalar(value: object) -> str:
    # yaml.safe_load turns unquoted timestamps into datetimes; kubectl sends them as strings.
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
