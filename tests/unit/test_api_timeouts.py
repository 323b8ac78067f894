"""Bounds on the operator's Kubernetes API requests: which bound a request gets, what a timeout says,
where the bounds come from (command line, chart) and how Kopf's requests get them too."""

from __future__ import annotations

import kopf
import pytest
import urllib3
from urllib3.util.retry import Retry

from feast_lineage.cli import _api_timeouts, build_parser
from feast_lineage.controller.bounded_client import (
    ApiRequestTimeout,
    BoundedApiClient,
    _TimeoutsNotRetried,
    request_timeout,
    watch_of,
)
from feast_lineage.controller.errors import stalled_by
from feast_lineage.controller.settings import ApiTimeouts
from feast_lineage.controller.wiring import _bound_requests

POOL = urllib3.HTTPConnectionPool("10.0.0.1")
PROJECTS = "https://10.0.0.1:6443/apis/featurelineage.io/v1alpha1/namespaces/ns/featurestoreprojects"


def test_defaults_bound_connecting_and_each_read() -> None:
    timeouts = ApiTimeouts()
    assert timeouts.request() == (10.0, 30.0)
    assert timeouts.total_seconds == 40.0
    assert timeouts.watch_seconds == 300


@pytest.mark.parametrize("field", ["connect_seconds", "read_seconds", "watch_seconds", "watch_grace_seconds"])
def test_a_bound_that_is_not_positive_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        ApiTimeouts(**{field: 0})


def test_a_request_whose_answer_is_useless_later_is_bounded_by_that() -> None:
    assert ApiTimeouts(connect_seconds=10, read_seconds=30).capped(5).request() == (5, 5)
    assert ApiTimeouts(connect_seconds=2, read_seconds=30).capped(10) == ApiTimeouts(connect_seconds=2, read_seconds=10)


def test_a_request_gets_connect_and_read_bounds_and_a_watch_reads_past_its_server_side_end() -> None:
    timeouts = ApiTimeouts(connect_seconds=2, read_seconds=3, watch_seconds=300, watch_grace_seconds=5)
    assert request_timeout(timeouts, f"{PROJECTS}/p1") == (2, 3)
    assert request_timeout(timeouts, f"{PROJECTS}?labelSelector=a%3Db&limit=500") == (2, 3)
    assert request_timeout(timeouts, f"{PROJECTS}?watch=true&timeoutSeconds=60") == (2, 65)
    assert request_timeout(timeouts, f"{PROJECTS}?timeoutSeconds=60&watch=True") == (2, 65)
    # A watch that asks for no server-side end is still read as one that ends after watch_seconds.
    assert request_timeout(timeouts, f"{PROJECTS}?watch=true") == (2, 305)
    assert watch_of(f"{PROJECTS}?watch=false") == (False, None)


def test_a_timeout_names_the_request_and_its_bounds() -> None:
    error = ApiRequestTimeout("GET", f"{PROJECTS}/p1?resourceVersion=5", (2.0, 3.5))
    assert str(error) == (
        "GET /apis/featurelineage.io/v1alpha1/namespaces/ns/featurestoreprojects/p1: "
        "the Kubernetes API server did not answer in time (connect timeout 2s, read timeout 3.5s)"
    )
    # Transient: a reconcile pass that meets it is retried, it does not stall the object.
    assert isinstance(error, TimeoutError) and stalled_by(error) is None


def test_a_timeout_is_not_retried_but_a_dropped_connection_is() -> None:
    retry = _TimeoutsNotRetried(3)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        retry.increment("GET", "/x", error=urllib3.exceptions.ReadTimeoutError(POOL, "/x", "Read timed out."))
    with pytest.raises(urllib3.exceptions.ConnectTimeoutError):
        retry.increment("GET", "/x", error=urllib3.exceptions.ConnectTimeoutError("timed out"))
    again = retry.increment("GET", "/x", error=urllib3.exceptions.ProtocolError("Connection aborted."))
    assert isinstance(again, _TimeoutsNotRetried) and again.total == 2


def test_the_client_keeps_a_retry_policy_it_was_given() -> None:
    from kubernetes.client import Configuration

    mine = Retry(1)
    configuration = Configuration(host="https://10.0.0.1:6443")
    configuration.retries = mine
    assert BoundedApiClient(configuration, ApiTimeouts()).configuration.retries is mine
    assert isinstance(BoundedApiClient(Configuration(), ApiTimeouts()).configuration.retries, _TimeoutsNotRetried)


def test_the_command_line_sets_the_bounds_and_leaves_the_rest_default() -> None:
    def parsed(*argv: str) -> ApiTimeouts:
        return _api_timeouts(build_parser().parse_args(["run", *argv]))

    assert parsed() == ApiTimeouts()
    assert parsed("--api-connect-timeout-seconds=4", "--api-read-timeout-seconds=90").request() == (4, 90)
    assert parsed("--api-read-timeout-seconds=12") == ApiTimeouts(read_seconds=12)
    with pytest.raises(ValueError, match="must be positive"):
        parsed("--api-connect-timeout-seconds=0")


def test_kopf_requests_and_watches_get_the_same_bounds() -> None:
    settings = kopf.OperatorSettings()
    assert settings.networking.request_timeout == 300  # Kopf's own: 5 minutes, and no connect bound
    assert settings.networking.connect_timeout is None
    _bound_requests(settings, ApiTimeouts(connect_seconds=4, read_seconds=20, watch_seconds=120))
    assert settings.networking.connect_timeout == 4
    assert settings.networking.request_timeout == 24
    assert settings.watching.server_timeout == 120
    assert settings.watching.client_timeout == 125
