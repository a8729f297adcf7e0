"""The status page's HTTP side: routes on the health listener, or a listener of its own.

Routes (every answer carries :data:`~prober.access.SECURITY_HEADERS`, added by the
listener; all of them public when ``public = true``, internal otherwise):

* ``/`` — the HTML page; ``/status.css`` its stylesheet, ``/favicon.svg`` its icon; ``/incidents`` → ``/#incidents``
* ``/api/v1/status`` — the same view as JSON
* ``/feed.atom`` — the incidents as an Atom feed
* ``/badge/<site>/<kind>.svg`` — one SVG badge (404 for an unknown site × kind)
* ``/evidence/<site>/<check>/<file>`` — a failed browser run's screenshot or trace (internal view only)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aiohttp import web

from prober.access import AccessGate, serve_publicly
from prober.config.incidents import MaintenanceWindow
from prober.config.influxdb import InfluxDBConfig
from prober.config.statuspage import StatusPageConfig
from prober.incidents import IncidentStatus
from prober.listener import Listener
from prober.statuspage.badge import render_badge
from prober.statuspage.feed import render_feed
from prober.statuspage.history import DailyHistory, DayUptime
from prober.statuspage.influx import InfluxHistory
from prober.statuspage.page import render_page, stylesheet
from prober.statuspage.view import LatestRun, StatusView, build_view

log = logging.getLogger("prober.statuspage")

VIEW_TTL = 1.0
"""Seconds a built view (and what was rendered from it) serves every reader."""


FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<rect width="16" height="16" rx="3" fill="#1f2328"/>'
    '<path d="M3 11h2V7H3zm4 0h2V4H7zm4 0h2V8h-2z" fill="#fff"/></svg>'
)


class HistorySource(Protocol):
    """Where the daily uptime bars come from."""

    name: str

    async def daily(self, days: int) -> dict[tuple[str, str], list[DayUptime]]: ...


@dataclass(frozen=True, slots=True)
class PageSource:
    """What the status page reads of the running prober. The daemon builds it
    (:meth:`prober.daemon.service.ProberService.page_source`): the page imports nothing
    of the daemon. The callables are asked again for every view."""

    incidents: Callable[[], IncidentStatus]
    """Each site × capability's state and since when, the open and recent incidents."""
    runs: Callable[[], Iterable[LatestRun]]
    """The latest run of every configured check."""
    maintenance: Callable[[], Sequence[MaintenanceWindow]]
    """The announced maintenance windows (they follow a reload)."""
    local_history: DailyHistory
    """The prober's own daily uptime aggregate."""
    influxdb: InfluxDBConfig | None = None
    """Where the daily uptime is read first, as ``[status_page] history`` says."""
    evidence_file: Callable[[str, str, str], Path | None] = lambda site, check, name: None
    """``(site, check, file name)`` → that evidence file of a failed browser run, or None
    when there is none by that name."""


class LocalHistory:
    """The prober's own daily aggregate (:class:`~prober.statuspage.history.DailyHistory`)."""

    name = "the prober's local state"

    def __init__(self, history: DailyHistory) -> None:
        self.history = history

    async def daily(self, days: int) -> dict[tuple[str, str], list[DayUptime]]:
        return self.history.daily(days)


def history_source(source: PageSource, settings: StatusPageConfig) -> HistorySource:
    """The source ``[status_page] history`` names (InfluxDB only with an ``[influxdb]``)."""
    if settings.history != "local" and source.influxdb is not None:
        return InfluxHistory(source.influxdb, source.local_history)
    if settings.history == "influxdb":
        log.warning("[status_page] history = \"influxdb\" but there is no [influxdb] section: using the local history")
    return LocalHistory(source.local_history)


