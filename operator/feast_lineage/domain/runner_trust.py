"""What a runner reports, checked against what the operator put in its Job.

The runner's pod runs the feature repo's code, which can write any termination message. So the fields
that name things the operator already knows - the operation, the commit it resolved, the ops
experiment, the audit id and the provenance tags - are taken only when they equal what the Job says
(the operator rendered the Job; the pod cannot change it). Anything else is dropped and named, so the
reconcilers can report it; it never reaches status or MLflow.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from feast_lineage.contract import (
    ENV_AUDIT_ID,
    ENV_GIT_COMMIT,
    ENV_OPERATION,
    ENV_OPS_EXPERIMENT,
    ENV_PROVENANCE,
    MLFLOW_ENV_TRACKING_URI,
    RunnerResult,
)

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
"""MLflow's run ids: 32 hex digits."""


@dataclass(frozen=True)
class JobExpectations:
    """What the operator told the runner, read back from the Job's container environment."""

    operation: str | None = None
    commit: str | None = None
    audit_id: str | None = None
    experiment: str | None = None
    tracking_uri: str | None = None
    provenance: dict[str, str] = field(default_factory=dict)


def expectations_of(job: dict[str, Any]) -> JobExpectations:
    containers = ((((job.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")) or [{}]
    env = {e.get("name"): e.get("value") for e in containers[0].get("env") or [] if "value" in e}
    try:
        provenance = json.loads(env.get(ENV_PROVENANCE) or "{}")
    except ValueError:
        provenance = {}
    return JobExpectations(
        operation=env.get(ENV_OPERATION),
        commit=env.get(ENV_GIT_COMMIT),
        audit_id=env.get(ENV_AUDIT_ID),
        experiment=env.get(ENV_OPS_EXPERIMENT),
        tracking_uri=env.get(MLFLOW_ENV_TRACKING_URI),
        provenance={str(k): str(v) for k, v in provenance.items()} if isinstance(provenance, dict) else {},
    )


def vet_result(result: RunnerResult, expected: JobExpectations) -> tuple[RunnerResult | None, list[str]]:
    """``result`` without what contradicts ``expected``, and what was dropped; None when it is not even
    about the Job's operation."""
    if expected.operation is not None and result.operation != expected.operation:
        return None, [f"a result for operation {result.operation!r}, not {expected.operation!r}"]
    problems: list[str] = []
    updates: dict[str, Any] = {}
    if result.git_commit is not None and result.git_commit != expected.commit:
        problems.append(f"commit {result.git_commit[:64]!r}, not the one the operator resolved ({expected.commit})")
        updates["git_commit"] = None
    run = result.mlflow
    if run is not None:
        base = (expected.tracking_uri or "").rstrip("/") + "/"
        if run.experiment != expected.experiment:
            problems.append(f"an MLflow run in experiment {run.experiment[:200]!r}, not {expected.experiment!r}")
            updates["mlflow"] = None
        elif not _RUN_ID.match(run.run_id):
            problems.append("an MLflow run id that is not one")
            updates["mlflow"] = None
        elif run.run_url is not None and not (expected.tracking_uri and run.run_url.startswith(base)):
            problems.append("an MLflow run URL outside the tracking server")
            updates["mlflow"] = run.model_copy(update={"run_url": None})
    if result.audit is not None:
        audit, audit_problems = _vet_audit(result.audit, expected)
        problems += audit_problems
        updates["audit"] = audit
    return (result.model_copy(update=updates) if updates else result), problems


def _vet_audit(audit: dict[str, Any], expected: JobExpectations) -> tuple[dict[str, Any] | None, list[str]]:
    """The compact audit record (see ``AuditRecord.to_compact``): its id and experiment must be the Job's;
    its provenance tags are the Job's, whatever it says."""
    if audit.get("i") != expected.audit_id:
        return None, [f"an audit record with id {str(audit.get('i'))[:128]!r}, not {expected.audit_id!r}"]
    if audit.get("x") != expected.experiment:
        return None, [f"an audit record for experiment {str(audit.get('x'))[:200]!r}, not {expected.experiment!r}"]
    tags = audit.get("tg")
    tags = dict(tags) if isinstance(tags, dict) else {}
    changed = sorted(key for key, value in expected.provenance.items() if tags.get(key) != value)
    if not changed:
        return audit, []
    tags.update(expected.provenance)
    return {**audit, "tg": tags}, [f"provenance tags that are not the Job's ({', '.join(changed)[:300]})"]
