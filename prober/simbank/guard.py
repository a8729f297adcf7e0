"""Faults applied to the simulated bank's routes: :func:`guard` wraps a route's handler so
that its capability's active fault (:mod:`prober.simbank.faults`) applies first."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from .faults import WEB_ONLY_MODES, Fault, FaultRegistry

FaultHandler = Callable[[web.Request, "Fault | None"], Awaitable[web.StreamResponse]]
"""A business handler: gets the request and the capability's fault (None = healthy)."""


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _apply(
    fault: Fault, request: web.Request, faults: FaultRegistry, capability: str, stopping: asyncio.Event,
    web_page: bool,
) -> web.StreamResponse | Fault | None:
    """What ``fault`` does before the route's handler runs: an answer of its own, the
    fault for the handler to apply (the content-level modes), or None (the handler
    answers as if healthy)."""
    mode = fault.mode
    if mode in WEB_ONLY_MODES:
        if not web_page:
            return None
        if mode == "blank":
            return web.Response(text="", content_type="text/html")
    if mode == "down":
        return _error(fault.status or 503, "service unavailable")
    if mode == "slow":
        # Sleep before the handler builds the response, so the delay is in the TTFB.
        await asyncio.sleep(fault.delay_ms / 1000.0)
        return None
    if mode == "intermittent":
        return _error(fault.status or 500, "internal error") if faults.draw(capability) < fault.rate else None
    if mode == "refuse":
        refused = not fault.values or request.headers.get(fault.header) in fault.values
        return _error(403, "access_denied") if refused else None
    if mode == "hang":
        await stopping.wait()
        # Shutting down: drop the connection without an answer.
        raise asyncio.CancelledError
    return fault


def guard(
    capability: str,
    route_key: str,
    handler: FaultHandler,
    faults: FaultRegistry,
    counters: Callable[[str, str], None],
    stopping: asyncio.Event,
    web_page: bool = False,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap ``handler`` so that the fault of ``capability`` applies before it runs.

    Transport-level modes (down, slow, hang, intermittent, refuse) are handled here;
    content-level modes (wrong_data, reject) are passed to the handler as ``fault``.
    The web-only modes apply to ``web_page`` routes (the web front's pages): ``blank``
    answers 200 with an empty page here, ``script_error`` and ``slow_render`` go to the
    handler; the JSON API ignores them.
    ``counters(capability, route_key)`` is called once per request. ``stopping`` wakes
    hung requests when the server shuts down.
    """
    active = faults._active  # direct dict lookup: this runs on every request

    async def guarded(request: web.Request) -> web.StreamResponse:
        counters(capability, route_key)
        fault = active.get(capability)
        if fault is None or (fault.paths and not request.path.startswith(fault.paths)):
            return await handler(request, None)
        applied = await _apply(fault, request, faults, capability, stopping, web_page)
        if isinstance(applied, web.StreamResponse):
            return applied
        return await handler(request, applied)

    guarded.__name__ = getattr(handler, "__name__", "guarded")
    guarded.__doc__ = handler.__doc__
    return guarded
