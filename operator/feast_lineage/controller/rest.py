"""Kubernetes requests by path, through the client's ``ApiClient`` (its configuration, credentials,
TLS and connection pool), without the client's generated API classes.

Each generated class imports the pydantic models of every type its API group serves (``CoreV1Api``
alone some 250 of them) and validates every call's arguments: about 25 MiB of the operator's memory,
and CPU on each request, for an operator that reads and writes plain JSON. The methods here keep the
generated names and keyword arguments the operator uses, so call sites read the same. Each returns
the raw response (its ``.data`` is the JSON body), as the generated methods do with
``_preload_content=False``, and raises :class:`ApiException` on an error status, as they do.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.client.rest import RESTResponse

from feast_lineage.controller.bounded_client import ApiRequestTimeout, BoundedApiClient
from feast_lineage.controller.settings import ApiTimeouts

Obj = dict[str, Any]
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def query_of(arguments: dict[str, Any]) -> list[tuple[str, Any]]:
    """The client's keyword arguments as the API's query parameters (``label_selector`` ->
    ``labelSelector``); the client's own options (``_preload_content``, ``_request_timeout``) are not."""
    return [
        (_camel(key), str(value).lower() if isinstance(value, bool) else value)
        for key, value in arguments.items()
        if not key.startswith("_") and value is not None
    ]


