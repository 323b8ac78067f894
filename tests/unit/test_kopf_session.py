"""Kopf's API session: the kubernetes client's credentials, and a bound on its connections."""

from __future__ import annotations

import asyncio

import kopf

from feast_lineage.controller.settings import OperatorSettings
from feast_lineage.controller.wiring import REQUEST_CONNECTIONS, _bounded_session, _watch_streams


def test_connections_are_bounded_to_the_watch_streams_and_a_few_requests() -> None:
    info = kopf.ConnectionInfo(server="https://127.0.0.1:6443", scheme="Bearer", token="t", insecure=True)

    async def made() -> tuple[int, str, str]:
        session = _bounded_session(info, streams=6)
        try:
            connector = session.aiohttp_session.connector
            assert connector is not None
            return connector.limit, session.server, session.aiohttp_session.headers["Authorization"]
        finally:
            await session.aiohttp_session.close()

    assert asyncio.run(made()) == (6 + REQUEST_CONNECTIONS, "https://127.0.0.1:6443", "Bearer t")


def test_each_watched_namespace_has_a_stream_per_resource() -> None:
    assert _watch_streams(OperatorSettings(namespaces=["a", "b"])) == 2  # apply Jobs (the rest: not Kopf)
    assert _watch_streams(OperatorSettings()) == 3  # the whole cluster, and Kopf's scans
