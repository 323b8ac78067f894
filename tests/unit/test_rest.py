"""Requests by path: the client's keyword arguments become the API's query parameters; what a request
hands the connection pool (URL, credentials, bounds); an error status as the client's exception."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import urllib3
from kubernetes.client import Configuration
from kubernetes.client.exceptions import ApiException

from feast_lineage.controller.bounded_client import BoundedApiClient
from feast_lineage.controller.rest import Rest, query_of
from feast_lineage.controller.settings import ApiTimeouts


def test_client_keywords_become_camel_case_query_parameters() -> None:
    query = query_of(
        {"label_selector": "a=b", "propagation_policy": "Background", "watch": True, "timeout_seconds": 300}
    )
    assert query == [
        ("labelSelector", "a=b"),
        ("propagationPolicy", "Background"),
        ("watch", "true"),
        ("timeoutSeconds", 300),
    ]


def test_client_options_and_unset_arguments_are_not_sent() -> None:
    assert query_of({"_preload_content": False, "_request_timeout": 5, "resource_version": None}) == []


class Answer:
    def __init__(self, status: int = 200, data: bytes = b"{}") -> None:
        self.status, self.reason, self.data = status, "reason", data
        self.headers: dict[str, str] = {}

    def read(self) -> bytes:
        return self.data


class Pool:
    """Records what a request hands the connection pool (no network)."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.asked: list[dict[str, Any]] = []

    def urlopen(self, method: str, url: str, **kw: Any) -> Answer:
        self.asked.append({"method": method, "url": url, **kw})
        return self.answer


def rest_with(answer: Answer, timeouts: ApiTimeouts) -> tuple[Rest, Pool]:
    configuration = Configuration(host="https://10.0.0.1:6443", api_key={"BearerToken": "t0"})
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    rest = Rest(BoundedApiClient(configuration, timeouts))
    pool = Pool(answer)
    rest._pool = pool
    return rest, pool


def test_a_request_is_bounded_by_connect_and_read_timeouts_and_carries_the_credentials() -> None:
    rest, pool = rest_with(Answer(), ApiTimeouts(connect_seconds=2, read_seconds=3, watch_grace_seconds=5))
    rest.request(
        "PUT", "/api/v1/namespaces/{namespace}/configmaps/{name}", {"namespace": "n s", "name": "a/b"}, {"x": 1}
    )
    asked = pool.asked[-1]
    assert asked["url"] == "https://10.0.0.1:6443/api/v1/namespaces/n%20s/configmaps/a%2Fb"
    assert (asked["timeout"].connect_timeout, asked["timeout"].read_timeout) == (2, 3)
    assert json.loads(asked["body"]) == {"x": 1} and asked["preload_content"] is True
    headers = asked["headers"]
    assert headers["authorization"] == "Bearer t0" and headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("feast-lineage-operator/")
    # A watch reads a little past its server-side end; a caller's own bound wins.
    rest.request("GET", "/api/v1/pods", {"watch": True, "timeout_seconds": 60, "label_selector": "a=b"})
    asked = pool.asked[-1]
    assert asked["url"] == "https://10.0.0.1:6443/api/v1/pods?watch=true&timeoutSeconds=60&labelSelector=a%3Db"
    assert (asked["timeout"].connect_timeout, asked["timeout"].read_timeout) == (2, 65)
    assert asked["preload_content"] is False and asked["body"] is None and "Content-Type" not in asked["headers"]
    rest.request("GET", "/api/v1/pods", {"_request_timeout": (1, 1)})
    assert (pool.asked[-1]["timeout"].connect_timeout, pool.asked[-1]["timeout"].read_timeout) == (1, 1)


def test_an_error_status_is_the_clients_exception_with_the_servers_answer() -> None:
    rest, _ = rest_with(Answer(404, b'{"kind":"Status","reason":"NotFound"}'), ApiTimeouts())
    with pytest.raises(ApiException) as raised:
        rest.request("GET", "/api/v1/namespaces/{name}", {"name": "gone"})
    assert raised.value.status == 404 and "NotFound" in str(raised.value.body)


def test_a_refused_watch_keeps_the_servers_answer() -> None:
    # A watch's answer is not read ahead (a stream): the refusal's body must still reach the exception.
    refusal = b'{"kind":"Status","reason":"Forbidden","message":"pods is forbidden"}'
    stream = urllib3.HTTPResponse(body=io.BytesIO(refusal), status=403, preload_content=False)
    rest, _ = rest_with(Answer(), ApiTimeouts())
    rest._pool.answer = stream
    with pytest.raises(ApiException) as raised:
        rest.request("GET", "/api/v1/pods", {"watch": True, "timeout_seconds": 60})
    assert raised.value.status == 403 and "pods is forbidden" in str(raised.value.body)
