"""A TCP proxy in front of the API server that can stop answering: connections are accepted and
requests passed on, but while it is stalled nothing the server sends reaches the client - an API
server (or a load balancer in front of it) that took the connection and went silent."""

from __future__ import annotations

import asyncio
import contextlib
import threading


class StallingProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream``; :meth:`stall` holds the server's bytes back (TLS
    handshakes of new connections included) until :meth:`resume`. Runs its own event loop in a thread."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._forwarding = asyncio.Event()
        self._ready = threading.Event()
        self._stopped: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=self._run, name="stalling-proxy", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the proxy did not start listening")

    def stall(self) -> None:
        self._loop.call_soon_threadsafe(self._forwarding.clear)

    def resume(self) -> None:
        self._loop.call_soon_threadsafe(self._forwarding.set)

    def stop(self) -> None:
        if self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set_result, None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._forwarding.set()
        self._stopped = self._loop.create_future()
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stopped
        # Connections still open (held ones too) are closed while the loop still runs.
        pipes = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pipes:
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)

    async def _connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            self._pipe(client_reader, upstream_writer, gated=False),
            self._pipe(upstream_reader, client_writer, gated=True),
        )

    async def _pipe(self, source: asyncio.StreamReader, target: asyncio.StreamWriter, gated: bool) -> None:
        try:
            while data := await source.read(65536):
                if gated:
                    await self._forwarding.wait()  # stalled: the client hears nothing, the connection stays open
                target.write(data)
                await target.drain()
        except OSError:
            pass  # either side went away (a client that gave up waiting); the other is closed below
        finally:
            with contextlib.suppress(OSError):
                target.close()
