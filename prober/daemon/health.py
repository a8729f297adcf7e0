"""The health server: ``GET /healthz`` and ``GET /status`` (aiohttp, on ``health_listen``).

* ``/healthz`` → 200 ``{"status": "ok"}`` while the scheduler runs; 503
  ``{"status": "stopping"}`` (or ``starting``) otherwise — what a load balancer, Docker's
  HEALTHCHECK or a Kubernetes probe asks.
* ``/status`` → per site × capability its state (ok / degraded / outage) and since
  when, the open and recently resolved incidents (failing step, outcome, short error),
  the notifiers' counters (sent, failed, dropped, pending, silenced), the latest result
  of every site × check (outcome, success, duration_ms, failed_step, error, time,
  consecutive failures), scheduler figures (schedule lag p50/p99, overlaps), lockouts
  and writer counters. Results are redacted already; no
  URL, credential or token is part of the document.

With a :class:`~prober.statuspage.StatusPage` (``[status_page]`` without a ``listen``
of its own), the same listener serves the status page (``/``, ``/api/v1/status``,
``/feed.atom``, ``/badge/…``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from prober.daemon.service import ProberService
    from prober.statuspage import StatusPage

log = logging.getLogger("prober.daemon.health")


class HealthServer:
    """Serves ``/healthz`` and ``/status`` for a :class:`ProberService`."""

    def __init__(self, service: ProberService, host: str, port: int, page: StatusPage | None = None) -> None:
        self.service = service
        self.page = page
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and serve; raises ``OSError`` when the address cannot be bound."""
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/status", self.status)
        if self.page is not None:
            self.page.add_routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        log.info("health server on %s (/healthz, /status%s)", self.url, ", status page at /" if self.page else "")

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def healthz(self, request: web.Request) -> web.Response:
        state = self.service.state
        if state == "running" and self.service.scheduler.scheduling:
            return web.json_response({"status": "ok"})
        return web.json_response({"status": "starting" if state == "created" else state}, status=503)

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(self.service.status_document())
