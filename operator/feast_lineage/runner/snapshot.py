"""Canonical spec snapshots of a Feast registry, the input of :mod:`feast_lineage.runner.changes`."""

from __future__ import annotations

from typing import Any

from feast_lineage.runner.changes import Snapshot

DUMMY_ENTITY = "__dummy"
_TIMESTAMP = "google.protobuf.Timestamp"


def registry_snapshot(registry: Any, project: str) -> Snapshot:
    """Every entity, feature view (regular, on-demand, stream) and feature service of ``project``."""
    return Snapshot(
        entities={
            entity.name: canonical_spec(entity.to_proto().spec)
            for entity in registry.list_entities(project, allow_cache=False)
            if entity.name != DUMMY_ENTITY
        },
        feature_views={
            view.name: canonical_spec(view.to_proto().spec)
            for view in registry.list_all_feature_views(project, allow_cache=False)
        },
        feature_services={
            service.name: canonical_spec(service.to_proto().spec)
            for service in registry.list_feature_services(project, allow_cache=False)
        },
    )


def canonical_spec(spec: Any) -> bytes:
    """Spec bytes that change only when the definition does.

    Dropped: ``meta`` sub-messages and timestamps (Feast rewrites those of data sources on every
    apply), and a function's pickled body when its source text is kept (the pickle can differ for
    the same source).
    """
    copy = type(spec)()
    copy.CopyFrom(spec)
    _scrub(copy)
    serialized: bytes = copy.SerializeToString(deterministic=True)
    return serialized


def _scrub(message: Any) -> None:
    # Protobuf messages are walked through their descriptors, which protobuf leaves untyped.
    names = {field.name for field in message.DESCRIPTOR.fields}
    if {"body", "body_text"} <= names and message.body_text:
        message.ClearField("body")
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if field.name == "meta" or field.message_type.full_name == _TIMESTAMP:
            message.ClearField(field.name)
        elif field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if value_field.type == value_field.TYPE_MESSAGE:
                for item in value.values():
                    _scrub(item)
        elif hasattr(value, "ListFields"):
            _scrub(value)
        else:  # a repeated field (upb descriptors no longer expose its label)
            for item in value:
                _scrub(item)
