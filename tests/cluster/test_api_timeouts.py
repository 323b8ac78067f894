"""The operator's Kubernetes API requests against an API server that accepts connections and then
stops answering (a proxy in front of the real one, see stalling_proxy.py): each request fails within
its bound, naming what timed out, instead of holding its thread for good; a silent watch stream is
noticed; and an operator whose API server stalled carries on once it answers again."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import urllib3
import yaml
from kubernetes import client, watch

from feast_lineage.api import FEATURE_STORE_PROJECT_PLURAL
from feast_lineage.controller.bounded_client import ApiRequestTimeout, BoundedApiClient
from feast_lineage.controller.kube import Kube
from feast_lineage.controller.leadership import Leadership
from feast_lineage.controller.settings import ApiTimeouts, LeaderElectionSettings
from feast_lineage.devcluster.cluster import DevCluster
from tests.cluster.projects import Projects, project_manifest
from tests.cluster.stalling_proxy import StallingProxy
from tests.cluster_helpers import OperatorProcess, operators_paused, wait_until

pytestmark = pytest.mark.cluster

TIMEOUTS = ApiTimeouts(connect_seconds=2, read_seconds=3, watch_grace_seconds=2)
SLACK = 3.0
"""Beyond a bound, for a loaded machine (threads, the event loop of the proxy)."""
EVENT = {"metadata": {"generateName": "stall-"}, "reason": "Test", "message": "m", "type": "Normal"}
LIMIT = 60.0
"""How long the test waits for a request that has no bound (the old client): a failure, not a hang."""


@pytest.fixture
def proxy(dev_cluster: DevCluster) -> Iterator[StallingProxy]:
    server = urlsplit(dev_cluster.control_plane.server)
    proxy = StallingProxy(server.hostname or "127.0.0.1", server.port or 443)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.resume()
        proxy.stop()


def through(api: client.ApiClient, proxy: StallingProxy, timeouts: ApiTimeouts = TIMEOUTS) -> Kube:
    """The operator's client, with the test's credentials, talking to the API server through ``proxy``."""
    configuration = copy.deepcopy(api.configuration)
    configuration.host = f"https://127.0.0.1:{proxy.port}"
    return Kube(BoundedApiClient(configuration, timeouts))


def outcome(call: Callable[[], Any]) -> tuple[Any, float]:
    """What ``call`` returned or raised, and after how long; fails if it is still waiting after LIMIT
    seconds (its thread is left behind, as a stuck worker would be)."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as error:
            result.append(error)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(LIMIT)
    assert result, f"the request was still waiting after {LIMIT:g}s"
    return result[0], time.monotonic() - started


def test_requests_to_a_silent_api_server_fail_within_their_bound_and_work_again_after(
    api: client.ApiClient, namespace: str, proxy: StallingProxy
) -> None:
    kube = through(api, proxy)
    assert kube.core.read_namespace(namespace) is not None  # forwarded: a pooled connection is open
    proxy.stall()

    bound = max(TIMEOUTS.request()) + SLACK
    calls: dict[str, Callable[[], Any]] = {
        "GET": lambda: kube.get_custom(FEATURE_STORE_PROJECT_PLURAL, namespace, "p1"),
        "POST": lambda: kube.create_event(
            namespace, EVENT | {"involvedObject": {"kind": "Namespace", "name": namespace}}
        ),
        "GET list": lambda: kube.list_json(kube.core.list_namespaced_config_map, namespace),
    }
    for what, call in calls.items():
        error, seconds = outcome(call)
        assert isinstance(error, ApiRequestTimeout), f"{what}: {error!r}"
        assert seconds < bound, f"{what} failed after {seconds:.1f}s, bound {bound:g}s"
        print(f"{what} to a silent API server failed after {seconds:.2f}s (bounds {TIMEOUTS.request()})")
        assert f"/namespaces/{namespace}/" in str(error) and "did not answer in time" in str(error)

    proxy.resume()
    wait_until(lambda: kube.core.read_namespace(namespace), 30, "requests through the proxy to work again")


def test_a_watch_stream_that_goes_silent_is_noticed_past_its_server_side_end(
    api: client.ApiClient, namespace: str, proxy: StallingProxy
) -> None:
    kube = through(api, proxy)
    server_seconds = 2
    stalled_at: list[float] = []

    def watch_config_maps(stall: bool) -> None:
        stream = watch.Watch(return_type="object")
        for _ in stream.stream(kube.core.list_namespaced_config_map, namespace, timeout_seconds=server_seconds):
            # The namespace's kube-root-ca.crt: the stream is up. Then nothing reaches the client.
            if stall and not stalled_at:
                proxy.stall()
                stalled_at.append(time.monotonic())

    error, _ = outcome(lambda: watch_config_maps(stall=False))
    assert error is None, repr(error)  # forwarded: the server ends the stream after timeoutSeconds, as asked

    error, _ = outcome(lambda: watch_config_maps(stall=True))
    assert isinstance(error, urllib3.exceptions.ReadTimeoutError), repr(error)
    seconds = time.monotonic() - stalled_at[0]
    bound = server_seconds + TIMEOUTS.watch_grace_seconds + SLACK
    assert seconds < bound, f"the silent stream was noticed after {seconds:.1f}s, bound {bound:g}s"
    print(f"a watch stream gone silent was cut after {seconds:.2f}s (server-side end {server_seconds}s)")


