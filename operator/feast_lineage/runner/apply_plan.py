"""Planning an apply with Feast, without writing the registry: the registry as it would be afterwards."""

from __future__ import annotations

from typing import Any

from feast_lineage.runner.changes import KINDS, Snapshot
from feast_lineage.runner.errors import OperationFailed, exception_line
from feast_lineage.runner.snapshot import DUMMY_ENTITY, canonical_spec

_KIND_OF_TYPE = {
    "ENTITY": "entities",
    "FEATURE_VIEW": "feature_views",
    "ON_DEMAND_FEATURE_VIEW": "feature_views",
    "STREAM_FEATURE_VIEW": "feature_views",
    "FEATURE_SERVICE": "feature_services",
}


def planned_snapshot(store: Any, contents: Any, before: Snapshot) -> Snapshot:
    """``before`` with the objects Feast's plan of ``contents`` would create, update or delete.

    Feast's plan runs the same inference and diff as ``feast apply`` and writes nothing; its own
    transition types are not used (every materialized view is "Updated"), only its objects, whose
    canonical specs are then compared like the registry's.
    """
    try:
        registry_diff, _, _ = store.plan(contents)
    except Exception as error:
        raise OperationFailed(f"feast could not plan the apply: {exception_line(error)}") from error
    specs = {kind: dict(before.of(kind)) for kind in KINDS}
    for object_diff in registry_diff.feast_object_diffs:
        kind = _KIND_OF_TYPE.get(object_diff.feast_object_type.name)
        if kind is None or object_diff.name == DUMMY_ENTITY:
            continue
        if object_diff.new_feast_object is None:
            specs[kind].pop(object_diff.name, None)
        else:
            specs[kind][object_diff.name] = canonical_spec(object_diff.new_feast_object.to_proto().spec)
    return Snapshot(**specs)


def service_views(registry: Any, project: str) -> dict[str, list[str]]:
    """Each feature service of the registry, with the feature views it includes."""
    return {
        service.name: sorted({projection.name for projection in service.feature_view_projections})
        for service in registry.list_feature_services(project, allow_cache=False)
    }
