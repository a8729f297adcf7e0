"""An aiohttp application on one ``HOST:PORT``: what the health server, the status page's
own listener and the supervisor's health server share (bind, the real port when 0 was
asked, TLS, limits on requests, who may see what, stop). The address is logged by the
subclass's module logger.

Every listener goes through an :class:`~prober.access.AccessGate`: a route is internal
(credentials when configured, a rate limit per client) unless the subclass registered it
with :func:`~prober.access.serve_publicly`; a listener that would serve internal routes
beyond loopback without authentication refuses to start (:class:`~prober.access.UnsafeListener`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TypedDict

from aiohttp import web

from prober.access import AccessGate
from prober.access.tls import ServerCertificate

MAX_REQUEST_BODY = 64 * 1024
"""Bytes of a request body at most: every route is a GET, none reads one."""
class ServerLimits(TypedDict):
    """aiohttp's server settings of what a request may be (their names in ``AppRunner``)."""

    max_line_size: int
    max_field_size: int
    max_headers: int
    keepalive_timeout: float


SERVER_LIMITS: ServerLimits = {
    "max_line_size": 8190,     # the request line, and each header line
    "max_field_size": 8190,    # one header's value (a long bearer token fits)
    "max_headers": 64,         # a browser sends about 20
    "keepalive_timeout": 75.0,  # an idle kept-alive connection is closed after this (seconds)
}
"""What aiohttp's server accepts of a request; more is answered 400 or 431 and the
connection closed, before any route runs."""


class Listener:
    """Serves the routes :meth:`routes` adds, on ``host:port`` (port 0: a free one)."""

    what = "listener"
    """How the log line announcing the address names it."""

    def __init__(self, host: str, port: int, gate: AccessGate | None = None) -> None:
        self.host = host
        self.port = port
        self._own_gate = gate is None
        self.gate = gate or AccessGate()
        """The rules of who may see what (by default: none configured, loopback only)."""
        self._runner: web.AppRunner | None = None
        self._watch: asyncio.Task[None] | None = None
        self.certificate: ServerCertificate | None = None

    @property
    def url(self) -> str:
        """``http(s)://host:port``, without a trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.gate.tls is not None else 'http'}://{host}:{self.port}"

    @property
    def app(self) -> web.Application | None:
        """The application being served (None before :meth:`start`)."""
        return None if self._runner is None else self._runner.app

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        """Bind and serve; raises ``OSError`` when the address cannot be bound, or
        :class:`~prober.access.UnsafeListener` (an ``OSError``) when it may not be."""
        app = web.Application(client_max_size=MAX_REQUEST_BODY, middlewares=[self.gate.middleware])
        self.routes(app)
        self.gate.check_exposure(self.host, app)
        certificate = self.gate.certificate()
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5, **SERVER_LIMITS)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port,
                              ssl_context=certificate.context if certificate else None).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        if certificate is not None:
            self.certificate = certificate
            self._watch = asyncio.get_running_loop().create_task(certificate.watch())
        logging.getLogger(type(self).__module__).info("%s on %s", self.what, self.url)

    async def stop(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if self._own_gate:
            self.gate.close()
