"""Start the operator: Kopf with this project's handlers, cluster-wide or in a list of namespaces."""

from __future__ import annotations

import logging

import kopf

from feast_lineage.controller.logs import LoggerNameField, TextFormatter
from feast_lineage.controller.settings import OperatorSettings
from feast_lineage.controller.wiring import build_registry


def configure_logging(log_json: bool) -> None:
    """Kopf's log handler on the root logger, with the object and logger name on every line."""
    kopf.configure(verbose=False, log_format=kopf.LogFormat.JSON if log_json else kopf.LogFormat.FULL)
    handler = logging.getLogger().handlers[-1]  # the one Kopf just added
    if log_json:
        handler.addFilter(LoggerNameField())
    else:
        handler.setFormatter(TextFormatter())
    logging.getLogger("feast_lineage").setLevel(logging.INFO)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # else a line per liveness probe


def run_operator(settings: OperatorSettings, log_json: bool = False, liveness_port: int = 0) -> None:
    configure_logging(log_json)
    registry = build_registry(settings)
    kopf.run(
        registry=registry,
        standalone=True,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=f"http://0.0.0.0:{liveness_port}/healthz" if liveness_port else None,
    )
