"""The Flux example in examples/gitops/flux: what it syncs, and that its health expressions agree with Argo CD's.

The expressions are evaluated by a real CEL implementation the way Flux's kustomize-controller
does: a stale status.observedGeneration is in progress, then ``inProgress``, ``failed`` and
``current`` in that order, and an expression that cannot be evaluated leaves Flux waiting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from feast_lineage.api.group import API_VERSION, FEATURE_STORE_PROJECT_KIND, MATERIALIZATION_JOB_KIND
from tests.unit.test_argocd_health import KINDS, cases, kind_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
FLUX = REPO_ROOT / "examples" / "gitops" / "flux"

# Argo CD's health, and the kstatus result Flux must reach for the same object ("Unknown":
# an expression could not be evaluated yet, so Flux keeps polling).
FLUX_VERDICTS = {"Healthy": {"Current"}, "Degraded": {"Failed"}, "Progressing": {"InProgress", "Unknown"}}


def flux_documents() -> dict[str, dict[str, Any]]:
    documents: dict[str, dict[str, Any]] = {}
    for path in sorted(FLUX.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert document["kind"] not in documents, f"two {document['kind']} objects"
            documents[document["kind"]] = document
    return documents


def kustomization() -> dict[str, Any]:
    return flux_documents()["Kustomization"]


def test_kustomization_syncs_the_driver_stats_example_from_the_git_repository() -> None:
    documents = flux_documents()
    assert set(documents) == {"GitRepository", "Kustomization", "Namespace"}
    source, sync = documents["GitRepository"], documents["Kustomization"]
    assert source["apiVersion"] == "source.toolkit.fluxcd.io/v1"
    assert sync["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    assert sync["spec"]["sourceRef"] == {"kind": "GitRepository", "name": source["metadata"]["name"]}
    assert sync["metadata"]["namespace"] == source["metadata"]["namespace"]
    assert sync["spec"]["wait"] is True and "healthChecks" not in sync["spec"]  # ignored when wait is true
    assert sync["spec"]["targetNamespace"] == documents["Namespace"]["metadata"]["name"]

    synced = Path(sync["spec"]["path"])
    assert (REPO_ROOT / synced / "kustomization.yaml").is_file()
    # The source keeps exactly the synced directory.
    assert source["spec"]["ignore"].split() == ["/*", f"!/{synced.as_posix()}/"]


def test_synced_path_holds_a_feature_store_project() -> None:
    synced = REPO_ROOT / kustomization()["spec"]["path"]
    kinds = set()
    for resource in yaml.safe_load((synced / "kustomization.yaml").read_text(encoding="utf-8"))["resources"]:
        document = yaml.safe_load((synced / resource).read_text(encoding="utf-8"))
        kinds.add((document["apiVersion"], document["kind"]))
    assert (API_VERSION, FEATURE_STORE_PROJECT_KIND) in kinds


def test_health_expressions_cover_both_kinds() -> None:
    expressions = kustomization()["spec"]["healthCheckExprs"]
    assert [(entry["apiVersion"], entry["kind"]) for entry in expressions] == [
        (API_VERSION, FEATURE_STORE_PROJECT_KIND),
        (API_VERSION, MATERIALIZATION_JOB_KIND),
    ]
    assert all(set(entry) <= {"apiVersion", "kind", "current", "failed", "inProgress"} for entry in expressions)


def test_readme_names_the_synced_project_for_health_checks_without_wait() -> None:
    readme = (FLUX.parent / "README.md").read_text(encoding="utf-8")
    (snippet,) = [block for block in readme.split("```yaml\n")[1:] if "healthChecks:" in block]
    (check,) = yaml.safe_load(snippet.split("```")[0])["healthChecks"]
    project = yaml.safe_load(
        (REPO_ROOT / "examples" / "driver-stats" / "featurestoreproject.yaml").read_text(encoding="utf-8")
    )
    assert check == {
        "apiVersion": API_VERSION,
        "kind": FEATURE_STORE_PROJECT_KIND,
        "name": project["metadata"]["name"],
        "namespace": kustomization()["spec"]["targetNamespace"],
    }


def flux_status(obj: dict[str, Any]) -> str:
    """The status Flux's CEL status evaluator computes for ``obj``."""
    observed = (obj.get("status") or {}).get("observedGeneration")
    if isinstance(observed, int) and observed != obj["metadata"].get("generation"):
        return "InProgress"
    (entry,) = [e for e in kustomization()["spec"]["healthCheckExprs"] if e["kind"] == obj["kind"]]
    environment = celpy.Environment()
    activation = {key: json_to_cel(value) for key, value in obj.items()}
    for field, verdict in (("inProgress", "InProgress"), ("failed", "Failed"), ("current", "Current")):
        if field not in entry:
            continue
        try:
            result = environment.program(environment.compile(entry[field])).evaluate(activation)
        except CELEvalError:
            return "Unknown"
        if isinstance(result, CELEvalError):
            return "Unknown"
        assert isinstance(result, celtypes.BoolType), f"{field} is not a boolean: {result!r}"
        if result:
            return verdict
    return "InProgress"


ALL_CASES = [
    pytest.param(kind, case, id=f"{kind}/{Path(case['inputPath']).stem}") for kind in KINDS for case in cases(kind)
]


@pytest.mark.parametrize(("kind", "case"), ALL_CASES)
def test_flux_agrees_with_argocd(kind: str, case: dict[str, Any]) -> None:
    obj = yaml.safe_load((kind_dir(kind) / case["inputPath"]).read_text(encoding="utf-8"))
    assert flux_status(obj) in FLUX_VERDICTS[case["healthStatus"]["status"]]


def test_a_project_without_status_keeps_flux_waiting() -> None:
    # What plain kstatus would count as ready.
    obj = {"apiVersion": API_VERSION, "kind": FEATURE_STORE_PROJECT_KIND, "metadata": {"generation": 1}}
    assert flux_status(obj) == "Unknown"
