"""The peers a run's decision compares it with, from the index's summaries and the project's status."""

from __future__ import annotations

from feast_lineage.api import FeatureStoreProjectStatus
from feast_lineage.controller.materialization_reconciler import to_peers


def summary(name: str, views: list[str]) -> dict[str, object]:
    return {"name": name, "created": "2026-11-27T10:00:00Z", "featureViews": views, "phase": "Pending"}


def test_a_peer_that_names_no_views_materializes_what_the_project_materializes() -> None:
    status = FeatureStoreProjectStatus(
        feature_views=["a", "b", "c"], feature_view_count=3, materialized_feature_views=["a", "b"]
    )
    named, every, also_every = to_peers([summary("x", ["c"]), summary("y", []), summary("z", [])], status)
    assert named.feature_views == frozenset({"c"}) and not named.every
    assert every.feature_views == also_every.feature_views == frozenset({"a", "b"})
    assert not every.every  # the status lists every view: the conflict is by name


def test_a_peer_of_a_project_whose_status_cannot_list_every_view_conflicts_with_every_run() -> None:
    status = FeatureStoreProjectStatus(feature_views=["a"], feature_view_count=1000)
    (peer,) = to_peers([summary("y", [])], status)
    assert peer.every
