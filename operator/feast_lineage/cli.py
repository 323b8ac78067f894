"""The ``feast-lineage`` command."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from feast_lineage import __version__

if TYPE_CHECKING:
    from feast_lineage.controller.settings import ApiTimeouts, LeaderElectionSettings, WebhookSettings

LOG_LEVELS = ("debug", "info", "warning")
"""Of the operator's own lines; debug adds one as each pass over an object ends (controller/pass_log.py)."""


def _default_dev_dir() -> Path:
    from feast_lineage.devcluster.binaries import cache_root

    return cache_root() / "dev-cluster"


def _crds(args: argparse.Namespace) -> int:
    from feast_lineage.api.crd import diff_crds, write_crds

    if args.check:
        stale = diff_crds(args.output)
        if stale:
            print(f"out of date in {args.output}: {', '.join(stale)}; run `feast-lineage crds`", file=sys.stderr)
            return 1
        print(f"{args.output} matches the models")
        return 0
    for path in write_crds(args.output):
        print(path)
    return 0


def _chart(args: argparse.Namespace) -> int:
    from feast_lineage.install.chart import diff_generated, write_generated

    stale = diff_generated(args.chart) if args.check else []
    if not args.check:
        for path in write_generated(args.chart):
            print(path)
    if args.manifest is not None:
        from feast_lineage.devcluster.binaries import ensure_binaries
        from feast_lineage.install.manifest import install_manifest

        text = install_manifest(ensure_binaries(log=False).helm, args.chart)
        if not args.check:
            args.manifest.parent.mkdir(parents=True, exist_ok=True)
            args.manifest.write_text(text, encoding="utf-8")
            print(args.manifest)
        elif not args.manifest.is_file() or args.manifest.read_text(encoding="utf-8") != text:
            stale.append(str(args.manifest))
    if stale:
        print(f"out of date: {', '.join(stale)}; run `feast-lineage chart`", file=sys.stderr)
        return 1
    if args.check:
        print(f"{args.chart} matches the models and the RBAC rules")
    return 0


