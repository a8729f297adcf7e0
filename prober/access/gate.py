"""Who may see what on a listener: public routes, internal routes, and the gate between.

Every route a listener serves is **internal** unless it was registered with
:func:`serve_publicly`. So a route added later (``/metrics``) is protected without its
author doing anything, and the public list is short and explicit: ``/healthz``, and the
status page's routes when ``[status_page] public = true``.

The :class:`AccessGate` is one aiohttp middleware, shared by every listener of a
process. For each request:

1. a public route is served as it is;
2. an internal route is first counted against its client's rate limit (a token bucket
   per remote address: 429 with ``Retry-After`` beyond it), then, when credentials are
   configured, its ``Authorization`` header is checked
   (:class:`~prober.access.credentials.Authenticator`): 401 with a
   ``WWW-Authenticate`` challenge for each scheme configured (``Basic`` first, so that a
   browser shows its login prompt) when it is missing or wrong, 503 while too many
   passwords wait for verification;
3. every answer, refusals and errors included, gets the
   :data:`~prober.access.headers.SECURITY_HEADERS` (those a handler set itself stay).

A request that matches no route (404, 405) is answered at once: it shows nothing.
Refusals are logged at most once a minute (how many, and the latest one's method, path
and client address), never with what the client presented.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web
from multidict import CIMultiDict

from prober.access.credentials import Authenticator
from prober.access.headers import SECURITY_HEADERS
from prober.access.ratelimit import ClientRateLimiter
from prober.access.tls import CHECK_EVERY, ServerCertificate
from prober.config.access import AccessConfig, is_loopback

log = logging.getLogger("prober.access")

PUBLIC_RESOURCES = web.AppKey("public_resources", set[web.AbstractResource])
"""The resources of an application that anyone may read (see :func:`serve_publicly`)."""
REALM = "bank-prober"
TARPIT_MAX = 1.0
"""Seconds a 429 waits at most before it is sent."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def serve_publicly(app: web.Application, *routes: web.AbstractRoute) -> None:
    """Let anyone read ``routes`` (no credential, no rate limit). Call it right where the
    route is added; every route not named here is internal."""
    app.setdefault(PUBLIC_RESOURCES, set()).update(r.resource for r in routes if r.resource is not None)


def is_public(app: web.Application, route: web.AbstractRoute) -> bool:
    """Whether ``route`` of ``app`` was registered with :func:`serve_publicly`."""
    return route.resource is not None and route.resource in app.get(PUBLIC_RESOURCES, ())


def internal_routes(app: web.Application) -> list[web.AbstractRoute]:
    """The routes of ``app`` that need a credential (when any is configured)."""
    return [route for route in app.router.routes() if not is_public(app, route)]


class UnsafeListener(OSError):
    """A listener would serve internal routes beyond loopback without authentication."""


class RefusalLog:
    """Refused requests, logged at most once every ``every`` seconds."""

    def __init__(self, every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self.total: Counter[int] = Counter()
        """Refusals per status since the start (401, 429, 503)."""
        self._since_log: Counter[int] = Counter()
        self._next = 0.0

    def refused(self, status: int, request: web.Request) -> None:
        self.total[status] += 1
        self._since_log[status] += 1
        now = self.clock()
        if now < self._next:
            return
        counts = ", ".join(f"{status}: {count}" for status, count in sorted(self._since_log.items()))
        log.warning("refused %d request(s) to internal routes since the last report (%s); latest: %s %r from %s",
                    sum(self._since_log.values()), counts, request.method, request.path[:100], request.remote)
        self._since_log.clear()
        self._next = now + self.every


class AccessGate:
    """The rules of one process's listeners: credentials, rate limit, TLS, headers."""

    def __init__(self, config: AccessConfig | None = None, *, tls_check_every: float = CHECK_EVERY) -> None:
        config = config or AccessConfig()
        self.tls = config.tls
        """Fixed at start: the files' content is reloaded, their names need a restart."""
        self.tls_check_every = tls_check_every
        self.authenticator = Authenticator(config)
        self.refusals = RefusalLog()
        self.configure(config)

        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            try:
                route = request.match_info.route
                refusal = None if route.resource is None or is_public(request.app, route) else \
                    await self._admit(request)
                response = refusal if refusal is not None else await handler(request)
            except web.HTTPException as exc:  # raised by a handler (a redirect, a 404): an answer too
                _secure(exc)
                raise
            _secure(response)
            return response

        self.middleware = guard
        """The aiohttp middleware to put on every listener's application."""

    def configure(self, config: AccessConfig) -> None:
        """Apply ``config``'s credentials and limits (at start and on a reload)."""
        self.allow_unauthenticated = config.allow_unauthenticated
        self.authenticator.configure(config)
        self.limiter = ClientRateLimiter(config.rate_limit, config.rate_burst)

    @property
    def authenticates(self) -> bool:
        return bool(self.authenticator.schemes)

    def check_exposure(self, host: str, app: web.Application) -> None:
        """Raise :class:`UnsafeListener` when ``app`` on ``host`` would serve internal routes
        beyond loopback without authentication (and that was not explicitly allowed)."""
        if self.authenticates or self.allow_unauthenticated or is_loopback(host):
            return
        internal = sorted({route.resource.canonical for route in internal_routes(app) if route.resource})
        if internal:
            raise UnsafeListener(f"refusing to serve {', '.join(internal)} on {host} without authentication: "
                                 "add [[access.tokens]] or [[access.users]], listen on 127.0.0.1, "
                                 "or set [access] allow_unauthenticated = true")

    def certificate(self) -> ServerCertificate | None:
        """A certificate (and its context) for one listener, or None for plain HTTP."""
        return None if self.tls is None else ServerCertificate(self.tls, self.tls_check_every)

    async def _admit(self, request: web.Request) -> web.Response | None:
        """None when ``request`` may reach its internal route; otherwise the refusal."""
        wait = self.limiter.take(request.remote or "")
        if wait > 0:
            self.refusals.refused(429, request)
            # Answered late: a client asking again at once on a kept-alive connection is
            # slowed down to the pace it was asked to keep, at the cost of one timer.
            await asyncio.sleep(min(wait, TARPIT_MAX))
            return web.Response(status=429, text="too many requests: slow down\n",
                                headers={"Retry-After": str(max(1, math.ceil(wait)))})
        schemes = self.authenticator.schemes
        if not schemes:
            return None
        result = await self.authenticator.check(request.headers.get("Authorization"))
        if result.verdict == "ok":
            return None
        if result.verdict == "busy":
            self.refusals.refused(503, request)
            return web.Response(status=503, text="busy verifying other passwords: retry shortly\n",
                                headers={"Retry-After": "1"})
        self.refusals.refused(401, request)
        headers: CIMultiDict[str] = CIMultiDict()
        if "basic" in schemes:
            headers.add("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')
        if "bearer" in schemes:
            error = ', error="invalid_token"' if result.scheme == "bearer" else ""
            headers.add("WWW-Authenticate", f'Bearer realm="{REALM}"{error}')
        return web.Response(status=401, text="authentication required\n", headers=headers)

    def close(self) -> None:
        self.authenticator.close()


def _secure(response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
