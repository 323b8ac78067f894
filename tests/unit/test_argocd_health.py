"""The Argo CD health checks in examples/gitops/argocd, run by a real Lua 5.1 as Argo CD runs them.

Each kind's directory has the layout of Argo CD's resource_customizations: ``health.lua``,
``health_test.yaml`` listing ``inputPath`` -> expected ``healthStatus``, and ``testdata/``.
Argo CD runs custom checks in gopher-lua (Lua 5.1) with the base, table, package and a
restricted os library only, so the sandbox here has no string library either.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import pytest
import yaml

from feast_lineage.api import FeatureStoreProjectStatus, MaterializationJobSpec, MaterializationJobStatus
from feast_lineage.api.group import GROUP, MATERIALIZATION_JOB_KIND
from feast_lineage.contract import ImpactedModel, ImpactReport, RunnerResult
from feast_lineage.domain.apply_plan import RepoIdentity
from feast_lineage.domain.materialization_state import MaterializationObservation, decide_materialization
from feast_lineage.domain.project_state import InputProblem, ProjectObservation, decide_project
from feast_lineage.domain.runner_outcome import JobObservation

ARGOCD = Path(__file__).resolve().parents[2] / "examples" / "gitops" / "argocd"
KINDS = ("FeatureStoreProject", "MaterializationJob")
CM_PREFIX = "resource.customizations.health."
HEALTH_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

# What gopher-lua's base and table libraries give a custom health check (besides require and os).
BASE_LIBRARY = (
    "assert",
    "error",
    "getmetatable",
    "ipairs",
    "next",
    "pairs",
    "pcall",
    "rawequal",
    "rawget",
    "rawset",
    "select",
    "setmetatable",
    "tonumber",
    "tostring",
    "type",
    "unpack",
    "xpcall",
    "_VERSION",
    "table",
)

RUN = """
function(source, env)
  debug.setmetatable("", nil)  -- no string methods either: Argo CD opens no string library
  local chunk = assert(loadstring(source, "=health.lua"))
  setfenv(chunk, env)
  return chunk()
end
"""


def kind_dir(kind: str) -> Path:
    return ARGOCD / f"{GROUP}_{kind}"


def script(kind: str) -> str:
    return (kind_dir(kind) / "health.lua").read_text(encoding="utf-8")


def run_lua(source: str, obj: dict[str, Any] | None = None) -> Any:
    """Run ``source`` with ``obj`` as its global ``obj``, in a fresh runtime with Argo CD's libraries only."""
    lua = lua51.LuaRuntime()
    env = lua.table_from({name: lua.globals()[name] for name in BASE_LIBRARY})
    if obj is not None:
        env["obj"] = lua.table_from(obj, recursive=True)
    return lua.eval(RUN)(source, env)


