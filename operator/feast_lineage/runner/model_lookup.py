"""Registered model versions that use given feature services, read from MLflow within bounds.

Two calls per service at most (``model-versions/search`` by tag, one page) and one ``runs/get``
per distinct training run, all under one client deadline: a slow MLflow makes the list
incomplete (the reason is reported), never the apply endless.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from feast_lineage.audit import tags
from feast_lineage.audit.errors import DeliveryError, MlflowApiError
from feast_lineage.audit.mlflow_rest import MlflowRestClient
from feast_lineage.runner.impact import FoundVersion

MAX_SERVICES = 50
"""Feature services looked up; beyond this the analysis reports itself incomplete."""
MAX_VERSIONS_PER_SERVICE = 200
MAX_RUN_LOOKUPS = 200


def find_versions(client: MlflowRestClient, services: Collection[str]) -> tuple[list[FoundVersion], str | None]:
    """Model versions tagged with one of ``services``, each with its training run's tags; and why the
    list is incomplete, if it is."""
    problems: list[str] = []
    raw_versions: list[tuple[str, dict[str, Any]]] = []
    wanted = sorted(services)
    if len(wanted) > MAX_SERVICES:
        problems.append(f"only {MAX_SERVICES} of {len(wanted)} feature services were looked up")
        wanted = wanted[:MAX_SERVICES]
    run_tags: dict[str, dict[str, str] | None] = {}
    try:
        for service in wanted:
            if "'" in service or "\\" in service:
                problems.append(f"feature service {service!r} cannot be searched for in MLflow")
                continue
            reply = client.get(
                "model-versions/search",
                {
                    "filter": f"tags.`{tags.FEATURE_SERVICE}` = '{service}'",
                    "max_results": str(MAX_VERSIONS_PER_SERVICE),
                },
            )
            if reply.get("next_page_token"):
                problems.append(f"only {MAX_VERSIONS_PER_SERVICE} versions of {service} were read")
            raw_versions += [(service, raw) for raw in reply.get("model_versions") or []]
        run_ids = sorted({str(raw.get("run_id")) for _, raw in raw_versions if raw.get("run_id")})
        if len(run_ids) > MAX_RUN_LOOKUPS:
            problems.append(f"only {MAX_RUN_LOOKUPS} of {len(run_ids)} training runs were read")
        for run_id in run_ids[:MAX_RUN_LOOKUPS]:
            run_tags[run_id] = _run_tags(client, run_id)
    except DeliveryError as error:
        problems.append(f"model versions could not be read from MLflow: {error}")
    found = [
        FoundVersion(
            name=str(raw.get("name", "")),
            version=str(raw.get("version", "")),
            feature_service=service,
            run_tags=run_tags.get(str(raw.get("run_id"))),
        )
        for service, raw in raw_versions
    ]
    return found, "; ".join(problems) or None


def _run_tags(client: MlflowRestClient, run_id: str) -> dict[str, str] | None:
    try:
        reply = client.get("runs/get", {"run_id": run_id})
    except MlflowApiError as error:
        if error.status == 404 or error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None  # a version whose run was deleted cannot be placed in a namespace
        raise
    raw_tags = ((reply.get("run") or {}).get("data") or {}).get("tags") or []
    return {str(tag.get("key")): str(tag.get("value", "")) for tag in raw_tags if tag.get("key")}
