"""``/healthz`` for the liveness, readiness and startup probes, on the leader and the replicas that wait.

Kopf's own endpoint exists only while Kopf runs, which is on the leader alone; a replica that waits
for the Lease is healthy too (it serves admission), and kubelet must not restart it for waiting.
Healthy: the leader election still runs, and - once this replica leads - Kopf's event loop answers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOOP_ANSWER_SECONDS = 5.0


class Health:
    def __init__(self) -> None:
        self.checks: list[tuple[str, Callable[[], bool]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ThreadingHTTPServer | None = None

    def add(self, what: str, check: Callable[[], bool]) -> None:
        self.checks.append((what, check))

    def watch_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Kopf's loop, from its startup handler: from then on it must answer within seconds."""
        self._loop = loop
        self.add("Kopf's event loop answers", self._loop_answers)

    def _loop_answers(self) -> bool:
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(LOOP_ANSWER_SECONDS)
        except Exception:
            return False
        return True

    def failing(self) -> list[str]:
        return [what for what, check in list(self.checks) if not check()]

    def serve(self, port: int, host: str = "0.0.0.0") -> None:
        health = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/healthz":
                    self.send_error(404)
                    return
                failing = health.failing()
                body = ("ok" if not failing else "failing: " + "; ".join(failing)).encode()
                self.send_response(200 if not failing else 500)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # a line per probe says nothing

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="healthz", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