class Rest:
    """One request by method and path; what the typed facades below are made of.

    The request goes straight to the client's connection pool (its TLS, credentials, retries and
    proxy settings) as JSON bytes, with a handful of headers: the client's own path (``param_serialize``
    walking the body to sanitize it, ``call_api``, ``RESTClientObject.request`` and urllib3's
    request-encoding layer) added about a tenth to each request's CPU (``benchmarks/request_cpu.py``,
    see the README's Capacity). Every request is bounded by the client's :class:`ApiTimeouts` (the defaults for a
    client that has none), a caller's ``_request_timeout`` winning, as :class:`.BoundedApiClient`
    bounds the client's own calls; a timeout is :class:`ApiRequestTimeout`."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        configuration = api.configuration
        self.timeouts: ApiTimeouts = api.timeouts if isinstance(api, BoundedApiClient) else ApiTimeouts()
        self._host = configuration.host
        self._safe = configuration.safe_chars_for_path_param
        self._pool = api.rest_client.pool_manager

    def _headers(self, accept: str, content_type: str | None) -> dict[str, str]:
        headers = {**self.api.default_headers, "Accept": accept}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if self.api.cookie:
            headers["Cookie"] = self.api.cookie
        # Asked each time: a token file or an exec plugin's token is refreshed by the configuration's hook.
        token = self.api.configuration.auth_settings().get("BearerToken")
        if token and token.get("value"):
            headers[token["key"]] = token["value"]
        return headers

    def request(
        self,
        method: str,
        path: str,
        arguments: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Any:
        """The raw response of ``method path?arguments`` with ``body``; :class:`ApiException` unless 2xx.
        ``path`` has ``{name}`` placeholders filled (and quoted) from ``arguments``; ``accept`` may ask
        for another representation (e.g. metadata only). A watch's answer is the open stream; any other
        answer is read whole (``.data``), which returns the connection to the pool."""
        arguments = dict(arguments or {})
        for key in [key for key in arguments if "{" + key + "}" in path]:
            path = path.replace("{" + key + "}", quote(str(arguments.pop(key)), safe=self._safe))
        query = query_of(arguments)
        url = self._host + path + ("?" + urlencode(query, quote_via=quote) if query else "")
        watching = bool(arguments.get("watch"))
        timeout = arguments.get("_request_timeout") or self.timeouts.default(watching, arguments.get("timeout_seconds"))
        # Plain JSON; anything JSON cannot encode (a datetime, a model) as the client would have sent it.
        data = None if body is None else json.dumps(body, default=self.api.sanitize_for_serialization).encode()
        headers = self._headers(accept, None if body is None else content_type)
        try:
            response = self._pool.urlopen(
                method,
                url,
                body=data,
                headers=headers,
                timeout=(
                    urllib3.Timeout(connect=timeout[0], read=timeout[1])
                    if isinstance(timeout, tuple)
                    else urllib3.Timeout(total=timeout)
                ),
                preload_content=not watching,
                redirect=False,
            )
            if watching and not 200 <= response.status <= 299:
                response.read(cache_content=True)  # kept: the exception below carries the server's Status
        except urllib3.exceptions.TimeoutError as error:
            raise ApiRequestTimeout(method, url, timeout) from error
        except urllib3.exceptions.SSLError as error:  # as the client reports it
            raise ApiException(status=0, reason=f"{type(error).__name__}\n{error}") from error
        if not 200 <= response.status <= 299:
            answer = RESTResponse(response)
            answer.read()  # the error's body (the API server's Status), as the client's exceptions carry it
            raise ApiException.from_response(http_resp=answer, body=None, data=None)
        return response


CORE = "/api/v1"
NAMESPACED = "/api/v1/namespaces/{namespace}"
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
"""A list's and a watch's objects as ``PartialObjectMetadata``: their metadata, no content."""


class CoreV1:
    """The core (v1) calls the operator makes."""

    def __init__(self, rest: Rest) -> None:
        self.rest = rest

    def read_namespace(self, name: str, **kw: Any) -> Any:
        return self.rest.request("GET", f"{CORE}/namespaces/{{name}}", {"name": name, **kw})

    def read_namespaced_config_map(self, name: str, namespace: str, **kw: Any) -> Any:
        return self.rest.request(
            "GET", f"{NAMESPACED}/configmaps/{{name}}", {"name": name, "namespace": namespace, **kw}
        )

    def list_namespaced_config_map(self, namespace: str, **kw: Any) -> Any:
        return self.rest.request("GET", f"{NAMESPACED}/configmaps", {"namespace": namespace, **kw})

    def list_config_map_metadata(self, namespace: str | None = None, **kw: Any) -> Any:
        """The metadata of one namespace's ConfigMaps (``None``: every namespace's), without their
        content; with ``watch=True``, a watch of it."""
        accept = METADATA if kw.get("watch") else METADATA_LIST
        if namespace is None:
            return self.rest.request("GET", f"{CORE}/configmaps", kw, accept=accept)
        return self.rest.request("GET", f"{NAMESPACED}/configmaps", {"namespace": namespace, **kw}, accept=accept)

    def create_namespaced_config_map(self, namespace: str, body: Obj, **kw: Any) -> Any:
        return self.rest.request("POST", f"{NAMESPACED}/configmaps", {"namespace": namespace, **kw}, body)

    def replace_namespaced_config_map(self, name: str, namespace: str, body: Obj, **kw: Any) -> Any:
        arguments = {"name": name, "namespace": namespace, **kw}
        return self.rest.request("PUT", f"{NAMESPACED}/configmaps/{{name}}", arguments, body)

    def delete_namespaced_config_map(self, name: str, namespace: str, **kw: Any) -> Any:
        arguments = {"name": name, "namespace": namespace, **kw}
        return self.rest.request("DELETE", f"{NAMESPACED}/configmaps/{{name}}", arguments)

    def read_namespaced_secret(self, name: str, namespace: str, **kw: Any) -> Any:
        return self.rest.request("GET", f"{NAMESPACED}/secrets/{{name}}", {"name": name, "namespace": namespace, **kw})

    def create_namespaced_secret(self, namespace: str, body: Obj, **kw: Any) -> Any:
        return self.rest.request("POST", f"{NAMESPACED}/secrets", {"namespace": namespace, **kw}, body)

    def replace_namespaced_secret(self, name: str, namespace: str, body: Obj, **kw: Any) -> Any:
        arguments = {"name": name, "namespace": namespace, **kw}
        return self.rest.request("PUT", f"{NAMESPACED}/secrets/{{name}}", arguments, body)

    def create_namespaced_event(self, namespace: str, body: Obj, **kw: Any) -> Any:
        return self.rest.request("POST", f"{NAMESPACED}/events", {"namespace": namespace, **kw}, body)

    def list_namespaced_pod(self, namespace: str, **kw: Any) -> Any:
        return self.rest.request("GET", f"{NAMESPACED}/pods", {"namespace": namespace, **kw})

    def list_pod_for_all_namespaces(self, **kw: Any) -> Any:
        return self.rest.request("GET", f"{CORE}/pods", kw)


JOBS = "/apis/batch/v1/namespaces/{namespace}/jobs"


class BatchV1:
    """The Job calls the operator makes."""

    def __init__(self, rest: Rest) -> None:
        self.rest = rest

    def read_namespaced_job(self, name: str, namespace: str, **kw: Any) -> Any:
        return self.rest.request("GET", f"{JOBS}/{{name}}", {"name": name, "namespace": namespace, **kw})

    def list_namespaced_job(self, namespace: str, **kw: Any) -> Any:
        return self.rest.request("GET", JOBS, {"namespace": namespace, **kw})

    def list_job_for_all_namespaces(self, **kw: Any) -> Any:
        return self.rest.request("GET", "/apis/batch/v1/jobs", kw)

    def create_namespaced_job(self, namespace: str, body: Obj, **kw: Any) -> Any:
        return self.rest.request("POST", JOBS, {"namespace": namespace, **kw}, body)

    def delete_namespaced_job(self, name: str, namespace: str, **kw: Any) -> Any:
        return self.rest.request("DELETE", f"{JOBS}/{{name}}", {"name": name, "namespace": namespace, **kw})


CUSTOM = "/apis/{group}/{version}"


class CustomObjects:
    """Calls on custom resources, by group, version and plural."""

    def __init__(self, rest: Rest) -> None:
        self.rest = rest

    @staticmethod
    def _path(namespaced: bool, named: bool = False, subresource: str = "") -> str:
        path = f"{CUSTOM}/namespaces/{{namespace}}/{{plural}}" if namespaced else f"{CUSTOM}/{{plural}}"
        return path + ("/{name}" if named else "") + (f"/{subresource}" if subresource else "")

    def get_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, **kw: Any
    ) -> Any:
        arguments = {"group": group, "version": version, "namespace": namespace, "plural": plural, "name": name}
        return self.rest.request("GET", self._path(True, True), {**arguments, **kw})

    def list_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str, **kw: Any) -> Any:
        arguments = {"group": group, "version": version, "namespace": namespace, "plural": plural}
        return self.rest.request("GET", self._path(True), {**arguments, **kw})

    def list_cluster_custom_object(self, group: str, version: str, plural: str, **kw: Any) -> Any:
        arguments = {"group": group, "version": version, "plural": plural}
        return self.rest.request("GET", self._path(False), {**arguments, **kw})

    def create_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, body: Obj, **kw: Any
    ) -> Any:
        arguments = {"group": group, "version": version, "namespace": namespace, "plural": plural}
        return self.rest.request("POST", self._path(True), {**arguments, **kw}, body)

    def delete_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, **kw: Any
    ) -> Any:
        arguments = {"group": group, "version": version, "namespace": namespace, "plural": plural, "name": name}
        return self.rest.request("DELETE", self._path(True, True), {**arguments, **kw})

    def patch_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: Obj, **kw: Any
    ) -> Any:
        """A JSON merge patch (a ``metadata.resourceVersion`` in it makes it conditional: 409 if changed)."""
        arguments = {"group": group, "version": version, "namespace": namespace, "plural": plural, "name": name}
        return self.rest.request("PATCH", self._path(True, True), {**arguments, **kw}, body, MERGE_PATCH)

    def replace_namespaced_custom_object_status(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: Obj, **kw: Any
    ) -> Any:
        arguments = {"group": group, "version": version, "namespace": namespace, "plural": plural, "name": name}
        return self.rest.request("PUT", self._path(True, True, "status"), {**arguments, **kw}, body)


WEBHOOKS = "/apis/admissionregistration.k8s.io/v1"


class AdmissionRegistrationV1:
    """Reading and patching the webhook configurations (their ``caBundle``)."""

    def __init__(self, rest: Rest) -> None:
        self.rest = rest

    def read_mutating_webhook_configuration(self, name: str, **kw: Any) -> Any:
        return self.rest.request("GET", f"{WEBHOOKS}/mutatingwebhookconfigurations/{{name}}", {"name": name, **kw})

    def patch_mutating_webhook_configuration(self, name: str, body: list[Obj], **kw: Any) -> Any:
        path = f"{WEBHOOKS}/mutatingwebhookconfigurations/{{name}}"
        return self.rest.request("PATCH", path, {"name": name, **kw}, body, JSON_PATCH)

    def read_validating_webhook_configuration(self, name: str, **kw: Any) -> Any:
        return self.rest.request("GET", f"{WEBHOOKS}/validatingwebhookconfigurations/{{name}}", {"name": name, **kw})

    def patch_validating_webhook_configuration(self, name: str, body: list[Obj], **kw: Any) -> Any:
        path = f"{WEBHOOKS}/validatingwebhookconfigurations/{{name}}"
        return self.rest.request("PATCH", path, {"name": name, **kw}, body, JSON_PATCH)


class AuthorizationV1:
    def __init__(self, rest: Rest) -> None:
        self.rest = rest

    def create_subject_access_review(self, body: Obj, **kw: Any) -> Any:
        return self.rest.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", kw, body)
