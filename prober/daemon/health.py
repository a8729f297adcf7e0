"""The health server: ``GET /healthz`` and ``GET /status`` (aiohttp, on ``health_listen``).

* ``/healthz`` → 200 ``{"status": "ok"}`` while the scheduler runs; 503
  ``{"status": "stopping"}`` (or ``starting``) otherwise — what a load balancer, Docker's
  HEALTHCHECK or a Kubernetes probe asks. It is the one public route (no credential:
  liveness must need no secret) and says nothing more.
* ``/status`` → per site × capability its state (ok / degraded / outage) and since
  when, the open and recently resolved incidents (failing step, outcome, short error),
  the notifiers' counters (sent, failed, dropped, pending, silenced), the latest result
  of every site × check (outcome, success, duration_ms, failed_step, error, time,
  consecutive failures), scheduler figures (schedule lag p50/p99, overlaps), each site's
  lockout state (ok / backing_off / credentials_refused, since, until, auth failure rate,
  skipped checks) and writer counters. Results are redacted already; no
  URL, credential or token is part of the document. One rendering serves every reader
  for :data:`STATUS_TTL` (it holds the event loop: about 5 ms at 300 checks), so
  however many clients ask, the probes lose at most that much time a second.
* ``/metrics`` → the same state in the Prometheus exposition format
  (:mod:`prober.daemon.metrics`); an internal route, like ``/status``.

With ``--workers N`` each worker serves these on its own port, and the supervisor
answers ``/healthz`` and ``/status`` for all of them on ``health_listen``
(:mod:`prober.daemon.workers`); not ``/metrics``: each worker is a scrape target.

With a :class:`~prober.statuspage.StatusPage` (``[status_page]`` without a ``listen``
of its own), the same listener serves the status page (``/``, ``/api/v1/status``,
``/feed.atom``, ``/badge/…``), public or internal as the page is.

Every other route is internal (:mod:`prober.access`): a route added here is protected
by ``[access]`` without anything more to do.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from aiohttp import web

from prober.access import AccessGate, serve_publicly
from prober.daemon.metrics import MetricsEndpoint
from prober.listener import Listener

if TYPE_CHECKING:
    from prober.daemon.service import ProberService
    from prober.statuspage import StatusPage

STATUS_TTL = 1.0
"""Seconds one rendering of ``/status`` serves every reader."""


class HealthServer(Listener):
    """Serves ``/healthz`` and ``/status`` for a :class:`ProberService` (and the status
    page, when given one)."""

    what = "health server (/healthz, /status, /metrics)"

    def __init__(self, service: ProberService, host: str, port: int, page: StatusPage | None = None,
                 gate: AccessGate | None = None) -> None:
        super().__init__(host, port, gate)
        self.service = service
        self.page = page
        self.metrics = MetricsEndpoint(service)
        self._status: tuple[float, bytes] | None = None
        if page is not None:
            self.what = "health server (/healthz, /status, /metrics, the status page at /)"

    def routes(self, app: web.Application) -> None:
        serve_publicly(app, app.router.add_get("/healthz", self.healthz))
        app.router.add_get("/status", self.status)
        app.router.add_get("/metrics", self.metrics.handle)
        if self.page is not None:
            self.page.add_routes(app)

    async def healthz(self, request: web.Request) -> web.Response:
        state = self.service.state
        if state == "running" and self.service.scheduler.scheduling:
            return web.json_response({"status": "ok"})
        return web.json_response({"status": "starting" if state == "created" else state}, status=503)

    async def status(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        if self._status is None or now - self._status[0] >= STATUS_TTL:
            self._status = (now, json.dumps(self.service.status_document()).encode())
        return web.Response(body=self._status[1], content_type="application/json")
