"""Kopf wiring: the leader's start and cleanup, and Kopf's run. The only module that imports Kopf;
decorators only, the work is elsewhere. Kopf watches no resource: projects, runs, ConfigMaps and
Jobs come from the operator's own list-watches (:mod:`.project_watch`, :mod:`.run_watch`)."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import threading
from typing import Any

import aiohttp
import kopf
from kopf._core.engines.peering import Identity  # not re-exported by kopf; the type of run(identity=)

from feast_lineage.api import FEATURE_STORE_PROJECT_KIND
from feast_lineage.controller import index_loader, list_watch
from feast_lineage.controller.audit_redelivery import AuditDeliveries
from feast_lineage.controller.health import Health
from feast_lineage.controller.indexes import Indexes
from feast_lineage.controller.kube import Kube
from feast_lineage.controller.locks import ObjectLocks
from feast_lineage.controller.materialization_reconciler import MaterializationReconciler
from feast_lineage.controller.project_cache import ProjectCache, SnapshotIndex
from feast_lineage.controller.project_reconciler import ProjectReconciler
from feast_lineage.controller.project_watch import ProjectWatch
from feast_lineage.controller.run_watch import RunWatch
from feast_lineage.controller.schedule_reconciler import ScheduleReconciler
from feast_lineage.controller.settings import ApiTimeouts, OperatorSettings
from feast_lineage.domain import labels
from feast_lineage.injection.service import InjectionService

REQUEST_CONNECTIONS = 16
"""Connections Kopf may hold. It watches no resource (projects, runs, ConfigMaps and Jobs are the
operator's own list-watches), so it holds no watch stream either."""


def _bounded_session(info: kopf.ConnectionInfo) -> kopf.AiohttpSession:
    """Kopf's own session, but with at most ``REQUEST_CONNECTIONS`` connections. Kopf's has no
    bound (when it handled projects, a start patched every project it found at once, on a connection
    each, and every TLS connection holds a 256 KiB read buffer). Requests beyond the bound wait for
    a free connection."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=REQUEST_CONNECTIONS, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        trust_env=info.trust_env,
    )
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        priority=info.priority,
        expiration=info.expiration,
        aiohttp_session=session,
    )


def _bound_requests(settings: kopf.OperatorSettings, timeouts: ApiTimeouts) -> None:
    """Kopf's requests bounded as the operator's own are. Kopf (1.45) bounds a request only in total
    (5 minutes by default, and it retries a timeout up to 8 times), a watch's connection by that same
    total, a watch stream not at all. Each watch asks the server to end it after ``watch_seconds``; a
    stream still open a little later is cut (Kopf also reconnects one silent for 70 s)."""
    settings.networking.connect_timeout = timeouts.connect_seconds
    settings.networking.request_timeout = timeouts.total_seconds
    settings.watching.server_timeout = timeouts.watch_seconds
    settings.watching.client_timeout = timeouts.watch_seconds + timeouts.watch_grace_seconds


def build_registry(
    operator: OperatorSettings, kube: Kube, injection: InjectionService | None, health: Health
) -> kopf.OperatorRegistry:
    """The leader's start and cleanup. The webhook (``injection``, already serving) and its project
    map are every replica's and live outside Kopf; the leader adds the pod monitor."""
    registry = kopf.OperatorRegistry()
    locks = ObjectLocks()
    projects = ProjectReconciler(kube, operator, locks)
    # What a run's pass reads of projects and their snapshots, from the watches below (project_cache).
    project_copies, snapshots = ProjectCache(), SnapshotIndex()
    runs = MaterializationReconciler(kube, operator, locks, project_copies, snapshots)
    schedules = ScheduleReconciler(kube, locks, operator.max_waiting_runs)
    audits = AuditDeliveries(kube, operator, locks)
    # The operator's own indexes, not Kopf's: Kopf would hold every handler until every listed
    # object is indexed, at a cost quadratic in the objects listed (benchmarks/kopf_index_gate.py).
    indexes = Indexes()
    index_checks = threading.Event()
    # Projects, runs and their Jobs on the operator's own list-watches and pass threads, not Kopf's
    # (see project_watch, run_watch).
    project_path = ProjectWatch(kube, operator, indexes, project_copies, projects, schedules, audits)
    run_path = RunWatch(kube, operator, indexes, runs, audits)

    # A registry of our own does not inherit Kopf's default login; use the kubernetes client's
    # credentials, in a session whose connections are bounded (see _bounded_session).
    @kopf.on.login(registry=registry)
    async def login(**kwargs: Any) -> kopf.AiohttpSession | None:
        info = kopf.login_via_client(**kwargs)
        return None if info is None else _bounded_session(info)

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Before any pass runs (the project and run paths start their watches at the end of this
        # handler): a run may start only next to the active runs it knows of. First, so that a
        # retried start repeats nothing else; filling again changes nothing.
        listed = await asyncio.to_thread(index_loader.fill, kube, indexes, operator.namespaces)
        logging.getLogger(__name__).info("indexed %d project(s) and %d run(s); labelled %d settled run(s)", *listed)
        index_loader.confirm_in_background(kube, indexes, operator.active_poll_seconds, index_checks)
        # ConfigMaps likewise: listed before the project watch lists projects, so a change after the
        # list comes by as an event and one before it is seen by the project's first pass.
        for watch in config_maps:
            await asyncio.to_thread(watch.relist)
        config_maps_listed.set()
        # Async: it runs on Kopf's event loop, which the health check then watches.
        settings.posting.enabled = False  # Events are written on transitions by the handlers themselves.
        _bound_requests(settings, operator.api_timeouts)
        settings.execution.max_workers = 8
        # Kopf watches nothing: no namespaces or CRDs to scan either (a namespaced install's RBAC has
        # neither, and Kopf would retry and log refusals for a minute before falling back).
        settings.scanning.disabled = True
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        health.watch_loop(asyncio.get_running_loop())
        if injection is not None:
            injection.start_monitor()
        project_path.start()
        run_path.start()
        for watch in config_maps:
            watch.start()

    @kopf.on.cleanup(registry=registry)
    def shutdown(**_: Any) -> None:
        if injection is not None:
            injection.begin_stop()  # the webhook's drain counts from here (it ends after the hand-over)
        index_checks.set()
        run_path.stop()
        project_path.stop()
        for watch in config_maps:
            watch.stop()
        audits.shutdown()
        projects.shutdown()

    # A ConfigMap a project references appears or changes: act now, not at the next resync. Every
    # ConfigMap of the cluster comes by, as metadata only (a change is all the operator needs of one;
    # the pass reads the content): the look-up runs on the watch's thread, the pass in the project
    # path's queue. The start's list only fills the snapshot index: it is taken before the project
    # watch lists projects, and every listed project passes it. After that, what a relist (the watch
    # expired) reports is new or changed in the gap: it counts as a change.
    # A ConfigMap the operator made for a project changed (or went): its next resync is a full pass.
    def config_map_changed(type: str | None, body: dict[str, Any]) -> None:
        namespace, name = list_watch.key_of(body)
        snapshots.observe(namespace, name, None if type == "DELETED" else body)
        if type is list_watch.LISTED and not config_maps_listed.is_set():
            return
        for project in indexes.projects_using(namespace, name):
            project_path.submit(namespace, project)
        owner = labels.controller_owner(body, FEATURE_STORE_PROJECT_KIND)
        if owner is not None:
            projects.unsettle(namespace, owner)

    config_maps_listed = threading.Event()  # set once the start's list is in
    config_maps = [
        list_watch.ListWatch(
            f"configmaps-{scope}" if scope else "configmaps",
            functools.partial(kube.core.list_config_map_metadata, scope),
            config_map_changed,
            timeouts=operator.api_timeouts,
        )
        for scope in list_watch.scopes(operator.namespaces)
    ]

    return registry


def configure_kopf_logging(log_json: bool) -> None:
    """Kopf's log handler on the root logger (the caller adjusts its format)."""
    kopf.configure(verbose=False, log_format=kopf.LogFormat.JSON if log_json else kopf.LogFormat.FULL)


def run_kopf(registry: kopf.OperatorRegistry, operator: OperatorSettings) -> None:
    """Run the handlers until the process is stopped. Standalone (no Kopf peering): which replica
    runs them is decided before, by the Lease. Kopf's default identity asks the password database for
    the user's name, which a container running as an arbitrary UID (the chart's 10001) has no entry
    for, so it is given one: the host (the pod's name) and the process."""
    kopf.run(
        registry=registry,
        standalone=True,
        identity=Identity(f"{socket.gethostname()}/{os.getpid()}"),
        clusterwide=not operator.namespaces,
        namespaces=operator.namespaces,
    )