class StatusPage:
    """Renders the page and its twins from a :class:`PageSource`."""

    def __init__(self, source: PageSource, settings: StatusPageConfig, history: HistorySource | None = None) -> None:
        self.source = source
        self.settings = settings
        self.history = history or history_source(source, settings)
        self._view: tuple[float, StatusView] | None = None
        self._rendered: dict[str, bytes] = {}

    def add_routes(self, app: web.Application) -> None:
        """The page's routes: public with ``public = true`` (what a bank shows its
        customers), internal otherwise (the view holds the banks' error texts)."""
        routes = [
            app.router.add_get("/", self.page),
            app.router.add_get("/status.css", self.css),
            app.router.add_get("/favicon.svg", self.favicon),
            app.router.add_get("/incidents", self.incidents),
            app.router.add_get("/api/v1/status", self.api),
            app.router.add_get("/feed.atom", self.feed),
            app.router.add_get("/badge/{site}/{kind}.svg", self.badge),
        ]
        if self.settings.public:
            serve_publicly(app, *routes)
        else:  # evidence of failed browser runs: the internal view only, never on a public page
            app.router.add_get("/evidence/{site}/{check}/{name}", self.evidence)

    async def view(self) -> StatusView:
        """The view of the moment, built at most once every :data:`VIEW_TTL` seconds
        however many readers ask (rendering holds the event loop)."""
        now = time.monotonic()
        if self._view is not None and now - self._view[0] < VIEW_TTL:
            return self._view[1]
        view = await self._build()
        self._view = (now, view)
        self._rendered = {}
        return view

    async def _rendered_body(self, key: str, render: Callable[[StatusView], bytes]) -> bytes:
        view = await self.view()
        body = self._rendered.get(key)
        if body is None:
            body = self._rendered[key] = render(view)
        return body

    async def _build(self) -> StatusView:
        source = self.source
        return build_view(
            self.settings,
            incidents=source.incidents(),
            runs=source.runs(),
            maintenance=source.maintenance(),
            history=await self.history.daily(self.settings.history_days),
            history_source=self.history.name,
        )

    # ── handlers ───────────────────────────────────────────────────────────────────
    async def page(self, request: web.Request) -> web.Response:
        body = await self._rendered_body("page", lambda view: render_page(view).encode())
        response = web.Response(body=body, content_type="text/html", charset="utf-8")
        response.enable_compression()
        return response

    async def css(self, request: web.Request) -> web.Response:
        body = stylesheet(self.settings.history_days)
        return web.Response(body=body, content_type="text/css", charset="utf-8")

    async def favicon(self, request: web.Request) -> web.Response:
        return web.Response(text=FAVICON, content_type="image/svg+xml")

    async def incidents(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/#incidents")

    async def api(self, request: web.Request) -> web.Response:
        body = await self._rendered_body("json", lambda view: json.dumps(view.to_json()).encode())
        response = web.Response(body=body, content_type="application/json")
        response.enable_compression()
        return response

    async def feed(self, request: web.Request) -> web.Response:
        base = self.settings.base_url or f"{request.scheme}://{request.host}/"
        if not base.endswith("/"):
            base += "/"
        body = await self._rendered_body("feed " + base, lambda view: render_feed(view, base))
        response = web.Response(body=body, content_type="application/atom+xml", charset="utf-8")
        response.enable_compression()
        return response

    async def evidence(self, request: web.Request) -> web.StreamResponse:
        """A screenshot or trace of a failed browser run (internal view only), by the name
        the runner gave it (:attr:`PageSource.evidence_file` finds it)."""
        site, check, name = (request.match_info[k] for k in ("site", "check", "name"))
        path = None if self.settings.public else self.source.evidence_file(site, check, name)
        if path is None:
            raise web.HTTPNotFound(text="no such evidence")
        kind = "image/png" if name.endswith(".png") else "application/zip"
        disposition = "inline" if kind == "image/png" else "attachment"
        headers = {"Content-Disposition": f'{disposition}; filename="{name}"', "Content-Type": kind}
        return web.FileResponse(path, headers=headers)

    async def badge(self, request: web.Request) -> web.Response:
        site, kind = request.match_info["site"], request.match_info["kind"]
        cell = (await self.view()).cell(site, kind)
        if cell is None:
            raise web.HTTPNotFound(text="no such site and capability")
        headers = {"Cross-Origin-Resource-Policy": "cross-origin"}  # other sites may show it
        return web.Response(text=render_badge(site, kind, cell.state), content_type="image/svg+xml", headers=headers)


class StatusPageServer(Listener):
    """The status page on a listener of its own (``[status_page] listen``): nothing
    else is served there (no ``/status``, no ``/healthz``)."""

    what = "status page"

    def __init__(self, page: StatusPage, host: str, port: int, gate: AccessGate | None = None) -> None:
        super().__init__(host, port, gate)
        self.page = page

    def routes(self, app: web.Application) -> None:
        self.page.add_routes(app)
