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
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from prober.access import AccessGate, serve_publicly
from prober.config.statuspage import StatusPageConfig
from prober.journey.browser.evidence import EVIDENCE_NAME, EvidenceStore
from prober.listener import Listener
from prober.statuspage.badge import render_badge
from prober.statuspage.feed import render_feed
from prober.statuspage.history import DayUptime
from prober.statuspage.influx import InfluxHistory
from prober.statuspage.page import render_page, stylesheet
from prober.statuspage.view import StatusView, build_view

if TYPE_CHECKING:
    from prober.daemon.service import ProberService

log = logging.getLogger("prober.statuspage")

VIEW_TTL = 1.0
"""Seconds a built view (and what was rendered from it) serves every reader."""


FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<rect width="16" height="16" rx="3" fill="#1f2328"/><path d="M3 11h2V7H3zm4 0h2V4H7zm4 0h2V8h-2z" fill="#fff"/></svg>'
)


class HistorySource(Protocol):
    """Where the daily uptime bars come from."""

    name: str

    async def daily(self, days: int) -> dict[tuple[str, str], list[DayUptime]]: ...


class LocalHistory:
    """The prober's own daily aggregate (:class:`~prober.statuspage.history.DailyHistory`)."""

    name = "the prober's local state"

    def __init__(self, service: ProberService) -> None:
        self.service = service

    async def daily(self, days: int) -> dict[tuple[str, str], list[DayUptime]]:
        return self.service.history.daily(days)


def history_source(service: ProberService, settings: StatusPageConfig) -> HistorySource:
    """The source ``[status_page] history`` names (InfluxDB only with an ``[influxdb]``)."""
    influxdb = service.loaded.config.influxdb
    if settings.history != "local" and influxdb is not None:
        return InfluxHistory(influxdb, service.history)
    if settings.history == "influxdb":
        log.warning("[status_page] history = \"influxdb\" but there is no [influxdb] section: using the local history")
    return LocalHistory(service)


class StatusPage:
    """Renders the page and its twins for a :class:`ProberService`."""

    def __init__(self, service: ProberService, settings: StatusPageConfig, history: HistorySource | None = None) -> None:
        self.service = service
        self.settings = settings
        self.history = history or history_source(service, settings)
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
        service = self.service
        settings = self.settings
        return build_view(
            incidents=service.incidents.status(),
            checks=list(service.status.checks.values()),
            maintenance=service.loaded.config.incidents.maintenance,
            history=await self.history.daily(settings.history_days),
            history_days=settings.history_days,
            history_source=self.history.name,
            title=settings.title,
            public=settings.public,
            refresh_s=settings.refresh,
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
        """A screenshot or trace of a failed browser run (internal view only): the files
        of ``state_dir/evidence/<site>/<check>/``, by their names as the runner writes them."""
        site, check, name = (request.match_info[k] for k in ("site", "check", "name"))
        store = EvidenceStore(Path(self.service.loaded.config.daemon.state_dir) / "evidence")
        path = store.directory(site, check) / name
        if self.settings.public or not EVIDENCE_NAME.match(name) or not path.is_file():
            raise web.HTTPNotFound(text="no such evidence", headers=SECURITY_HEADERS)
        kind = "image/png" if name.endswith(".png") else "application/zip"
        headers = {**SECURITY_HEADERS, "Content-Disposition": f'{"inline" if kind == "image/png" else "attachment"}; '
                                                               f'filename="{name}"', "Content-Type": kind}
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
