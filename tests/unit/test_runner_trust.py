"""A runner's report is taken only where it agrees with the Job the operator rendered."""

from __future__ import annotations

import json
from typing import Any

from feast_lineage import contract
from feast_lineage.contract import MlflowRun, RunnerResult
from feast_lineage.domain.runner_outcome import observe_job
from feast_lineage.domain.runner_trust import JobExpectations, expectations_of, vet_result

COMMIT = "a" * 40
AUDIT_ID = "0f3c5d7e-1111-5222-8333-444455556666"
EXPERIMENT = "driver_stats-feast-ops"
TRACKING = "http://mlflow.mlflow.svc:5000"
RUN_ID = "0123456789abcdef0123456789abcdef"
PROVENANCE = {"k8s.namespace": "team-a", "k8s.name": "drivers", "git.commit": COMMIT}


def _job(**env_overrides: str) -> dict[str, Any]:
    env = {
        contract.ENV_OPERATION: "apply",
        contract.ENV_GIT_COMMIT: COMMIT,
        contract.ENV_AUDIT_ID: AUDIT_ID,
        contract.ENV_OPS_EXPERIMENT: EXPERIMENT,
        contract.MLFLOW_ENV_TRACKING_URI: TRACKING,
        contract.ENV_PROVENANCE: json.dumps(PROVENANCE),
        **env_overrides,
    }
    return {
        "metadata": {"name": "drivers-apply-1"},
        "spec": {"template": {"spec": {"containers": [{"env": [{"name": k, "value": v} for k, v in env.items()]}]}}},
        "status": {"conditions": [{"type": "Complete", "status": "True"}]},
    }


def _audit(**changes: Any) -> dict[str, Any]:
    record = {"i": AUDIT_ID, "x": EXPERIMENT, "n": "apply_driver_stats", "s": "FINISHED", "t0": 1, "t1": 2}
    record["tg"] = {**PROVENANCE, "feast.operation": "apply"}
    record.update(changes)
    return record


def _result(**changes: Any) -> RunnerResult:
    fields: dict[str, Any] = {
        "operation": "apply",
        "ok": True,
        "duration_seconds": 3.0,
        "git_commit": COMMIT,
        "mlflow": MlflowRun(experiment=EXPERIMENT, run_id=RUN_ID, run_url=f"{TRACKING}/#/experiments/1/runs/{RUN_ID}"),
        "audit": _audit(),
    }
    fields.update(changes)
    return RunnerResult.model_validate(fields)


EXPECTED = expectations_of(_job())


def test_a_result_that_agrees_with_its_job_is_taken_whole() -> None:
    assert JobExpectations("apply", COMMIT, AUDIT_ID, EXPERIMENT, TRACKING, PROVENANCE) == EXPECTED
    result = _result()
    assert vet_result(result, EXPECTED) == (result, [])


def test_a_forged_commit_is_dropped() -> None:
    vetted, problems = vet_result(_result(git_commit="b" * 40), EXPECTED)
    assert vetted is not None and vetted.git_commit is None
    assert len(problems) == 1 and "b" * 40 in problems[0]
    # A repo that is no Git checkout has no commit to report at all.
    vetted, problems = vet_result(_result(), expectations_of(_job(**{contract.ENV_GIT_COMMIT: ""})))
    assert vetted is not None and vetted.git_commit is None and problems


def test_a_run_in_another_experiment_or_elsewhere_is_dropped() -> None:
    elsewhere = MlflowRun(experiment="someone-elses", run_id=RUN_ID)
    vetted, problems = vet_result(_result(mlflow=elsewhere), EXPECTED)
    assert vetted is not None and vetted.mlflow is None and "someone-elses" in problems[0]
    phishing = MlflowRun(experiment=EXPERIMENT, run_id=RUN_ID, run_url="https://evil.example/#/runs/1")
    vetted, problems = vet_result(_result(mlflow=phishing), EXPECTED)
    assert vetted is not None and vetted.mlflow is not None and vetted.mlflow.run_url is None and problems
    not_an_id = MlflowRun(experiment=EXPERIMENT, run_id="../../etc")
    vetted, problems = vet_result(_result(mlflow=not_an_id), EXPECTED)
    assert vetted is not None and vetted.mlflow is None and problems


def test_an_audit_record_with_another_id_or_experiment_is_dropped() -> None:
    for forged in (_audit(i="forged-id"), _audit(x="forged-experiment")):
        vetted, problems = vet_result(_result(audit=forged), EXPECTED)
        assert vetted is not None and vetted.audit is None and len(problems) == 1


def test_forged_provenance_tags_are_replaced_by_the_jobs() -> None:
    forged = _audit(tg={**PROVENANCE, "k8s.namespace": "other-team", "feast.operation": "apply"})
    vetted, problems = vet_result(_result(audit=forged), EXPECTED)
    assert vetted is not None and vetted.audit is not None
    assert vetted.audit["tg"]["k8s.namespace"] == "team-a" and "k8s.namespace" in problems[0]


def test_a_result_for_another_operation_is_ignored() -> None:
    vetted, problems = vet_result(_result(operation="materialize"), EXPECTED)
    assert vetted is None and problems


def test_the_observation_carries_the_vetted_result_and_what_was_dropped() -> None:
    forged = _result(git_commit="c" * 40, audit=_audit(i="forged-id"))
    pod = {
        "metadata": {"creationTimestamp": "2026-11-26T10:00:00Z"},
        "status": {"containerStatuses": [{"state": {"terminated": {"exitCode": 0, "message": forged.to_json()}}}]},
    }
    seen = observe_job(_job(), [pod])
    assert seen.state == "succeeded" and seen.result is not None
    assert seen.result.git_commit is None and seen.result.audit is None
    assert len(seen.distrusted) == 2


def test_a_failed_job_whose_result_is_ignored_does_not_quote_it() -> None:
    forged = _result(operation="materialize", ok=False, error="forged words")
    job = _job()
    job["status"] = {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}
    pod = {
        "metadata": {"creationTimestamp": "2026-11-26T10:00:00Z"},
        "status": {"containerStatuses": [{"state": {"terminated": {"exitCode": 1, "message": forged.to_json()}}}]},
    }
    seen = observe_job(job, [pod])
    assert seen.state == "failed" and seen.result is None and "forged" not in seen.message
