"""Notification test helpers: a real local webhook receiver and a sample message."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from prober.notify.message import Message

T0 = 1_740_866_400 * 1_000_000_000  # 2025-03-01T22:00:00Z


def make_message(event="opened", site="simbank", kind="transfer", **kw) -> Message:
    """A transfer outage at simbank from 22:00 UTC, opened or (``"resolved"``) back after
    1 h 30 min; ``kw`` overrides any field."""
    fields = dict(
        event=event,
        incident_id="abc123",
        site=site,
        kind=kind,
        check="transfer",
        location="par",
        failed_step="create",
        outcome="http_status",
        error="HTTP 503",
        reason="http_status: HTTP 503 (3 consecutive failures)",
        since_ns=T0,
        at_ns=T0 + 90 * 10**9,
        duration_s=90.0 if event != "resolved" else 5400.0,
        capability_state="outage" if event != "resolved" else "ok",
        site_summary="partial outage: transfer (outage); ok: login, accounts",
        resolved_ns=T0 + 5400 * 10**9 if event == "resolved" else None,
    )
    fields.update(kw)
    return Message(**fields)


class Receiver:
    """A real aiohttp server recording every POST; ``mode`` = ok | fail | hang | fail_then_ok | bad_request."""

    def __init__(self, mode: str = "ok", failures: int = 2) -> None:
        self.mode = mode
        self.failures = failures
        self.requests: list[dict] = []
        self.hanging = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"path": request.path, "json": body, "headers": dict(request.headers),
                              "at": time.perf_counter()})
        if self.mode == "hang":
            await self.hanging.wait()
        if self.mode == "fail" or (self.mode == "fail_then_ok" and len(self.requests) <= self.failures):
            return web.Response(status=500, text="boom")
        if self.mode == "bad_request":
            return web.Response(status=400, text="invalid_payload")
        return web.Response(text="ok")

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook/T0KEN-SECRET"
        return self

    async def __aexit__(self, *exc) -> None:
        self.hanging.set()
        assert self._runner is not None
        await self._runner.cleanup()
