"""Operator-wide settings, from the command line or the environment."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from feast_lineage import __version__
from feast_lineage.domain.tenancy import TenancyPolicy

DEFAULT_RUNNER_IMAGE = f"feast-lineage-operator:{__version__}"


@dataclass(frozen=True)
class WebhookSettings:
    """Where and with which certificate the injection webhook is served."""

    port: int = 9443
    host: str = "0.0.0.0"
    cert_dir: str | None = None
    """tls.crt and tls.key from here (e.g. a mounted cert-manager Secret); cert-manager sets the caBundle."""
    cert_secret: str | None = None
    """``namespace/name`` of the Secret the operator keeps its own CA and certificate in (when no cert_dir)."""
    dns_names: tuple[str, ...] = ()
    """Names of the serving certificate the operator makes (the webhook Service's DNS names)."""
    ip_addresses: tuple[str, ...] = ()
    mutating_configurations: tuple[str, ...] = ("feast-lineage-injection", "feast-lineage-provenance")
    """MutatingWebhookConfigurations whose caBundle the operator sets from its own CA."""
    validating_configurations: tuple[str, ...] = ("feast-lineage-validation",)
    """ValidatingWebhookConfigurations whose caBundle the operator sets from its own CA."""
    drain_seconds: float = 5.0
    """On stop, serve on this long: the API server calls a deleted pod until its endpoint is gone."""

    MAX_DRAIN_SECONDS = 300.0

    def __post_init__(self) -> None:
        if not 0 <= self.drain_seconds <= self.MAX_DRAIN_SECONDS:  # also refuses NaN
            raise ValueError(f"the webhook drain period must be 0 to {self.MAX_DRAIN_SECONDS:.0f} seconds")


@dataclass(frozen=True)
class LeaderElectionSettings:
    """One Lease (coordination.k8s.io) that replicas take turns holding: only its holder reconciles.

    Timing as Kubernetes' own controllers have it: the leader renews every ``retry_seconds`` and
    gives up (the process exits) when it has not renewed for ``renew_deadline_seconds``; the others
    take the Lease over ``lease_seconds`` after they last saw it renewed. The deadline is shorter than
    the lease, so a leader that cannot renew stops before anyone else starts.
    """

    namespace: str
    name: str
    identity: str
    """Who holds the Lease (``holderIdentity``): the pod's name, unique among the replicas."""
    lease_seconds: int = 15
    renew_deadline_seconds: int = 10
    retry_seconds: int = 2

    def __post_init__(self) -> None:
        if not self.namespace or not self.name or not self.identity:
            raise ValueError("leader election needs the Lease's namespace and name, and an identity")
        if self.retry_seconds < 1:
            raise ValueError("the leader election retry period must be at least 1 second")
        # The Kubernetes client's election refuses a deadline within 1.2 retry periods (jitter).
        if self.renew_deadline_seconds <= 1.2 * self.retry_seconds:
            raise ValueError("the leader election renew deadline must exceed 1.2 retry periods")
        if self.lease_seconds <= self.renew_deadline_seconds:
            raise ValueError("the leader election lease duration must exceed its renew deadline")


@dataclass(frozen=True)
class ApiTimeouts:
    """Bounds on each of the operator's Kubernetes API requests, the one place they are defined.

    An API server (or a proxy in front of it) that accepts a connection and then never answers would
    otherwise hold the thread that asked - one of Kopf's workers, a scheduler's - for good. A request
    that is not answered in time fails, and the pass that made it is retried later.
    """

    connect_seconds: float = 10.0
    """Connecting, TLS handshake included."""
    read_seconds: float = 30.0
    """Waiting for the next bytes of an answer (not the whole answer: a long list keeps arriving)."""
    watch_seconds: int = 300
    """The server ends each watch after this long (``timeoutSeconds``); the watcher then resumes it."""
    watch_grace_seconds: float = 5.0
    """A watch stream silent this long past its server-side end is taken for dead."""

    def __post_init__(self) -> None:
        if min(self.connect_seconds, self.read_seconds, self.watch_seconds, self.watch_grace_seconds) <= 0:
            raise ValueError("the Kubernetes API timeouts must be positive")

    def request(self) -> tuple[float, float]:
        """(connect, read) of a request that is not a watch."""
        return (self.connect_seconds, self.read_seconds)

    def watch(self, server_seconds: float | None) -> tuple[float, float]:
        """(connect, read) of a watch the server ends after ``server_seconds`` (None: ``watch_seconds``):
        a stream with no bytes for a little longer than that is dead, whatever the server promised."""
        return (self.connect_seconds, (server_seconds or self.watch_seconds) + self.watch_grace_seconds)

    def default(self, watching: bool, server_seconds: float | None) -> tuple[float, float]:
        """(connect, read) of a request whose caller gave none: a watch's or any other's."""
        return self.watch(server_seconds) if watching else self.request()

    def capped(self, seconds: float) -> ApiTimeouts:
        """Connect and read no longer than ``seconds``: for requests whose answers are of no use later."""
        return dataclasses.replace(
            self, connect_seconds=min(self.connect_seconds, seconds), read_seconds=min(self.read_seconds, seconds)
        )

    @property
    def total_seconds(self) -> float:
        """One request, connecting and answering, where only a total can be bounded (Kopf's)."""
        return self.connect_seconds + self.read_seconds


@dataclass(frozen=True)
class OperatorSettings:
    namespaces: list[str] = field(default_factory=list)
    """Namespaces to watch; every namespace when empty."""
    runner_image: str = DEFAULT_RUNNER_IMAGE
    """Image of the runner Jobs when a project does not name one."""
    mlflow_tracking_uri: str | None = None
    """Tracking server for projects that do not set spec.mlflow.trackingUri."""
    resync_seconds: float = 60.0
    """How often each project's Git revision is asked again and each unfinished run looked at; a settled
    project gets a full pass (drift, Secrets) every tenth resync, one with something in flight each."""
    input_retry_seconds: float = 5.0
    """How often a project waiting for a Secret looks again (Secrets are not watched: least privilege)."""
    active_poll_seconds: float = 2.0
    """How often a project with an apply in flight is checked."""
    metrics_port: int = 8080
    """Port of the Prometheus /metrics endpoint; 0 turns it off."""
    apply_jobs_kept: int = 3
    """Finished apply Jobs kept per project (older ones are deleted)."""
    git_timeout_seconds: float = 20.0
    """Bound on resolving a Git revision."""
    schedule_tick_seconds: float = 10.0
    """How often materialization schedules are checked (cron has minute resolution)."""
    max_waiting_runs: int = 10
    """Runs of one project that wait to start: the schedule creates no more, and beyond it a run waits
    in a queue that is looked at only every resync."""
    audit_retry_seconds: float = 30.0
    """How often audit records that MLflow could not take are offered to it again."""
    audit_workers: int = 2
    """Threads that deliver audit records, apart from the reconcile workers and outside any object's lock."""
    audit_request_timeout_seconds: float = 10.0
    """Cap of an MLflow request's read timeout in redelivery, whatever a spec's requestTimeoutSeconds."""
    audit_max_retries: int = 1
    """Cap of MLflow request retries in redelivery, whatever a spec's maxRetries."""
    audit_record_deadline_seconds: float = 30.0
    """Bound of delivering one record, every request and byte of it included."""
    audit_pass_seconds: float = 60.0
    """Bound of one pass over an object's pending records; the rest wait for the next pass."""
    audit_deletion_wait_seconds: float = 60.0
    """How long a deletion waits for its object's pending records to be delivered before abandoning them."""
    webhook: WebhookSettings | None = None
    """The training-pod injection webhook and the validating webhook; not served when None."""
    tenancy: TenancyPolicy = field(default_factory=TenancyPolicy)
    """What project authors may use at all (runner volume types, ServiceAccounts, Git protocols...)."""
    leader_election: LeaderElectionSettings | None = None
    """Replicas elect a leader, which alone reconciles; None: this process reconciles at once (one replica)."""
    api_timeouts: ApiTimeouts = field(default_factory=ApiTimeouts)
    """Bounds on the operator's Kubernetes API requests and watches."""

    @classmethod
    def from_env(cls) -> OperatorSettings:
        namespaces = [n for n in os.environ.get("FEAST_LINEAGE_NAMESPACES", "").split(",") if n]
        return cls(
            namespaces=namespaces,
            runner_image=os.environ.get("FEAST_LINEAGE_RUNNER_IMAGE", DEFAULT_RUNNER_IMAGE),
            mlflow_tracking_uri=os.environ.get("FEAST_LINEAGE_MLFLOW_TRACKING_URI") or None,
            resync_seconds=float(os.environ.get("FEAST_LINEAGE_RESYNC_SECONDS", "60")),
            audit_retry_seconds=float(os.environ.get("FEAST_LINEAGE_AUDIT_RETRY_SECONDS", "30")),
            metrics_port=int(os.environ.get("FEAST_LINEAGE_METRICS_PORT", "8080")),
        )
