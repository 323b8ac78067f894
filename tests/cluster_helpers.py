"""Small helpers for tests that talk to the real control plane."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sys
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from feast_lineage.api import FEATURE_STORE_PROJECT_KIND
from feast_lineage.controller.pass_log import OK, PASS_DONE
from feast_lineage.devcluster.processes import ManagedProcess, free_port

T = TypeVar("T")

RESYNC_SECONDS = 3
"""The session operator's resync. A test that says nothing more happens waits for the operator's passes
over the object (:func:`wait_for_passes`), not for a number of these."""
AUDIT_RETRY_SECONDS = 4


class Operator(Protocol):
    """What :func:`operators_paused` needs of an operator: a process, or the chart's Deployment."""

    def alive(self) -> bool: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


running_operators: weakref.WeakSet[Operator] = weakref.WeakSet()
"""The operators started and not stopped, session's and tests' own."""


def not_yet(error: BaseException) -> bool:
    """Errors that mean "not there yet": an object not created yet (404), a server busy or restarting
    (429, 5xx, a timeout), an endpoint not listening yet."""
    if isinstance(error, ApiException):
        return error.status in (404, 429) or (error.status or 0) >= 500 or not error.status
    return isinstance(error, ConnectionError | TimeoutError | urllib.error.URLError | urllib3.exceptions.HTTPError)


def gone(read: Callable[..., object], *args: str) -> bool:
    """Whether ``read(*args)`` answers 404: the object is gone (any other answer: not yet)."""
    try:
        read(*args)
    except ApiException as error:
        return bool(error.status == 404)
    return False


def wait_until(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds.

    Only "not there yet" errors (see :func:`not_yet`) are retried; any other error of the probe, a
    broken probe or a failed assertion in it, fails at once rather than looking like a timeout.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except Exception as error:
            if not not_yet(error):
                raise
            last_error = error
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last_error})" if last_error else "")
    )


class Logged(Protocol):
    """An operator whose log the tests read (the chart's pod, a process)."""

    def log(self) -> str: ...


def passes(
    log: str, kind: str, namespace: str, name: str, since: float, outcomes: Collection[str] | None = None
) -> list[dict[str, object]]:
    """The operator's ``pass done`` lines (``--log-level=debug``, JSON) about one object, of passes that
    started at or after ``since`` (Unix time) and ended in one of ``outcomes`` (any if None)."""
    found = []
    for line in log.splitlines():
        if not line.startswith("{") or f'"{PASS_DONE}: ' not in line:
            continue
        record = json.loads(line)
        if (record.get("kind"), record.get("k8s_namespace"), record.get("k8s_name")) != (kind, namespace, name):
            continue
        if record["started"] >= since and (outcomes is None or record["outcome"] in outcomes):
            found.append(record)
    return found


def wait_for_passes(
    operator: Logged,
    kind: str,
    namespace: str,
    name: str,
    count: int,
    since: float,
    outcomes: Collection[str] | None = None,
    timeout: float = 180,
) -> list[dict[str, object]]:
    """Wait until the operator has ended ``count`` passes over the object that started at or after
    ``since``: what a test waits for before it says something did not happen, instead of a sleep."""
    what = f"{count} pass(es) of {kind} {namespace}/{name} started since {since:.3f}" + (
        f" ending {'/'.join(sorted(outcomes))}" if outcomes else ""
    )

    def enough() -> list[dict[str, object]] | None:
        found = passes(operator.log(), kind, namespace, name, since, outcomes)
        return found if len(found) >= count else None

    return wait_until(enough, timeout, what, interval=0.5)


def wait_for_project_resyncs(operator: Logged, namespace: str, name: str, count: int, since: float) -> None:
    """``count`` passes over the FeatureStoreProject since ``since``, at least one a full pass (``ok``): a
    settled project's resync only asks Git again, and only a full pass could create or record anything."""
    wait_for_passes(operator, FEATURE_STORE_PROJECT_KIND, namespace, name, count, since)
    wait_for_passes(operator, FEATURE_STORE_PROJECT_KIND, namespace, name, 1, since, outcomes={OK})


def job_running(api: client.ApiClient, namespace: str, name: str) -> bool:
    """The Job has a Running pod and has not finished."""
    job = client.BatchV1Api(api).read_namespaced_job(name, namespace)
    finished = any(c.status == "True" and c.type in ("Complete", "Failed") for c in job.status.conditions or [])
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
    return not finished and any(pod.status.phase == "Running" for pod in pods)