def health(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """What Argo CD would show for ``obj``: the table the kind's health.lua returns, as a dict."""
    result = run_lua(script(kind), obj)
    assert lua51.lua_type(result) == "table", f"health.lua returned {result!r}, not a table"
    returned = dict(result.items())
    assert set(returned) <= {"status", "message"}, returned
    assert returned.get("status") in HEALTH_STATUSES, returned
    assert isinstance(returned.get("message", ""), str), returned
    return returned


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def cases(kind: str) -> list[dict[str, Any]]:
    tests = load(kind_dir(kind) / "health_test.yaml")["tests"]
    assert isinstance(tests, list)
    return tests


ALL_CASES = [
    pytest.param(kind, case, id=f"{kind}/{Path(case['inputPath']).stem}") for kind in KINDS for case in cases(kind)
]


@pytest.mark.parametrize(("kind", "case"), ALL_CASES)
def test_health_test_case(kind: str, case: dict[str, Any]) -> None:
    obj = load(kind_dir(kind) / case["inputPath"])
    assert obj["kind"] == kind and obj["apiVersion"].startswith(f"{GROUP}/")
    assert health(kind, obj) == case["healthStatus"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_fixture_is_a_case_and_every_state_is_covered(kind: str) -> None:
    paths = [case["inputPath"] for case in cases(kind)]
    assert len(paths) == len(set(paths))
    assert sorted(paths) == sorted(f"testdata/{path.name}" for path in (kind_dir(kind) / "testdata").glob("*.yaml"))
    assert {case["healthStatus"]["status"] for case in cases(kind)} == {"Healthy", "Progressing", "Degraded"}


def test_configmap_patch_embeds_the_scripts_verbatim() -> None:
    patch = load(ARGOCD / "argocd-cm-patch.yaml")
    assert (patch["apiVersion"], patch["kind"]) == ("v1", "ConfigMap")
    assert (patch["metadata"]["name"], patch["metadata"]["namespace"]) == ("argocd-cm", "argocd")
    assert patch["data"] == {f"{CM_PREFIX}{GROUP}_{kind}": script(kind) for kind in KINDS}


def test_the_sandbox_has_no_string_library() -> None:
    # A check that runs here runs in Argo CD: string.format or ("x"):upper() would fail there.
    assert run_lua('return {status = "Healthy"}')["status"] == "Healthy"
    for source in ('return {status = string.format("%s", "Healthy")}', 'return {status = ("healthy"):upper()}'):
        with pytest.raises(lua51.LuaError):
            run_lua(source)


# -- the checks against what the operator writes today ---------------------------------------------

REPO = RepoIdentity("configMap", "configmap/repo@abc", "abc")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _project_status(job: JobObservation | None = None, problem: InputProblem | None = None) -> dict[str, Any]:
    observation = ProjectObservation(3, FeatureStoreProjectStatus(), problem, REPO, "h1", "p-apply-h1", job)
    return decide_project(observation, NOW).status.to_k8s()


HELD = RunnerResult(
    operation="apply",
    ok=True,
    duration_seconds=1,
    impact=ImpactReport(
        plan_hash="p1",
        policy="Block",
        objects=["~trips"],
        models=[ImpactedModel(name="churn", version="1", feature_service="activity")],
        held=True,
    ),
)
PROJECT_STATES = {
    "job to create": (_project_status(), "Progressing"),
    "running": (_project_status(JobObservation("p-apply-h1", "running")), "Progressing"),
    "succeeded": (_project_status(JobObservation("p-apply-h1", "succeeded")), "Healthy"),
    "failed": (_project_status(JobObservation("p-apply-h1", "failed", "NameError: x")), "Degraded"),
    "stuck": (_project_status(JobObservation("p-apply-h1", "stuck", "ImagePullBackOff")), "Degraded"),
    "bad input": (_project_status(problem=InputProblem("RepoNotFound", "ConfigMap repo not found")), "Degraded"),
    "awaiting approval": (_project_status(JobObservation("p-apply-h1", "succeeded", "", HELD)), "Progressing"),
}


@pytest.mark.parametrize(("status", "expected"), PROJECT_STATES.values(), ids=PROJECT_STATES.keys())
def test_project_statuses_the_operator_writes(status: dict[str, Any], expected: str) -> None:
    obj = {"apiVersion": f"{GROUP}/v1alpha1", "kind": "FeatureStoreProject", "metadata": {"generation": 3}}
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert health("FeatureStoreProject", {**obj, "status": status}) == {"status": expected, "message": ready["message"]}
    assert health("FeatureStoreProject", {**obj, "metadata": {"generation": 4}, "status": status}) == {
        "status": "Progressing",
        "message": "waiting for the operator to observe generation 4",
    }


def _run_status(**fields: Any) -> dict[str, Any]:
    spec = MaterializationJobSpec.model_validate(
        {
            "projectRef": {"name": "p"},
            "mode": "Range",
            "startTime": "2026-11-02T00:00:00Z",
            "endTime": "2026-11-03T00:00:00Z",
        }
    )
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "Applied",
        "message": "",
        "lastTransitionTime": "2026-11-26T10:00:00Z",
    }
    project = {"status": {"featureViews": ["a"], "conditions": [ready]}}
    base: dict[str, Any] = {
        "name": "run",
        "created": "2026-11-26T11:00:00Z",
        "generation": 1,
        "status": MaterializationJobStatus(),
        "now": NOW,
        "spec": spec,
        "project": project,
    }
    return decide_materialization(MaterializationObservation(**{**base, **fields})).status.to_k8s()


RUN_STATES = {
    "project missing": (_run_status(project=None), "Progressing"),
    "job to create": (_run_status(), "Progressing"),
    "running": (_run_status(job=JobObservation("run-materialize", "running")), "Progressing"),
    "stuck": (_run_status(job=JobObservation("run-materialize", "stuck", "ErrImagePull")), "Degraded"),
    "succeeded": (_run_status(job=JobObservation("run-materialize", "succeeded")), "Healthy"),
    "failed": (_run_status(job=JobObservation("run-materialize", "failed", "boom")), "Degraded"),
    "invalid": (_run_status(spec=None, invalid="spec.mode: bad"), "Degraded"),
}


@pytest.mark.parametrize(("status", "expected"), RUN_STATES.values(), ids=RUN_STATES.keys())
def test_run_statuses_the_operator_writes(status: dict[str, Any], expected: str) -> None:
    obj = {"apiVersion": f"{GROUP}/v1alpha1", "kind": MATERIALIZATION_JOB_KIND, "metadata": {"generation": 1}}
    assert health(MATERIALIZATION_JOB_KIND, {**obj, "status": status}) == {
        "status": expected,
        "message": status["message"],
    }
