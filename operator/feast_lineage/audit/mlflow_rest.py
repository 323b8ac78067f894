"""A minimal client of MLflow's REST API with bounded timeouts and retries.

MLflow's own client retries 7 times with a 120 s timeout (about 250 s against a dead server)
and costs ~160 MiB to import; this one makes at most ``max_retries + 1`` attempts of at most
``timeout`` seconds each, the whole client stops at ``deadline`` seconds (every byte of every
answer included, see :mod:`bounded_http`), and no answer is read beyond a size cap.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from feast_lineage import contract
from feast_lineage.audit.bounded_http import DEFAULT_MAX_RESPONSE_BYTES, ResponseTooLarge, exchange
from feast_lineage.audit.errors import DeliveryError, MlflowApiError, PermanentDeliveryError, one_line

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 1
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_API_PREFIX = "/api/2.0/mlflow/"


@dataclass(frozen=True)
class Credentials:
    """How to authenticate to, and trust, the tracking server. ``repr`` hides the secrets."""

    username: str | None = None
    password: str | None = None
    token: str | None = None
    ca_cert_path: str | None = None
    insecure_tls: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials:
        """MLflow's own environment variables, so pods and the operator share one configuration."""
        env = os.environ if env is None else env
        return cls(
            username=env.get(contract.MLFLOW_ENV_USERNAME) or None,
            password=env.get(contract.MLFLOW_ENV_PASSWORD) or None,
            token=env.get(contract.MLFLOW_ENV_TOKEN) or None,
            ca_cert_path=env.get(contract.MLFLOW_ENV_SERVER_CERT_PATH) or None,
            insecure_tls=env.get(contract.MLFLOW_ENV_INSECURE_TLS, "").strip().lower() in {"true", "1", "yes"},
        )

    def authorization(self) -> str | None:
        if self.username is not None and self.password is not None:
            pair = f"{self.username}:{self.password}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        if self.token:
            return f"Bearer {self.token}"
        return None

    def __repr__(self) -> str:
        return (
            f"Credentials(username={'***' if self.username else None}, "
            f"token={'***' if self.token else None}, ca_cert_path={self.ca_cert_path!r}, "
            f"insecure_tls={self.insecure_tls})"
        )


def check_tracking_uri(tracking_uri: str) -> str:
    """The URI without a trailing slash; raises :class:`DeliveryError` unless it is http(s) to a host
    without user info (the error never repeats the URI: it may hold a password)."""
    try:
        parts = urllib.parse.urlsplit(tracking_uri)
        parts.port  # noqa: B018 - parsing the port is what raises for a bad one
    except ValueError:
        raise DeliveryError("MLflow tracking URI is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise DeliveryError(
            f"MLflow tracking URI scheme {scheme or '(none)'!r} is not supported for audit delivery; "
            "use an http:// or https:// tracking server"
        )
    if "@" in parts.netloc:
        raise DeliveryError(
            "MLflow tracking URI carries user info (user:password@); give credentials by spec.mlflow.credentials"
        )
    return tracking_uri.rstrip("/")


class MlflowRestClient:
    """Calls ``/api/2.0/mlflow/<endpoint>`` of one tracking server."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        credentials: Credentials | None = None,
        deadline: float | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if timeout <= 0 or max_retries < 0:
            raise ValueError("timeout must be positive and max_retries not negative")
        self.base_url = check_tracking_uri(tracking_uri)
        self.timeout = timeout
        self.max_retries = max_retries
        self.credentials = credentials if credentials is not None else Credentials.from_env()
        # A server that answers every request slowly must not multiply the bound by the number of calls.
        self._budget = deadline if deadline is not None else 2 * timeout * (max_retries + 1)
        self._deadline = time.monotonic() + self._budget
        self.max_response_bytes = max_response_bytes
        self._ssl = self._ssl_context()

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.base_url.startswith("https"):
            return None
        context = ssl.create_default_context(cafile=self.credentials.ca_cert_path)
        if self.credentials.insecure_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def get(self, endpoint: str, query: Mapping[str, str]) -> dict[str, Any]:
        return self._call("GET", endpoint, query=query)

    def post(self, endpoint: str, body: Mapping[str, Any], *, retry: bool = True) -> dict[str, Any]:
        """``retry=False`` for a call that must not be repeated blindly (a create whose answer may be lost)."""
        return self._call("POST", endpoint, body=body, retries=self.max_retries if retry else 0)

    def _call(
        self,
        method: str,
        endpoint: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        retries: int | None = None,
    ) -> dict[str, Any]:
        url = self.base_url + _API_PREFIX + endpoint
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        last_error = "no attempt made"
        tries = (self.max_retries if retries is None else retries) + 1
        for attempt in range(tries):
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                break
            if attempt:
                # A short pause: long back-offs would break the bound this client exists for.
                time.sleep(min(0.5 * attempt, remaining / 2))
            try:
                reply = exchange(
                    method,
                    url,
                    data=data,
                    headers=self._headers(data),
                    read_timeout=self.timeout,
                    deadline=self._deadline,
                    max_bytes=self.max_response_bytes,
                    ssl_context=self._ssl,
                )
            except ResponseTooLarge as error:
                raise PermanentDeliveryError(f"MLflow at {self.base_url} ({endpoint}): {error}") from None
            except ssl.SSLCertVerificationError as error:
                # Retrying cannot make an unknown CA known: the configuration must change.
                raise PermanentDeliveryError(
                    f"MLflow at {self.base_url}: TLS certificate not trusted ({error.verify_message}); "
                    "set the server's CA (MLFLOW_TRACKING_SERVER_CERT_PATH)"
                ) from None
            except (OSError, http.client.HTTPException, ValueError) as error:
                # http.client's own errors (IncompleteRead, RemoteDisconnected, InvalidURL, ...) and a URL
                # urllib cannot parse are a failed attempt like a refused connection, never a crash.
                last_error = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
                continue
            if 200 <= reply.status < 300:
                return _json_object(reply.body)
            code, message = _error_details(reply.body, reply.status)
            if reply.status not in _RETRYABLE_STATUS:
                raise MlflowApiError(endpoint, reply.status, code, message) from None
            last_error = f"HTTP {reply.status} {code}: {message}"
        raise DeliveryError(
            f"MLflow at {self.base_url} unreachable ({endpoint}, {tries} attempt(s), "
            f"timeout {self.timeout:g}s, deadline {self._budget:g}s): {last_error}"
        )

    def _headers(self, data: bytes | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "feast-lineage"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        authorization = self.credentials.authorization()
        if authorization:
            headers["Authorization"] = authorization
        return headers


def _json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as error:
        raise DeliveryError(f"MLflow answered with something other than JSON: {raw[:120]!r}") from error
    if not isinstance(parsed, dict):
        raise DeliveryError("MLflow answered with a JSON value that is not an object")
    return parsed


def _error_details(raw: bytes, status: int) -> tuple[str, str]:
    try:
        parsed = json.loads(raw)
        if isinstance(parsed, dict):
            return str(parsed.get("error_code", "ERROR")), one_line(str(parsed.get("message", "")), 200)
    except ValueError:
        pass
    return "ERROR", one_line(raw[:400].decode("utf-8", "replace") or f"HTTP {status}", 200)
