"""The HTTPS server the API server calls for admission, in a thread and event loop of its own.

Its own loop keeps admission latency independent of the operator's watch traffic. The
certificate is read at start and re-read every ``refresh_seconds``: a renewed one is loaded
into the same SSL context, so new connections use it without a restart.

Stopping drains. The API server reaches a webhook Service through pooled keep-alive connections,
pooled by the Service's name: it picks an endpoint only when it opens a connection, and goes on
sending reviews over the connections it has to a replica that is being deleted. It opens new ones
to that replica too until its endpoint is gone. A replica that simply stopped would cut reviews under
way, and reset connections the API server is writing a review into (the API server does not retry a
review). So a stopping server:

- keeps answering for the drain period, on every connection, old and new;
- answers each review with ``Connection: close`` and closes the connection after it, so the API
  server opens a new one, to a replica still in the endpoints, and stops reusing this one;
- then stops listening, lets the reviews under way finish, and closes what is left (idle
  connections), each with a proper close;

and only then lets the process end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from feast_lineage.injection.tls import CertificateSource, ServingMaterial, write_key_pair

log = logging.getLogger(__name__)

Review = Callable[[dict[str, Any]], dict[str, Any]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_REVIEW_BYTES = 3 * 1024 * 1024
"""An AdmissionReview of a pod is far smaller; the API server caps requests near this size."""
FINISH_SECONDS = 10.0
"""How long a stop waits for the reviews under way: as long as a review's own requests may take."""


class WebhookServer:
    """Serves ``POST /<path>`` AdmissionReviews and ``GET /healthz`` over TLS."""

    def __init__(
        self,
        host: str,
        port: int,
        certificates: CertificateSource,
        routes: dict[str, Review],
        on_material: Callable[[ServingMaterial], None] | None = None,
        refresh_seconds: float = 300.0,
        inline: frozenset[str] = frozenset(),
    ) -> None:
        self.host = host
        self.port = port
        self.certificates = certificates
        self.routes = routes
        self.inline = inline
        """Paths whose review makes no request (pure and quick): answered on the event loop itself."""
        self.on_material = on_material
        self.refresh_seconds = refresh_seconds
        self._material: ServingMaterial | None = None
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._loop = asyncio.new_event_loop()
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="admission")
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="injection-webhook", daemon=True)
        self._runner: web.AppRunner | None = None
        self._cleanup: asyncio.Future[None] | None = None
        """The runner's one cleanup, whoever asks for it first (a stop, or the thread ending)."""
        self._stop_lock = threading.Lock()
        """One stop at a time: a second waits for the first, then finds nothing left to do."""
        self._began_lock = threading.Lock()
        self._stop_began: float | None = None
        """When the stop began (time.monotonic): every answer from then on closes its connection."""

    def start(self, timeout: float = 30.0) -> None:
        self._load()  # fails here, loudly, when there is no usable certificate
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("webhook server did not start")
        if self._failure is not None:
            raise RuntimeError(f"webhook server failed to start: {self._failure}") from self._failure
        log.info("injection webhook serving on https://%s:%d", self.host, self.port)

    def serving(self) -> bool:
        return self._started.is_set() and self._failure is None and self._thread.is_alive()

    def begin_stop(self) -> None:
        """From now on, close each connection after its answer; the drain period counts from the
        first call. Called as soon as the process learns it is stopping: a leader hands reconciling
        over before it stops the webhook, and that time counts towards the drain."""
        with self._began_lock:
            if self._stop_began is None:
                self._stop_began = time.monotonic()

    def stop(self, drain_seconds: float = 0.0) -> None:
        """Serve on until ``drain_seconds`` after the stop began, then stop listening, finish the
        reviews under way (for at most ``FINISH_SECONDS``), close every connection and end the
        server's thread. A second call, at once or later, returns when the first is done."""
        self.begin_stop()
        with self._stop_lock:
            assert self._stop_began is not None
            if not self._thread.is_alive() or not self._loop.is_running():
                return
            left = self._stop_began + drain_seconds - time.monotonic()
            if left > 0:
                log.info("webhook answering for %.1fs more while the API server stops calling this replica", left)
                self._thread.join(left)  # a timed wait: the thread only ends on its own if its loop failed
            if not self._thread.is_alive():
                return
            closing = asyncio.run_coroutine_threadsafe(self._close(), self._loop)
            try:
                closing.result(FINISH_SECONDS + 5.0)
            except Exception as error:  # ending anyway: the process is stopping
                log.warning("webhook server did not close cleanly: %s", error)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(FINISH_SECONDS + 5.0)  # the thread's own end awaits the same cleanup

    async def _close(self) -> None:
        if self._cleanup is None and self._runner is not None:
            self._cleanup = asyncio.ensure_future(self._runner.cleanup())
        if self._cleanup is not None:
            await asyncio.shield(self._cleanup)

    @web.middleware
    async def _closing_when_stopping(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every answer of a stopping server closes its connection: aiohttp's own (404, 405, 413)
        as well as the reviews'."""
        try:
            response = await handler(request)
        except web.HTTPException as error:
            if self._stop_began is not None:
                error.force_close()
            raise
        if self._stop_began is not None:
            response.force_close()
        return response

    def _load(self) -> None:
        material = self.certificates.load()
        if material != self._material:
            cert_path, key_path = write_key_pair(material)
            self._context.load_cert_chain(cert_path, key_path)
            self._material = material
            log.info("webhook serving certificate loaded")
        if self.on_material is not None:
            self.on_material(material)

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await self._loop.run_in_executor(None, self._load)
            except Exception as error:  # keep serving with the certificate already loaded
                log.warning("could not refresh the webhook certificate: %s", error)

    async def _handle(self, request: web.Request) -> web.Response:
        review_of = self.routes.get(request.path)
        if review_of is None:
            return web.Response(status=404, text="no such webhook")
        if (request.content_length or 0) > MAX_REVIEW_BYTES:
            return web.Response(status=413, text="AdmissionReview too large")
        try:
            review = json.loads(await request.read())
        except ValueError:
            return web.Response(status=400, text="not JSON")
        if not isinstance(review, dict):
            return web.Response(status=400, text="not an AdmissionReview")
        try:
            if request.path in self.inline:
                # Handing it to a thread and back would cost more CPU than the review itself.
                answer = review_of(review)
            else:
                # Off the event loop: a review may ask the API server (SubjectAccessReviews).
                answer = await asyncio.get_running_loop().run_in_executor(self._executor, review_of, review)
        except Exception:
            # A 500: the API server applies the configuration's failurePolicy (Ignore for pods,
            # Fail for the resources whose privileges the validating webhook guards).
            log.exception("admission review failed")
            return web.Response(status=500, text="admission review failed")
        return web.json_response(answer)

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=MAX_REVIEW_BYTES, middlewares=[self._closing_when_stopping])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_post("/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=FINISH_SECONDS)
        self._runner = runner
        try:
            self._loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.host, self.port, ssl_context=self._context, reuse_address=True)
            self._loop.run_until_complete(site.start())
        except BaseException as error:
            self._failure = error
            self._started.set()
            return
        refresher = self._loop.create_task(self._refresh())
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            refresher.cancel()
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(self._close())