def test_a_lease_try_against_a_silent_api_server_gives_up_at_the_renew_deadline(
    api: client.ApiClient, namespace: str, proxy: StallingProxy
) -> None:
    # Requests may take long in general; those of the leader election not beyond its renew deadline.
    kube = through(api, proxy, ApiTimeouts(connect_seconds=20, read_seconds=20))
    election = LeaderElectionSettings(
        namespace=namespace, name="lease", identity="a", lease_seconds=3, renew_deadline_seconds=2, retry_seconds=1
    )
    lost: list[str] = []
    leadership = Leadership(kube.api, election, lost.append)
    acquired, _ = outcome(leadership.election.try_acquire_or_renew)
    assert acquired is True  # forwarded: the Lease is created, held by "a"

    proxy.stall()
    renewed, seconds = outcome(leadership.election.try_acquire_or_renew)
    assert renewed is False  # a failed try, not an exception out of the elector
    bound = election.renew_deadline_seconds + SLACK
    assert seconds < bound, f"the try gave up after {seconds:.1f}s, bound {bound:g}s"
    print(f"a Lease renewal against a silent API server gave up after {seconds:.2f}s")


def proxied_kubeconfig(dev_cluster: DevCluster, proxy: StallingProxy, path: Path) -> Path:
    """The test's kubeconfig, its server the proxy."""
    kubeconfig = yaml.safe_load(dev_cluster.kubeconfig.read_text())
    for cluster in kubeconfig["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(kubeconfig))
    return path


def test_the_rerun_command_against_a_silent_api_server_fails_naming_the_request(
    dev_cluster: DevCluster, crds_installed: None, namespace: str, proxy: StallingProxy, tmp_path: Path
) -> None:
    proxy.stall()
    command = [str(Path(sys.executable).parent / "feast-lineage"), "rerun", "mj/nightly", "-n", namespace]
    rerun = subprocess.run(
        [*command, "--request-timeout", "2"],
        env={**os.environ, "KUBECONFIG": str(proxied_kubeconfig(dev_cluster, proxy, tmp_path / "kubeconfig"))},
        capture_output=True,
        text=True,
        timeout=LIMIT,
    )
    assert rerun.returncode == 1, rerun
    assert "cannot re-run nightly: GET " in rerun.stderr, rerun.stderr
    assert "/materializationjobs/nightly: the Kubernetes API server did not answer in time" in rerun.stderr
    assert "Traceback" not in rerun.stderr


def test_the_operator_carries_on_through_an_api_server_that_stalls_and_recovers(
    api: client.ApiClient,
    dev_cluster: DevCluster,
    crds_installed: None,
    namespace: str,
    proxy: StallingProxy,
    tmp_path: Path,
) -> None:
    proxied = proxied_kubeconfig(dev_cluster, proxy, tmp_path / "operator" / "kubeconfig")
    # No project here gets as far as MLflow: each one's repo ConfigMap is missing.
    operator = OperatorProcess(proxied, "http://127.0.0.1:1", tmp_path / "operator")
    operator.extra_args = [
        f"--namespace={namespace}",
        f"--api-connect-timeout-seconds={TIMEOUTS.connect_seconds:g}",
        f"--api-read-timeout-seconds={TIMEOUTS.read_seconds:g}",
        # Test projects keep Feast's files on hostPath volumes: an administrator's choice.
        *(f"--runner-volume-type={kind}" for kind in ("configMap", "secret", "emptyDir", "hostPath")),
    ]
    projects = Projects(api, namespace)
    with operators_paused(api):
        operator.start()
        try:
            projects.create(project_manifest("before", tmp_path / "data", {"configMap": {"name": "missing"}}))
            projects.wait_condition("before", "Stalled", "True", "RepoNotFound", timeout=60)

            # Silent: the project's resync pass (every few seconds) asks the API server and gives up.
            proxy.stall()
            path = f"/namespaces/{namespace}/{FEATURE_STORE_PROJECT_PLURAL}/before"
            wait_until(
                lambda: f"{path}: the Kubernetes API server did not answer in time" in operator.log(),
                30,
                "the operator to report a request that timed out",
            )
            assert operator.alive()

            proxy.resume()
            projects.create(project_manifest("after", tmp_path / "data", {"configMap": {"name": "missing"}}))
            projects.wait_condition("after", "Stalled", "True", "RepoNotFound", timeout=90)
            assert operator.alive()
        finally:
            operator.stop()
