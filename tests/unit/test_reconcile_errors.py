"""Errors of a reconcile pass: Stalled with a reason when they would recur, retried when transient."""

from __future__ import annotations

import json

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from feast_lineage.api import GitRepo
from feast_lineage.controller.errors import brief, stalled_by


def _api_error(status: int, message: str) -> ApiException:
    error = ApiException(status=status, reason="Unprocessable Entity")
    error.body = json.dumps({"kind": "Status", "message": message})
    return error


def test_a_request_the_api_server_refuses_stalls_with_its_message() -> None:
    problem = stalled_by(_api_error(422, 'Job.batch "p-apply-1" is invalid: spec.template.spec.volumes[2].name'))
    assert problem is not None and problem.reason == "ApiRequestRejected"
    assert problem.message == (
        'the API server refused a request (422): Job.batch "p-apply-1" is invalid: spec.template.spec.volumes[2].name'
    )


@pytest.mark.parametrize(
    "error",
    [
        _api_error(500, "etcd leader changed"),
        _api_error(503, "unavailable"),
        _api_error(429, "too many requests"),
        ConnectionRefusedError(),
        TimeoutError(),
        urllib3.exceptions.ProtocolError("connection aborted"),
    ],
)
def test_transient_errors_are_retried_not_stalled(error: Exception) -> None:
    assert stalled_by(error) is None


def test_any_other_error_stalls_with_its_type_and_one_line() -> None:
    problem = stalled_by(ValueError("bad\nthing  happened"))
    assert problem is not None and (problem.reason, problem.message) == (
        "ReconcileError",
        "ValueError: bad thing happened",
    )


@pytest.mark.parametrize("url", ["https://[x", "https://git.example:99999/r.git", "https:///r.git"])
def test_a_git_url_no_parser_reads_is_an_invalid_spec(url: str) -> None:
    with pytest.raises(ValidationError, match="not a valid URL"):
        GitRepo(url=url)


def test_a_logged_api_error_is_one_line_with_the_servers_message_and_no_headers() -> None:
    error = ApiException(status=403, reason="Forbidden")
    error.headers = {"Audit-Id": "82e6e00d", "Date": "Fri, 27 Nov 2026 22:34:32 GMT"}
    error.body = json.dumps({"kind": "Status", "message": 'projects is forbidden: User "u"\ncannot list'})
    assert str(error).count("\n") > 2 and "Audit-Id" in str(error)  # what the client's own text is
    assert brief(error) == '403 Forbidden: projects is forbidden: User "u" cannot list'


def test_a_logged_error_without_a_body_is_its_status_and_reason_or_its_text() -> None:
    assert brief(ApiException(status=0, reason="ProtocolError\nconnection reset")) == "0 ProtocolError connection reset"
    assert brief(TimeoutError()) == "TimeoutError"
    assert brief(OSError("no\nroute")) == "no route"
