"""The operator's Kubernetes API client: every request it makes is bounded in time.

The Kubernetes client waits for an answer as long as the socket lets it - forever, unless each call
passes ``_request_timeout``. Here the client gives every request a default (connect, read) bound from
:class:`~feast_lineage.controller.settings.ApiTimeouts`, whoever makes it: the client's generated
classes (the Lease), the client's watch helper. The operator's calls by path (:mod:`.rest`) go to the
same connection pool without the client's request machinery, bounded by the same timeouts. A watch
gets a read bound a little longer than its server-side ``timeoutSeconds``: the server ends a live
stream before, so a stream silent longer is dead. A timeout surfaces as :class:`ApiRequestTimeout`,
which names the request.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import urllib3
from kubernetes.client import ApiClient, Configuration
from urllib3.connectionpool import ConnectionPool
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from feast_lineage import __version__
from feast_lineage.controller.settings import ApiTimeouts
from feast_lineage.domain.labels import OPERATOR_FIELD_MANAGER

RETRIES = 3
"""urllib3's default: a pooled connection the server had closed is tried again on a new one."""


class ApiRequestTimeout(TimeoutError):
    """A Kubernetes API request that was not answered in time. Transient (a :class:`TimeoutError`):
    the pass that made it fails and is retried later."""

    def __init__(self, method: str, url: str, timeout: Any) -> None:
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        super().__init__(
            f"{method} {urlsplit(url).path}: the Kubernetes API server did not answer in time "
            f"(connect timeout {connect:g}s, read timeout {read:g}s)"
        )


class _TimeoutsNotRetried(Retry):
    """urllib3's retries, except after a timeout: a retried request would wait its bound again,
    a multiple of the bound in all."""

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        if isinstance(error, urllib3.exceptions.TimeoutError):
            raise error
        return super().increment(method, url, response, error, _pool, _stacktrace)


def watch_of(url: str) -> tuple[bool, float | None]:
    """Whether ``url`` is a watch, and its server-side ``timeoutSeconds`` if it has one."""
    query = parse_qs(urlsplit(url).query)
    watching = (query.get("watch") or [""])[0].lower() in ("true", "1")
    seconds = query.get("timeoutSeconds")
    return watching, float(seconds[0]) if seconds else None


def request_timeout(timeouts: ApiTimeouts, url: str) -> tuple[float, float]:
    """The (connect, read) bound of a request to ``url`` whose caller gave none."""
    return timeouts.default(*watch_of(url))


class BoundedApiClient(ApiClient):  # type: ignore[misc]  # the client is untyped
    """An ``ApiClient`` whose requests all have a timeout (a caller's own ``_request_timeout`` wins),
    and a User-Agent that names who writes: ``managedFields`` and audit logs show ``agent``."""

    def __init__(
        self, configuration: Configuration, timeouts: ApiTimeouts, agent: str = OPERATOR_FIELD_MANAGER
    ) -> None:
        if configuration.retries is None:
            configuration.retries = _TimeoutsNotRetried(RETRIES)
        super().__init__(configuration)
        self.timeouts = timeouts
        self.user_agent = f"{agent}/{__version__}"

    def call_api(
        self,
        method: str,
        url: str,
        header_params: Any = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> Any:
        watching, _ = watch_of(url)
        timeout = _request_timeout or request_timeout(self.timeouts, url)
        try:
            response = super().call_api(method, url, header_params, body, post_params, _request_timeout=timeout)
            if not watching:
                # The body too, here: a server that stalls halfway through an answer is reported as
                # this request's timeout, not as a bare socket error wherever the body is read.
                response.read()
        except urllib3.exceptions.TimeoutError as error:
            raise ApiRequestTimeout(method, url, timeout) from error
        return response
