"""``feast-lineage runner apply|materialize``: the program of a runner Job's pod.

It reads only the contract's environment variables and files (see
:mod:`feast_lineage.contract`), assembles the feature repo, runs Feast, logs the
operation to MLflow within a bounded time, and always leaves a :class:`RunnerResult` of at most
4096 bytes in the termination message and as the last line of stdout.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path

from feast_lineage.audit.delivery import deliver
from feast_lineage.audit.errors import DeliveryError
from feast_lineage.audit.mlflow_rest import MlflowRestClient
from feast_lineage.contract import RunnerResult
from feast_lineage.redaction import KNOWN, install_log_redaction
from feast_lineage.runner.apply_op import FindVersions, ImpactGate, run_apply
from feast_lineage.runner.audit_records import OperationFacts, build_record
from feast_lineage.runner.changes import as_object_changes, current_counts, current_names
from feast_lineage.runner.errors import EXIT_OK, BadInput, RunnerError, exception_line
from feast_lineage.runner.feast_repo import project_name
from feast_lineage.runner.fetch import fetch_repo
from feast_lineage.runner.impact import FoundVersion
from feast_lineage.runner.materialize_op import MaterializeRequest, plan_materialize, run_materialize
from feast_lineage.runner.model_lookup import find_versions
from feast_lineage.runner.redacted_output import redact_output
from feast_lineage.runner.result_size import fit_result
from feast_lineage.runner.settings import (
    MaterializeSettings,
    RunnerSettings,
    read_settings,
    result_path,
    secret_values,
)
from feast_lineage.runner.window import check_end, format_time, parse_time, range_window


def main(operation: str) -> int:
    """The runner process: everything it writes (the pod log, the termination message, MLflow) is
    redacted of the values its environment took from Secrets, then ``operation`` runs."""
    KNOWN.learn(secret_values(os.environ))
    install_log_redaction()
    redact_output(KNOWN)
    return run_operation(operation)


def run_operation(operation: str, env: Mapping[str, str] | None = None) -> int:
    """Run ``operation`` (apply | materialize); returns the exit code (0 ok, 1 failed, 2 bad input)."""
    env = os.environ if env is None else env
    KNOWN.learn(secret_values(env))
    started = time.time()
    # The operator points TMPDIR into the workspace volume (the root filesystem is read-only);
    # Python falls back to /tmp silently if it does not exist, so make it.
    if env.get("TMPDIR"):
        Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    try:
        settings = read_settings(operation, env)
    except BadInput as error:
        result = RunnerResult(
            operation="materialize" if operation == "materialize" else "apply",
            ok=False,
            error=str(error),
            duration_seconds=round(time.time() - started, 3),
        )
        _report(result, result_path(env))
        return error.exit_code

    facts = OperationFacts(operation=settings.operation)
    result = RunnerResult(operation=settings.operation, ok=True, duration_seconds=0.0)
    exit_code = EXIT_OK
    try:
        result = _perform(settings, facts, result)
    except RunnerError as error:
        facts.error, exit_code = str(error), error.exit_code
    except Exception as error:
        facts.error, exit_code = f"unexpected error: {exception_line(error)}", 1
    finished = time.time()
    if facts.error is not None and settings.materialize is not None:
        # The window and views it was asked to materialize, so status can say what failed.
        result = result.model_copy(
            update={
                "window_start": format_time(facts.window_start) if facts.window_start else None,
                "window_end": format_time(facts.window_end) if facts.window_end else None,
                "feature_views": facts.feature_views,
            }
        )
    result = result.model_copy(
        update={
            "ok": facts.error is None,
            "error": facts.error,
            "git_commit": facts.git_commit,
            "duration_seconds": round(finished - started, 3),
        }
    )
    result = _log_to_mlflow(settings, facts, result, int(started * 1000), int(finished * 1000))
    _report(result, result_path(env))
    return exit_code


def _perform(settings: RunnerSettings, facts: OperationFacts, result: RunnerResult) -> RunnerResult:
    """Fetch the repo and run the operation, recording in ``facts`` what is known as soon as it is."""
    request = None
    if settings.materialize is not None:
        # A bad window is bad input: reject it before paying for the repo and Feast.
        request = _materialize_request(settings.materialize, datetime.now(UTC))
        facts.operation = "materialize_incremental" if request.incremental else "materialize"
        facts.window_start, facts.window_end = request.start, request.end
        facts.feature_views = request.feature_views or None
    fetched = fetch_repo(settings, registry_suffices=request is not None)
    facts.git_commit = fetched.git_commit
    facts.project = project_name(fetched.path)
    if request is None:
        facts.impact_policy = settings.impact.policy if settings.impact is not None else None
        applied = run_apply(fetched.path, _impact_gate(settings))
        facts.project, facts.impact = applied.project, applied.impact
        if applied.impact is not None and applied.impact.held:
            # Nothing was written: no changes to report, only the plan that waits for approval.
            return result.model_copy(update={"impact": applied.impact})
        facts.changes = applied.changes
        return result.model_copy(
            update={
                "impact": applied.impact,
                "changes": as_object_changes(applied.changes),
                "current": current_names(applied.after),
                "counts": current_counts(applied.after),
                "default_materialized": applied.default_materialized,
                "not_materializable": applied.not_materializable,
            }
        )
    store, plan = plan_materialize(fetched.path, request, datetime.now(UTC))
    facts.project, facts.window_start, facts.feature_views = plan.project, plan.start, plan.feature_views
    outcome = run_materialize(fetched.path, store, plan, request)
    facts.materialize_seconds = outcome.duration_seconds
    facts.rows_written = outcome.rows_written
    return result.model_copy(
        update={
            "window_start": format_time(outcome.start) if outcome.start else None,
            "window_end": format_time(outcome.end),
            "feature_views": outcome.feature_views,
            "rows_written": outcome.rows_written,
            "repo_unavailable": fetched.unavailable,
        }
    )


def _impact_gate(settings: RunnerSettings) -> ImpactGate | None:
    impact = settings.impact
    if impact is None:
        return None
    mlflow = settings.mlflow
    finder: FindVersions | None = None
    if mlflow.tracking_uri:
        tracking_uri = mlflow.tracking_uri

        def finder(services: Collection[str]) -> tuple[list[FoundVersion], str | None]:
            try:
                client = MlflowRestClient(
                    tracking_uri, timeout=mlflow.timeout, max_retries=mlflow.max_retries, credentials=mlflow.credentials
                )
            except DeliveryError as error:
                return [], str(error)
            return find_versions(client, services)

    return ImpactGate(impact.policy, impact.approved_plan, impact.namespace, finder)


def _materialize_request(materialize: MaterializeSettings, now: datetime) -> MaterializeRequest:
    end = parse_time(materialize.end, "window end") if materialize.end else now
    if materialize.mode == "Range":
        assert materialize.start is not None
        start, end = range_window(parse_time(materialize.start, "window start"), end, now)
        return MaterializeRequest(incremental=False, start=start, end=end, feature_views=materialize.feature_views)
    return MaterializeRequest(
        incremental=True, start=None, end=check_end(end, now), feature_views=materialize.feature_views
    )


def _log_to_mlflow(
    settings: RunnerSettings, facts: OperationFacts, result: RunnerResult, start_ms: int, end_ms: int
) -> RunnerResult:
    mlflow = settings.mlflow
    if not mlflow.log_operations or not mlflow.tracking_uri:
        return result
    record = build_record(
        facts,
        audit_id=settings.audit_id,
        experiment=mlflow.experiment,
        provenance=settings.provenance,
        start_ms=start_ms,
        end_ms=end_ms,
    )
    try:
        delivered = deliver(
            record,
            mlflow.tracking_uri,
            timeout=mlflow.timeout,
            max_retries=mlflow.max_retries,
            credentials=mlflow.credentials,
        )
    except DeliveryError as error:
        # The operator keeps the record and delivers it when MLflow is back.
        return result.model_copy(update={"mlflow_error": str(error), "audit": record.to_compact()})
    return result.model_copy(update={"mlflow": delivered.as_contract()})


def _report(result: RunnerResult, path: Path) -> None:
    # Every value of the result is redacted before it is fitted: the redacted text is what must fit.
    result = RunnerResult.model_validate(KNOWN.redact_data(result.model_dump(by_alias=True, exclude_none=True)))
    text = fit_result(result)
    try:
        path.write_text(text)
    except OSError as error:
        print(f"could not write the result to {path}: {error}", file=sys.stderr)
    sys.stderr.flush()
    print(text, flush=True)
