"""Kopf's API session: the kubernetes client's credentials, and a bound on its connections."""

from __future__ import annotations

import asyncio

import kopf

from feast_lineage.controller.wiring import REQUEST_CONNECTIONS, _bounded_session


def test_connections_are_bounded_to_a_few_requests() -> None:
    info = kopf.ConnectionInfo(server="https://127.0.0.1:6443", scheme="Bearer", token="t", insecure=True)

    async def made() -> tuple[int, str, str]:
        session = _bounded_session(info)
        try:
            connector = session.aiohttp_session.connector
            assert connector is not None
            return connector.limit, session.server, session.aiohttp_session.headers["Authorization"]
        finally:
            await session.aiohttp_session.close()

    assert asyncio.run(made()) == (REQUEST_CONNECTIONS, "https://127.0.0.1:6443", "Bearer t")
