"""The reads behind the lineage answers: MLflow's REST API and the Kubernetes API, both bounded.

MLflow goes through :class:`~feast_lineage.audit.mlflow_rest.MlflowRestClient`, so every request
has a timeout, few retries and the whole command a deadline: a dead or silent server ends the
command in seconds, never minutes. Not-found answers become ``None``; a source that cannot be
read raises :class:`SourceUnavailable`.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from feast_lineage.api import FEATURE_STORE_PROJECT_PLURAL, GROUP, MATERIALIZATION_JOB_PLURAL, VERSION
from feast_lineage.audit.errors import DeliveryError, MlflowApiError
from feast_lineage.audit.mlflow_rest import Credentials, MlflowRestClient
from feast_lineage.domain import labels
from feast_lineage.lineage.records import ModelVersion, Run, parse_model_version, parse_run

Obj = dict[str, Any]
PAGE = 1000
_SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class SourceUnavailable(Exception):
    """MLflow or the cluster could not be read (unreachable, refused, timed out, forbidden)."""


class MlflowReader:
    """What the lineage questions read from one tracking server."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        timeout: float = 10.0,
        max_retries: int = 1,
        deadline: float = 60.0,
        credentials: Credentials | None = None,
    ) -> None:
        try:
            self.client = MlflowRestClient(
                tracking_uri, timeout=timeout, max_retries=max_retries, credentials=credentials, deadline=deadline
            )
        except DeliveryError as error:
            raise SourceUnavailable(str(error).replace("for audit delivery", "for lineage")) from None
        self.base_url = self.client.base_url
        self._experiment_names: dict[str, str] = {}

    # -- calls -------------------------------------------------------------------------------------

    def _call(self, call: Callable[[], dict[str, Any]], *missing_codes: str) -> dict[str, Any] | None:
        try:
            return call()
        except MlflowApiError as error:
            if error.error_code in missing_codes or error.status == 404:
                return None
            raise SourceUnavailable(str(error)) from None
        except DeliveryError as error:
            raise SourceUnavailable(str(error)) from None

    def _get(self, endpoint: str, query: Mapping[str, str], *missing_codes: str) -> dict[str, Any] | None:
        return self._call(lambda: self.client.get(endpoint, query), "RESOURCE_DOES_NOT_EXIST", *missing_codes)

    def _post(self, endpoint: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call(lambda: self.client.post(endpoint, body)) or {}

    # -- reads -------------------------------------------------------------------------------------

    def model_version(self, name: str, version: str) -> ModelVersion | None:
        reply = self._get("model-versions/get", {"name": name, "version": version}, "INVALID_PARAMETER_VALUE")
        found = (reply or {}).get("model_version")
        return parse_model_version(found) if isinstance(found, dict) else None

    def model_version_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        # An unknown alias is INVALID_PARAMETER_VALUE ("alias ... not found"), an unknown model 404.
        reply = self._get("registered-models/alias", {"name": name, "alias": alias}, "INVALID_PARAMETER_VALUE")
        found = (reply or {}).get("model_version")
        return parse_model_version(found) if isinstance(found, dict) else None

    def run(self, run_id: str) -> Run | None:
        reply = self._get("runs/get", {"run_id": run_id}, "INVALID_PARAMETER_VALUE")
        found = (reply or {}).get("run")
        return parse_run(found) if isinstance(found, dict) else None

    def experiment_name(self, experiment_id: str | None) -> str | None:
        if not experiment_id:
            return None
        if experiment_id not in self._experiment_names:
            reply = self._get("experiments/get", {"experiment_id": experiment_id})
            experiment = (reply or {}).get("experiment") or {}
            self._experiment_names[experiment_id] = str(experiment.get("name") or "")
        return self._experiment_names[experiment_id] or None

    def experiment_id(self, name: str) -> str | None:
        reply = self._get("experiments/get-by-name", {"experiment_name": name})
        experiment = (reply or {}).get("experiment") or {}
        if not experiment.get("experiment_id") or experiment.get("lifecycle_stage") == "deleted":
            return None
        self._experiment_names[str(experiment["experiment_id"])] = name
        return str(experiment["experiment_id"])

    def experiments(self) -> dict[str, str]:
        """Every active experiment, id to name."""
        found: dict[str, str] = {}
        token: str | None = None
        while True:
            body: dict[str, Any] = {"max_results": PAGE, "view_type": "ACTIVE_ONLY"}
            if token:
                body["page_token"] = token
            reply = self._post("experiments/search", body)
            for experiment in reply.get("experiments") or []:
                found[str(experiment["experiment_id"])] = str(experiment.get("name", ""))
            token = reply.get("next_page_token")
            if not token:
                break
        self._experiment_names.update(found)
        return found

    def search_runs(self, experiment_ids: Sequence[str], filter_string: str, max_runs: int) -> tuple[list[Run], bool]:
        """Active runs matching ``filter_string``, newest first; True when more than ``max_runs`` matched."""
        if not experiment_ids:
            return [], False
        runs: list[Run] = []
        token: str | None = None
        while True:
            body: dict[str, Any] = {
                "experiment_ids": list(experiment_ids),
                "filter": filter_string,
                "run_view_type": "ACTIVE_ONLY",
                "max_results": max(1, min(PAGE, max_runs - len(runs))),
                "order_by": ["attributes.start_time DESC"],
            }
            if token:
                body["page_token"] = token
            reply = self._post("runs/search", body)
            runs += [parse_run(raw) for raw in reply.get("runs") or []]
            token = reply.get("next_page_token")
            if not token:
                return runs, False
            if len(runs) >= max_runs:
                return runs, True

    def search_model_versions(self, filter_string: str, max_versions: int = 10000) -> list[ModelVersion]:
        versions: list[ModelVersion] = []
        token: str | None = None
        while len(versions) < max_versions:
            query = {"filter": filter_string, "max_results": str(PAGE)}
            if token:
                query["page_token"] = token
            reply = self._get("model-versions/search", query) or {}
            versions += [parse_model_version(raw) for raw in reply.get("model_versions") or []]
            token = reply.get("next_page_token")
            if not token:
                break
        return versions

    def artifacts(self, run_id: str) -> list[str]:
        """Paths at the top of the run's artifacts."""
        reply = self._get("artifacts/list", {"run_id": run_id}) or {}
        return [str(item.get("path")) for item in reply.get("files") or [] if item.get("path")]


def quote(value: str) -> str:
    """``value`` inside single quotes of an MLflow filter; refuses what the filter grammar cannot hold."""
    if "'" in value or "\\" in value:
        raise ValueError(f"{value!r}: quotes and backslashes cannot be searched for in MLflow")
    return f"'{value}'"


def tag_equals(key: str, value: str) -> str:
    return f"tags.`{key}` = {quote(value)}"


# -- the cluster -----------------------------------------------------------------------------------


def connect_cluster(kubeconfig: str | None, context: str | None, timeout: float) -> tuple[ClusterReader, str]:
    """A reader of the kubeconfig's cluster (else the in-cluster service account), and the
    namespace kubectl would use by default."""
    from kubernetes import client, config

    try:
        configuration = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)
        if context:
            contexts, _ = config.list_kube_config_contexts(config_file=kubeconfig)
            active = next((c for c in contexts if c.get("name") == context), active)
        namespace = str(((active or {}).get("context") or {}).get("namespace") or "default")
    except (config.ConfigException, OSError, TypeError) as kube_error:
        if kubeconfig or context:
            raise SourceUnavailable(f"cannot load the kubeconfig: {kube_error}") from None
        try:
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            raise SourceUnavailable(
                "no cluster configured: no kubeconfig (KUBECONFIG, ~/.kube/config) and not in a pod"
            ) from None
        namespace = _SERVICE_ACCOUNT_NAMESPACE.read_text().strip() if _SERVICE_ACCOUNT_NAMESPACE.exists() else "default"
    # One retry: a dead API server must end the command in seconds.
    configuration.retries = 1
    return ClusterReader(client.ApiClient(configuration), timeout), namespace