def _dev_cluster(args: argparse.Namespace) -> int:
    from feast_lineage.devcluster import cluster

    directory: Path = args.dir
    if args.action == "build":
        from feast_lineage.devcluster.binaries import ensure_binaries

        print(json.dumps({k: str(v) for k, v in vars(ensure_binaries()).items()}, indent=2))
        return 0
    if args.action == "down":
        stopped = cluster.stop_from_state(directory)
        print(f"stopped: {', '.join(stopped)}" if stopped else f"nothing recorded in {directory}")
        return 0
    if args.action == "status":
        state_path = directory / cluster.STATE_FILE
        print(state_path.read_text() if state_path.exists() else f"not running ({directory})")
        return 0
    if (directory / cluster.STATE_FILE).exists():
        print(f"already up; run `feast-lineage dev-cluster down --dir {directory}` first", file=sys.stderr)
        return 1
    from feast_lineage.devcluster.binaries import BuildError
    from feast_lineage.devcluster.processes import StartupError

    try:
        dev = cluster.start_dev_cluster(
            directory,
            with_mlflow=not args.no_mlflow,
            with_operator=args.with_operator,
            progress=lambda message: print(message, flush=True),
        )
    except (BuildError, StartupError) as error:
        print(f"dev-cluster up failed: {error}", file=sys.stderr)
        return 1
    print(f"export KUBECONFIG={dev.kubeconfig}")
    # kubectl and helm at the versions the cluster was built with.
    print(f"export PATH={dev.binaries.kubectl.parent}:{dev.binaries.helm.parent}:$PATH")
    if dev.mlflow is not None:
        print(f"export MLFLOW_TRACKING_URI={dev.mlflow.url}")
    if dev.operator is not None:
        print(f"operator running (CRDs installed); metrics: http://127.0.0.1:{dev.operator_metrics_port}/metrics")
    print(f"logs: {directory / 'logs'}; pod output: {directory / 'node' / 'pods'}")
    print(f"stop with: feast-lineage dev-cluster down --dir {directory}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from feast_lineage.controller.main import run_operator
    from feast_lineage.controller.settings import OperatorSettings
    from feast_lineage.domain.tenancy import DEFAULT_GIT_PROTOCOLS, DEFAULT_VOLUME_TYPES, TenancyPolicy

    defaults = OperatorSettings.from_env()
    webhook = _webhook_settings(args)
    tenancy = TenancyPolicy(
        runner_volume_types=frozenset(args.runner_volume_type or DEFAULT_VOLUME_TYPES),
        runner_service_accounts=frozenset(args.runner_service_account or ()),
        allow_tolerations=args.allow_runner_tolerations,
        node_selector_keys=frozenset(args.runner_node_selector_key or ()),
        git_protocols=frozenset(args.git_protocol or DEFAULT_GIT_PROTOCOLS),
    )
    try:
        leader_election = _leader_election(args)
        api_timeouts = _api_timeouts(args)
    except ValueError as error:
        print(f"feast-lineage run: {error}", file=sys.stderr)
        return 2
    settings = OperatorSettings(
        namespaces=args.namespace or defaults.namespaces,
        runner_image=args.runner_image or defaults.runner_image,
        mlflow_tracking_uri=args.mlflow_tracking_uri or defaults.mlflow_tracking_uri,
        resync_seconds=args.resync_seconds or defaults.resync_seconds,
        audit_retry_seconds=args.audit_retry_seconds or defaults.audit_retry_seconds,
        metrics_port=defaults.metrics_port if args.metrics_port is None else args.metrics_port,
        webhook=webhook,
        tenancy=tenancy,
        leader_election=leader_election,
        api_timeouts=api_timeouts,
    )
    run_operator(settings, log_json=args.log_json, liveness_port=args.liveness_port, log_level=args.log_level)
    return 0


def _leader_election(args: argparse.Namespace) -> LeaderElectionSettings | None:
    from feast_lineage.controller.settings import LeaderElectionSettings

    if not args.leader_election_lease:
        return None
    namespace, _, name = args.leader_election_lease.partition("/")
    identity = args.leader_election_identity or _process_identity(os.environ.get("POD_NAME"))
    return LeaderElectionSettings(
        namespace=namespace,
        name=name,
        identity=identity,
        lease_seconds=args.leader_election_lease_seconds,
        renew_deadline_seconds=args.leader_election_renew_seconds,
        retry_seconds=args.leader_election_retry_seconds,
    )


def _webhook_settings(args: argparse.Namespace) -> WebhookSettings | None:
    """The webhook's settings when a port is given; the defaults for those not given."""
    from feast_lineage.controller.settings import WebhookSettings

    if not args.webhook_port:
        return None
    given = {"drain_seconds": args.webhook_drain_seconds}
    return WebhookSettings(
        port=args.webhook_port,
        host=args.webhook_host,
        cert_dir=args.webhook_cert_dir,
        cert_secret=args.webhook_cert_secret,
        dns_names=tuple(args.webhook_dns_name or ()),
        ip_addresses=tuple(args.webhook_ip or ()),
        mutating_configurations=tuple(args.webhook_configuration or WebhookSettings.mutating_configurations),
        validating_configurations=tuple(
            args.validating_webhook_configuration or WebhookSettings.validating_configurations
        ),
        **{key: value for key, value in given.items() if value is not None},
    )


def _api_timeouts(args: argparse.Namespace) -> ApiTimeouts:
    """The bounds given on the command line, the defaults for those not given."""
    from feast_lineage.controller.settings import ApiTimeouts

    given = {"connect_seconds": args.api_connect_timeout_seconds, "read_seconds": args.api_read_timeout_seconds}
    return ApiTimeouts(**{key: value for key, value in given.items() if value is not None})


def _process_identity(pod_name: str | None) -> str:
    """This process's identity on the Lease: the pod's name (downward API) for whoever reads the Lease,
    with a random suffix, as Kubernetes' own controllers add one. A container restarted in the same pod
    (after a crash, a SIGKILL, a leader that could not renew) is then a new candidate that waits like the
    other replicas, rather than finding its pod's name on the Lease and resuming a leadership its
    predecessor held. A process outside a pod uses its host and PID instead of the pod's name."""
    return f"{pod_name or socket.gethostname() + '-' + str(os.getpid())}_{uuid.uuid4().hex[:8]}"


def _positive_seconds(text: str) -> float:
    seconds = float(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text}: must be more than 0")
    return seconds


def _rerun(args: argparse.Namespace) -> int:
    from kubernetes.client.exceptions import ApiException

    from feast_lineage.controller.bounded_client import ApiRequestTimeout
    from feast_lineage.controller.settings import ApiTimeouts
    from feast_lineage.rerun import rerun

    name = args.run.split("/", 1)[1] if "/" in args.run else args.run
    timeouts = ApiTimeouts(connect_seconds=args.request_timeout, read_seconds=args.request_timeout)
    try:
        created = rerun(args.namespace, name, args.name, timeouts)
    except ApiException as error:
        print(f"cannot re-run {name}: {error.status} {error.reason}", file=sys.stderr)
        return 1
    except ApiRequestTimeout as error:
        print(f"cannot re-run {name}: {error}", file=sys.stderr)
        return 1
    print(f"materializationjob.featurelineage.io/{created} created (re-run of {name})")
    return 0


def _runner(args: argparse.Namespace) -> int:
    # Imported here: the runner pulls in Feast, which the other commands must not pay for.
    from feast_lineage.runner.entrypoint import main

    return main(args.operation)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="feast-lineage", description="Lineage-managed Feast feature stores.")
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    crds = commands.add_parser("crds", help="generate the CustomResourceDefinitions from the models")
    crds.add_argument("--output", type=Path, default=Path("crds"), help="directory to write (default: crds)")
    crds.add_argument("--check", action="store_true", help="only check that the directory is up to date")
    crds.set_defaults(handler=_crds)

    chart = commands.add_parser("chart", help="generate the Helm chart's CRDs and RBAC rules")
    chart.add_argument("--chart", type=Path, default=Path("charts/feast-lineage-operator"), help="chart directory")
    chart.add_argument("--check", action="store_true", help="only check that the chart is up to date")
    chart.add_argument("--manifest", type=Path, help="also render the plain install manifest here (needs helm)")
    chart.set_defaults(handler=_chart)

    run = commands.add_parser("run", help="run the operator (Kopf) against the current kubeconfig or in-cluster")
    run.add_argument("--namespace", action="append", help="watch only this namespace (repeatable); default all")
    run.add_argument("--runner-image", help="image of runner Jobs (env FEAST_LINEAGE_RUNNER_IMAGE)")
    run.add_argument("--mlflow-tracking-uri", help="default tracking server (env FEAST_LINEAGE_MLFLOW_TRACKING_URI)")
    run.add_argument("--resync-seconds", type=float, help="project resync interval (default 60)")
    run.add_argument("--audit-retry-seconds", type=float, help="retry interval of MLflow audit delivery (default 30)")
    run.add_argument("--metrics-port", type=int, help="Prometheus port, 0 to disable (default 8080)")
    run.add_argument("--liveness-port", type=int, default=0, help="serve /healthz on this port")
    run.add_argument(
        "--api-connect-timeout-seconds", type=float, help="seconds to connect to the Kubernetes API server (TLS too)"
    )
    run.add_argument(
        "--api-read-timeout-seconds", type=float, help="seconds to wait for the Kubernetes API server's next bytes"
    )
    run.add_argument("--log-json", action="store_true", help="JSON log lines")
    run.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        help="info (default), warning, or debug: also a line as each pass over an object ends",
    )
    run.add_argument("--webhook-port", type=int, default=0, help="serve the pod injection webhook (HTTPS) here")
    run.add_argument("--webhook-host", default="0.0.0.0", help="address the webhook listens on")
    run.add_argument("--webhook-cert-dir", help="tls.crt/tls.key of the webhook (e.g. from cert-manager)")
    run.add_argument(
        "--webhook-cert-secret", help="NAMESPACE/NAME: Secret where the operator keeps its own webhook CA and cert"
    )
    run.add_argument("--webhook-dns-name", action="append", help="DNS name of the operator's webhook cert")
    run.add_argument("--webhook-ip", action="append", help="IP address of the operator's webhook cert")
    run.add_argument(
        "--webhook-drain-seconds",
        type=float,
        help="on SIGTERM, answer admission this long before stopping (default 5): the API server calls a deleted "
        "pod until its endpoint is removed",
    )
    policy = run.add_argument_group("what project authors may use (an administrator's choice)")
    policy.add_argument(
        "--runner-volume-type",
        action="append",
        help="volume type runner pods may use (repeatable; default configMap, secret, emptyDir, "
        "persistentVolumeClaim; hostPath only when listed)",
    )
    policy.add_argument("--runner-service-account", action="append", help="ServiceAccount runner pods may use")
    policy.add_argument("--allow-runner-tolerations", action="store_true", help="let projects set tolerations")
    policy.add_argument("--runner-node-selector-key", action="append", help="nodeSelector key projects may set")
    policy.add_argument(
        "--git-protocol",
        action="append",
        help="Git protocol projects may use (repeatable; default https, ssh, git)",
    )
    election = run.add_argument_group("replicas: only the holder of a Lease reconciles")
    election.add_argument(
        "--leader-election-lease",
        metavar="NAMESPACE/NAME",
        help="elect a leader with this coordination.k8s.io Lease; without it, this process reconciles at once",
    )
    election.add_argument(
        "--leader-election-identity",
        help="holder identity (default: $POD_NAME, else HOST-PID, with a random suffix per process)",
    )
    election.add_argument("--leader-election-lease-seconds", type=int, default=15, help="lease duration (15)")
    election.add_argument(
        "--leader-election-renew-seconds", type=int, default=10, help="the leader exits if not renewed within (10)"
    )
    election.add_argument("--leader-election-retry-seconds", type=int, default=2, help="renew/acquire period (2)")
    run.add_argument(
        "--webhook-configuration",
        action="append",
        help="MutatingWebhookConfiguration whose caBundle the operator sets "
        "(default feast-lineage-injection and feast-lineage-provenance)",
    )
    run.add_argument(
        "--validating-webhook-configuration",
        action="append",
        help="ValidatingWebhookConfiguration whose caBundle the operator sets (default feast-lineage-validation)",
    )
    run.set_defaults(handler=_run)

    again = commands.add_parser("rerun", help="run a MaterializationJob again, as a new object linked to it")
    again.add_argument("run", help="NAME or mj/NAME")
    again.add_argument("-n", "--namespace", default="default")
    again.add_argument("--name", help="name of the new run (default <name>-rerun-<n>)")
    again.add_argument(
        "--request-timeout",
        type=_positive_seconds,
        default=30.0,
        help="seconds each request to the Kubernetes API server may take to connect and to answer (default 30)",
    )
    again.set_defaults(handler=_rerun)

    runner = commands.add_parser("runner", help="run a Feast operation inside a runner Job pod")
    runner.add_argument("operation", choices=["apply", "materialize"])
    runner.set_defaults(handler=_runner)

    dev = commands.add_parser("dev-cluster", help="a local control plane, node and MLflow server for trying things out")
    dev.add_argument("action", choices=["up", "down", "status", "build"])
    dev.add_argument("--dir", type=Path, default=_default_dev_dir(), help="state directory")
    dev.add_argument("--no-mlflow", action="store_true", help="do not start an MLflow server")
    dev.add_argument("--with-operator", action="store_true", help="also install the CRDs and run the operator")
    dev.set_defaults(handler=_dev_cluster)

    from feast_lineage.lineage.command import add_parser as add_lineage_parser

    add_lineage_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.handler(args))


if __name__ == "__main__":
    main()