def finished_after(api: client.ApiClient, namespace: str, name: str, moment: datetime.datetime) -> bool:
    """The Job completed no earlier than ``moment`` (both to the second): it was still running then."""
    job = client.BatchV1Api(api).read_namespaced_job(name, namespace)
    ended = job.status.completion_time or next(
        (c.last_transition_time for c in job.status.conditions or [] if c.type == "Failed" and c.status == "True"),
        None,
    )
    return ended is not None and ended >= moment


class OperatorProcess:
    """`feast-lineage run` as a child process that tests can kill and start again.

    The session's operator is the chart's pod (tests/operator_pod.py). A process is for tests that run
    operators of their own beside the cluster's network: several replicas on this one host, each with
    ports of its own, or an operator with a token from RBAC applied without its Deployment (each such
    test says why), and for the benchmarks, which measure the operator's own process.

    With ``run_args`` (the arguments the chart's Deployment gives it) it runs as the chart runs it,
    else with arguments of its own; the kubeconfig says whose credentials it uses.
    """

    RESYNC_SECONDS = RESYNC_SECONDS
    AUDIT_RETRY_SECONDS = AUDIT_RETRY_SECONDS

    def __init__(
        self, kubeconfig: Path, mlflow_url: str, directory: Path, resync_seconds: float = RESYNC_SECONDS
    ) -> None:
        self.kubeconfig = kubeconfig
        self.resync_seconds = resync_seconds
        self.mlflow_url = mlflow_url
        self.directory = directory
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.webhook_port = free_port()
        self.webhook_args: list[str] = []
        self.extra_args: list[str] = []
        """More arguments of its own (e.g. an administrator's policy)."""
        self.extra_env: dict[str, str] = {}
        """More environment (e.g. the POD_NAME a pod's downward API gives it)."""
        self.run_args: list[str] | None = None
        self.process: ManagedProcess | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.directory / "operator.log"

    def start(self) -> None:
        self.starts += 1
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig), NO_PROXY="127.0.0.1,localhost", **self.extra_env)
        own_args = [
            "--mlflow-tracking-uri",
            self.mlflow_url,
            "--resync-seconds",
            str(self.resync_seconds),
            "--metrics-port",
            str(self.metrics_port),
            "--liveness-port",
            str(self.liveness_port),
            "--log-json",
            "--log-level=debug",
            *self.webhook_args,
            *self.extra_args,
        ]
        # On this machine's network, the webhook listens on loopback only.
        chart_args = [*(self.run_args or [])[1:], "--webhook-host", "127.0.0.1"]
        self.process = ManagedProcess(
            "operator",
            [
                str(Path(sys.executable).parent / "feast-lineage"),
                "run",
                *(chart_args if self.run_args is not None else own_args),
                "--audit-retry-seconds",
                str(self.AUDIT_RETRY_SECONDS),
            ],
            self.log_path,
            env=env,
        )
        running_operators.add(self)
        self.process.wait_ready(self._live, 60, "live (/healthz)")

    def _live(self) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2) as response:
            return int(response.status) == 200

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def kill(self) -> datetime.datetime:
        """SIGKILL, as a crash or an evicted pod would end it; returns when (to the second, rounded down,
        as the API server's times are)."""
        assert self.process is not None
        killed = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        os.killpg(self.process.pid, 9)
        self.process.popen.wait(timeout=10)
        return killed

    def stop(self) -> None:
        running_operators.discard(self)
        if self.process is not None and self.process.alive():
            self.process.stop()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return str(response.read().decode())


@contextlib.contextmanager
def operators_paused(api: client.ApiClient) -> Iterator[None]:
    """Stop every operator the session runs (its chart's pod, tests' processes), and start them again
    afterwards.

    For tests whose own operator must be the only one acting on their objects. The session
    operator's validating webhook fails closed, so it is set aside while nobody serves it.
    """
    paused = [operator for operator in list(running_operators) if operator.alive()]
    for operator in paused:
        operator.stop()
    try:
        with without_validation(api):
            yield
    finally:
        for operator in paused:
            operator.start()


@contextlib.contextmanager
def without_validation(api: client.ApiClient) -> Iterator[None]:
    """As if the validating webhook were not installed, for the block: for tests of what gets past
    admission (the reconciler's own checks) or of the schema alone."""
    admission = client.AdmissionregistrationV1Api(api)
    saved = [
        api.sanitize_for_serialization(configuration)
        for configuration in admission.list_validating_webhook_configuration().items
        if configuration.metadata.name.endswith("-validation")
    ]
    for configuration in saved:
        admission.delete_validating_webhook_configuration(configuration["metadata"]["name"])
    try:
        yield
    finally:
        for configuration in saved:
            keep = ("name", "labels", "annotations")
            configuration["metadata"] = {k: v for k, v in configuration["metadata"].items() if k in keep}
            admission.create_validating_webhook_configuration(configuration)