class ClusterReader:
    """Reads FeatureStoreProjects, MaterializationJobs, Jobs and Pods as plain dicts.

    Plain GETs through the client's ApiClient: the generated API classes cost more than a
    second to import, longer than the reads themselves.
    """

    def __init__(self, api: Any, timeout: float = 10.0) -> None:
        self.api = api
        self.timeout = timeout
        self.server = str(getattr(api.configuration, "host", ""))

    def _get(self, path: str, **query: str) -> Obj | None:
        from kubernetes.client.exceptions import ApiException

        try:
            status, reason, data = self._request(path, query)
        except ApiException as error:
            status, reason, data = int(error.status or 0), str(error.reason), b""
        except Exception as error:  # urllib3 connection, TLS and timeout errors
            raise SourceUnavailable(f"the cluster at {self.server} is unreachable: {type(error).__name__}") from None
        if status == 404:
            return None
        if not 200 <= status < 300:
            raise SourceUnavailable(f"the cluster at {self.server} answered {status} {reason}".rstrip())
        return dict(json.loads(data))

    def _request(self, path: str, query: Mapping[str, str]) -> tuple[int, str, bytes]:
        headers = {"Accept": "application/json"}
        if hasattr(self.api, "param_serialize"):
            # The client generated since kubernetes 35: serialize, then send.
            method, url, headers, _, _ = self.api.param_serialize(
                "GET", path, query_params=list(query.items()), header_params=headers, auth_settings=["BearerToken"]
            )
            response = self.api.call_api(method, url, header_params=headers, _request_timeout=self.timeout)
            return int(response.status), str(response.reason), bytes(response.read())
        # Earlier clients send in call_api, and raise ApiException for an error status.
        reply = self.api.call_api(
            path,
            "GET",
            query_params=list(query.items()),
            header_params=headers,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=self.timeout,
        )
        response = reply[0] if isinstance(reply, tuple) else reply
        return int(response.status), str(response.reason), bytes(response.data)

    def _list(self, path: str, **query: str) -> list[Obj]:
        return list((self._get(path, **query) or {}).get("items") or [])

    def project(self, namespace: str, name: str) -> Obj | None:
        return self._get(_custom_path(namespace, FEATURE_STORE_PROJECT_PLURAL, name))

    def projects(self, namespace: str) -> list[Obj]:
        return self._list(_custom_path(namespace, FEATURE_STORE_PROJECT_PLURAL))

    def materialization_jobs(self, namespace: str) -> list[Obj]:
        return self._list(_custom_path(namespace, MATERIALIZATION_JOB_PLURAL))

    def apply_jobs(self, namespace: str, project: str) -> list[Obj]:
        selector = f"{labels.LABEL_PROJECT}={project},{labels.LABEL_OPERATION}=apply"
        return self._list(f"/apis/batch/v1/namespaces/{_segment(namespace)}/jobs", labelSelector=selector)

    def job(self, namespace: str, name: str) -> Obj | None:
        return self._get(f"/apis/batch/v1/namespaces/{_segment(namespace)}/jobs/{_segment(name)}")

    def pod(self, namespace: str, name: str) -> Obj | None:
        return self._get(f"/api/v1/namespaces/{_segment(namespace)}/pods/{_segment(name)}")


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _custom_path(namespace: str, plural: str, name: str | None = None) -> str:
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{_segment(namespace)}/{plural}"
    return f"{path}/{_segment(name)}" if name else path
