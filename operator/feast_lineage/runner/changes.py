"""Which Feast objects an apply created, updated or deleted, from spec snapshots (pure functions).

Feast's own diff compares whole objects, so after a materialization every apply reports the
materialized views as "Updated". Comparing canonical spec bytes reports only real changes.

Notation in :class:`ObjectChanges` lists of ``changes``: ``+name`` created, ``~name`` updated,
``-name`` deleted, sorted by name. ``current`` lists plain names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from feast_lineage.contract import CHANGE_CREATED, CHANGE_DELETED, CHANGE_UPDATED, ObjectChanges, ObjectCounts

KINDS = ("entities", "feature_views", "feature_services")


@dataclass(frozen=True)
class Snapshot:
    """Canonical spec bytes of each object, by kind (one of :data:`KINDS`) and name."""

    entities: Mapping[str, bytes] = field(default_factory=dict)
    feature_views: Mapping[str, bytes] = field(default_factory=dict)
    feature_services: Mapping[str, bytes] = field(default_factory=dict)

    def of(self, kind: str) -> Mapping[str, bytes]:
        specs: Mapping[str, bytes] = getattr(self, kind)
        return specs


@dataclass(frozen=True)
class KindChanges:
    created: list[str]
    updated: list[str]
    deleted: list[str]

    def notation(self) -> list[str]:
        marked = (
            [(name, CHANGE_CREATED) for name in self.created]
            + [(name, CHANGE_UPDATED) for name in self.updated]
            + [(name, CHANGE_DELETED) for name in self.deleted]
        )
        return [mark + name for name, mark in sorted(marked)]

    def names(self) -> list[str]:
        return sorted([*self.created, *self.updated, *self.deleted])


def diff_kind(before: Mapping[str, bytes], after: Mapping[str, bytes]) -> KindChanges:
    return KindChanges(
        created=sorted(set(after) - set(before)),
        updated=sorted(name for name in set(after) & set(before) if after[name] != before[name]),
        deleted=sorted(set(before) - set(after)),
    )


def diff(before: Snapshot, after: Snapshot) -> dict[str, KindChanges]:
    """Changes by kind."""
    return {kind: diff_kind(before.of(kind), after.of(kind)) for kind in KINDS}


def as_object_changes(changes: Mapping[str, KindChanges]) -> ObjectChanges:
    """The result's ``changes``, in the ``+``/``~``/``-`` notation."""
    return ObjectChanges(**{kind: changes[kind].notation() for kind in KINDS})


def current_counts(snapshot: Snapshot) -> ObjectCounts:
    """The result's ``counts``: how many objects of each kind."""
    return ObjectCounts(**{kind: len(snapshot.of(kind)) for kind in KINDS})


def current_names(snapshot: Snapshot) -> ObjectChanges:
    """The result's ``current``: every object's name, by kind."""
    return ObjectChanges(**{kind: sorted(snapshot.of(kind)) for kind in KINDS})
