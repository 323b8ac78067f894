"""Start the operator: admission and health on every replica, Kopf's handlers on the leader only.

Every replica serves ``/healthz``, ``/metrics`` and the admission webhooks (from its own project
map). With leader election, a replica then waits for the Lease and runs Kopf once it holds it; it
hands the Lease back when stopped, and ends at once - exit status 1, to be restarted as a replica
that waits - when it can no longer renew it, so two replicas never reconcile at the same time.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

from feast_lineage.controller import metrics
from feast_lineage.controller.health import Health
from feast_lineage.controller.kube import Kube, new_api_client
from feast_lineage.controller.leadership import Leadership
from feast_lineage.controller.logs import LoggerNameField, TextFormatter
from feast_lineage.controller.settings import OperatorSettings
from feast_lineage.controller.wiring import build_registry, configure_kopf_logging, run_kopf
from feast_lineage.injection.service import InjectionService
from feast_lineage.injection.targets import InjectionTargets
from feast_lineage.redaction import install_log_redaction

log = logging.getLogger(__name__)


def configure_logging(log_json: bool, level: str = "info") -> None:
    """Kopf's log handler on the root logger, with the object and logger name on every line; every
    record redacted of the secret values the operator knows, before any handler sees it. ``level``
    is the operator's own lines' (Kopf's and the libraries' stay as they are)."""
    install_log_redaction()
    configure_kopf_logging(log_json)
    handler = logging.getLogger().handlers[-1]  # the one Kopf just added
    if log_json:
        handler.addFilter(LoggerNameField())
    else:
        handler.setFormatter(TextFormatter())
    logging.getLogger("feast_lineage").setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # else a line per liveness probe


def _lost(why: str) -> None:
    # Not a graceful stop: handlers under way could still create a Job the new leader creates too.
    log.critical("no longer the leader (%s): exiting", why)
    logging.shutdown()
    sys.stdout.flush()
    os._exit(1)


def _stop_on_signals() -> threading.Event:
    """SIGTERM/SIGINT while waiting for the Lease (Kopf installs its own once it runs)."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)
    return stop


def run_operator(
    settings: OperatorSettings, log_json: bool = False, liveness_port: int = 0, log_level: str = "info"
) -> None:
    configure_logging(log_json, log_level)
    stop = _stop_on_signals()
    kube = Kube(new_api_client(settings.api_timeouts))
    health = Health()
    metrics.serve(settings.metrics_port)
    injection = InjectionService(kube, settings, InjectionTargets()) if settings.webhook is not None else None
    if injection is not None:
        health.add("the webhook serves", injection.server.serving)
    leadership = None
    if settings.leader_election is not None:
        leadership = Leadership(kube.api, settings.leader_election, _lost)
        health.add("the leader election runs", leadership.alive)
    if liveness_port:
        health.serve(liveness_port)
    try:
        if injection is not None:
            injection.start()
        if leadership is None:
            metrics.set_leader(True)
        else:
            leadership.start()
            if not leadership.wait(stop):
                return
        run_kopf(build_registry(settings, kube, injection, health), settings)
    finally:
        _stop_on_signals()  # Kopf's loop has put back the default handlers: a second signal waits too
        try:
            if leadership is not None:
                leadership.release()
        finally:
            if injection is not None:
                injection.stop()  # drains: see injection/server.py
            health.stop()
