"""Start the operator: Kopf with this project's handlers, cluster-wide or in a list of namespaces."""

from __future__ import annotations

import logging

from feast_lineage.controller.logs import LoggerNameField, TextFormatter
from feast_lineage.controller.settings import OperatorSettings
from feast_lineage.controller.wiring import build_registry, configure_kopf_logging, run_kopf
from feast_lineage.redaction import install_log_redaction


def configure_logging(log_json: bool) -> None:
    """Kopf's log handler on the root logger, with the object and logger name on every line; every
    record redacted of the secret values the operator knows, before any handler sees it."""
    install_log_redaction()
    configure_kopf_logging(log_json)
    handler = logging.getLogger().handlers[-1]  # the one Kopf just added
    if log_json:
        handler.addFilter(LoggerNameField())
    else:
        handler.setFormatter(TextFormatter())
    logging.getLogger("feast_lineage").setLevel(logging.INFO)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # else a line per liveness probe


def run_operator(settings: OperatorSettings, log_json: bool = False, liveness_port: int = 0) -> None:
    configure_logging(log_json)
    run_kopf(build_registry(settings), settings, liveness_port)
