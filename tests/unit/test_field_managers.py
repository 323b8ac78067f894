"""Who wrote what, as ``managedFields`` shows it: the operator's requests carry its own name, and a
run's creator is never taken to be the operator that patched it in the same second."""

from __future__ import annotations

from kubernetes.client import Configuration

from feast_lineage import __version__
from feast_lineage.controller.bounded_client import BoundedApiClient
from feast_lineage.controller.materialization_reconciler import creating_manager, creator
from feast_lineage.controller.settings import ApiTimeouts
from feast_lineage.domain.labels import OPERATOR_FIELD_MANAGER
from feast_lineage.rerun import RERUN_AGENT


def test_the_operator_and_the_rerun_command_name_themselves_to_the_api_server() -> None:
    assert BoundedApiClient(Configuration(), ApiTimeouts()).user_agent == f"feast-lineage-operator/{__version__}"
    rerun = BoundedApiClient(Configuration(), ApiTimeouts(), agent=RERUN_AGENT)
    assert rerun.user_agent.split("/")[0] == "feast-lineage-rerun"


def test_the_creator_is_not_the_operator_that_patched_the_run_in_the_same_second() -> None:
    same_second = "2026-11-27T18:00:00Z"
    metadata = {
        "managedFields": [
            {"manager": OPERATOR_FIELD_MANAGER, "operation": "Update", "time": same_second},
            {"manager": "argocd-controller", "operation": "Apply", "time": same_second},
            {"manager": OPERATOR_FIELD_MANAGER, "operation": "Update", "time": same_second, "subresource": "status"},
        ]
    }
    assert creating_manager(metadata) == "argocd-controller"
    assert creator(metadata) == {"creator": "argocd-controller", "creatorSource": "managedFields"}
    only_operator = {"managedFields": [{"manager": OPERATOR_FIELD_MANAGER, "operation": "Update", "time": same_second}]}
    assert creating_manager(only_operator) is None
