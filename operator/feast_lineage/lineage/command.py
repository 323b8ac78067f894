"""``feast-lineage lineage model|run|uses|history``: options, where MLflow is, and exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from feast_lineage.lineage import queries, records
from feast_lineage.lineage.render import FORMATS, render
from feast_lineage.lineage.sources import ClusterReader, MlflowReader, SourceUnavailable, connect_cluster

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_UNAVAILABLE = 2
"""Also argparse's code for a usage error."""
EXIT_INCOMPLETE = 3

EXIT_CODES = f"""exit codes:
  {EXIT_OK}  answered
  {EXIT_NOT_FOUND}  not found: the model version, run, project or name does not exist
  {EXIT_UNAVAILABLE}  usage error, or MLflow (or, for history, both sources) could not be read
  {EXIT_INCOMPLETE}  answered, but a source could not be read: the warnings say what is missing
"""

DEFAULT_TIMEOUT = 10.0
TOTAL_TIMEOUT_FACTOR = 12
"""The whole command reads MLflow for at most this many request timeouts."""


class UsageError(Exception):
    pass


def add_parser(commands: Any) -> None:
    """Adds ``lineage`` to the ``feast-lineage`` subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-o", "--output", choices=FORMATS, default="table", help="table (default), json or yaml")
    common.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
    common.add_argument(
        "--mlflow-tracking-uri",
        help="tracking server (default: MLFLOW_TRACKING_URI, else the project's spec.mlflow.trackingUri, "
        "else the server of its last apply's MLflow run)",
    )
    common.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    common.add_argument("--context", help="kubeconfig context")
    common.add_argument(
        "--no-cluster", action="store_true", help="read MLflow only (pods, Jobs and MaterializationJobs are left out)"
    )
    common.add_argument(
        "--timeout",
        type=float,
        default=None,
        help=f"seconds per request to MLflow and the API server (default MLFLOW_HTTP_REQUEST_TIMEOUT or "
        f"{DEFAULT_TIMEOUT:g}); the whole command waits at most {TOTAL_TIMEOUT_FACTOR} times that for MLflow",
    )
    lineage = commands.add_parser(
        "lineage",
        help="which features a model or run used, who uses a feature view, a project's history",
        description="Lineage answers from the cluster and MLflow together.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    questions = lineage.add_subparsers(dest="question", required=True)
    model = questions.add_parser(
        "model",
        parents=[common],
        help="a registered model version: its training run, features, pod, apply and materializations",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model.add_argument(
        "model", metavar="NAME/VERSION|NAME@ALIAS", help="also NAME/latest (the highest version) and models:/..."
    )
    run = questions.add_parser(
        "run",
        parents=[common],
        help="an MLflow run: its features, pod, apply, materializations and registered versions",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("run_id", metavar="RUN_ID")
    uses = questions.add_parser(
        "uses",
        parents=[common],
        help="registered model versions and recent runs that read a feature view or feature service",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    uses.add_argument("name", metavar="FEATURE_VIEW_OR_SERVICE")
    uses.add_argument("--project", help="only this FeatureStoreProject's runs")
    uses.add_argument("--limit", type=int, default=20, help="runs to show, newest first (default 20)")
    history = questions.add_parser(
        "history",
        parents=[common],
        help="a project's applies and materializations, newest first",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    history.add_argument("project", metavar="PROJECT", help="the FeatureStoreProject's name")
    history.add_argument("--limit", type=int, default=None, help="entries to show (default all)")
    lineage.set_defaults(handler=run_command)


def parse_model_ref(text: str) -> tuple[str, str | None, str | None]:
    """``NAME/VERSION``, ``NAME/latest``, ``NAME@ALIAS``, or any of them with ``models:/`` in front,
    as (name, version, alias)."""
    ref = text.removeprefix("models:/")
    if "@" in ref:
        name, alias = ref.rsplit("@", 1)
        if name and alias:
            return name, None, alias
    elif "/" in ref:
        name, version = ref.rsplit("/", 1)
        if name and (version.isdigit() or version == "latest"):
            return name, version, None
    raise UsageError(f"{text!r}: name a model version as NAME/VERSION, NAME/latest or NAME@ALIAS")


def tracking_uri_of_projects(projects: Sequence[dict[str, Any]]) -> set[str]:
    """Where the projects' MLflow runs go: spec.mlflow.trackingUri, else the server the operator
    recorded their last apply on (the operator's own --mlflow-tracking-uri)."""
    found = set()
    for project in projects:
        spec_uri = ((project.get("spec") or {}).get("mlflow") or {}).get("trackingUri")
        last_run = (((project.get("status") or {}).get("lastApply") or {}).get("mlflow") or {}).get("runUrl")
        uri = spec_uri or records.tracking_base_of(last_run)
        if uri:
            found.add(uri.rstrip("/"))
    return found


def _timeout(args: argparse.Namespace) -> float:
    if args.timeout is not None:
        if args.timeout <= 0:
            raise UsageError("--timeout must be positive")
        return float(args.timeout)
    try:
        return float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT") or DEFAULT_TIMEOUT)
    except ValueError:
        return DEFAULT_TIMEOUT


def _max_retries() -> int:
    try:
        return max(0, min(3, int(os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES") or 1)))
    except ValueError:
        return 1


def run_command(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        result = _answer(args)
    except UsageError as error:
        print(f"error: {error}", file=err)
        return EXIT_UNAVAILABLE
    except ValueError as error:
        print(f"error: {error}", file=err)
        return EXIT_UNAVAILABLE
    except queries.NotFound as error:
        print(f"not found: {error}", file=err)
        return EXIT_NOT_FOUND
    except SourceUnavailable as error:
        print(f"error: {error}", file=err)
        return EXIT_UNAVAILABLE
    out.write(render(result.answer, args.output))
    warnings: list[str] = getattr(result.answer, "warnings", [])
    if args.output == "table":
        for warning in warnings:
            print(f"warning: {warning}", file=err)
    return EXIT_INCOMPLETE if result.incomplete else EXIT_OK


def _answer(args: argparse.Namespace) -> queries.Result:
    timeout = _timeout(args)
    cluster: ClusterReader | None = None
    cluster_problem: str | None = None
    namespace: str | None = args.namespace
    if not args.no_cluster:
        try:
            cluster, default_namespace = connect_cluster(args.kubeconfig, args.context, timeout)
            namespace = namespace or default_namespace
        except SourceUnavailable as error:
            if args.kubeconfig or args.context:
                raise
            cluster_problem = f"cluster not read: {error}"
    namespace = namespace or "default"

    def mlflow_for(projects: Sequence[dict[str, Any]]) -> MlflowReader:
        uri = args.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            candidates = tracking_uri_of_projects(projects)
            if len(candidates) > 1:
                raise UsageError(
                    f"the projects in namespace {namespace} use different MLflow servers "
                    f"({', '.join(sorted(candidates))}): choose one with --mlflow-tracking-uri"
                )
            if not candidates:
                raise UsageError(
                    "no MLflow tracking server: pass --mlflow-tracking-uri, set MLFLOW_TRACKING_URI, or name "
                    "with -n a namespace whose FeatureStoreProject has been applied"
                )
            uri = candidates.pop()
        return MlflowReader(uri, timeout=timeout, max_retries=_max_retries(), deadline=timeout * TOTAL_TIMEOUT_FACTOR)

    def namespace_projects() -> list[dict[str, Any]]:
        if cluster is None or args.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"):
            return []
        return cluster.projects(namespace)

    if args.question == "model":
        name, version, alias = parse_model_ref(args.model)
        return queries.model_lineage(name, version, alias, mlflow_for(namespace_projects()), cluster, cluster_problem)
    if args.question == "run":
        return queries.run_lineage(args.run_id, mlflow_for(namespace_projects()), cluster, cluster_problem)
    if args.question == "uses":
        if args.limit < 1:
            raise UsageError("--limit must be at least 1")
        return queries.feature_usage(
            args.name,
            namespace,
            mlflow_for(namespace_projects()),
            cluster,
            project_filter=args.project,
            limit=args.limit,
            cluster_problem=cluster_problem,
        )
    if args.question == "history":
        if args.limit is not None and args.limit < 1:
            raise UsageError("--limit must be at least 1")
        return _history(args, namespace, cluster, cluster_problem, mlflow_for)
    raise UsageError(f"unknown question {args.question}")


def _history(
    args: argparse.Namespace,
    namespace: str,
    cluster: ClusterReader | None,
    cluster_problem: str | None,
    mlflow_for: Any,
) -> queries.Result:
    projects: list[dict[str, Any]] = []
    if cluster is not None:
        try:
            found = cluster.project(namespace, args.project)
            projects = [found] if found is not None else cluster.projects(namespace)
        except SourceUnavailable as error:
            cluster_problem, cluster = f"cluster not read: {error}", None
    mlflow: MlflowReader | None = None
    mlflow_problem: str | None = None
    try:
        mlflow = mlflow_for(projects)
    except (SourceUnavailable, UsageError) as error:
        if cluster is None:
            raise
        mlflow_problem = f"MLflow not read: {error}"
    if cluster is None and mlflow is None:
        raise SourceUnavailable(cluster_problem or "neither the cluster nor MLflow could be read")
    return queries.project_history(
        namespace,
        args.project,
        mlflow,
        cluster,
        limit=args.limit,
        mlflow_problem=mlflow_problem,
        cluster_problem=cluster_problem,
    )
