"""InfluxDB credentials never reach `last_error`, the logs or `/status`, even when the
server (or a proxy in front of it) echoes the Authorization header back.

The server is a real aiohttp server on loopback playing InfluxDB: it answers every write
with a chosen status and a body quoting the request's ``Authorization`` header (and the
query string) verbatim.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from urllib.parse import quote

import pytest
from aiohttp import web

from prober.config.influxdb import influxdb_config
from prober.writer import ResultWriter
from tests.writer_helpers import FAST, make_result

PASSWORD = "influx-Pw-" + "h7Kd2Qz" * 6
TOKEN = "influx-token-" + "Yb4Tn8Rw" * 8
BASIC = base64.b64encode(f"prober:{PASSWORD}".encode()).decode()
SECRETS = (PASSWORD, TOKEN, BASIC, quote(PASSWORD, safe=""))


class EchoingInflux:
    """Answers ``/write`` and ``/api/v2/write`` with ``status`` and the credentials it got."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.requests = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _write(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.requests += 1
        auth = request.headers.get("Authorization", "")
        body = f'{{"code":"unauthorized","message":"bad credentials: {auth}","query":"{request.query_string}"}}'
        return web.Response(status=self.status, text=body, content_type="application/json",
                            headers={"X-Echo-Authorization": auth})

    async def __aenter__(self) -> EchoingInflux:
        app = web.Application()
        app.router.add_post("/write", self._write)
        app.router.add_post("/api/v2/write", self._write)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]  # started
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def fragments(text: str, size: int = 8) -> list[str]:
    return sorted({s[i: i + size] for s in SECRETS for i in range(len(s) - size + 1) if s[i: i + size] in text})


@pytest.mark.parametrize("status", [401, 403, 502])
@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_echoed_credentials_never_kept(status: int, api: str, tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    async with EchoingInflux(status) as server:
        if api == "v1":
            config = influxdb_config(url=server.url, api="v1", database="prober", username="prober",
                                    password=PASSWORD, timeout="2s")
        else:
            config = influxdb_config(url=server.url, org="o", bucket="b", token=TOKEN, timeout="2s")
        writer = ResultWriter(config, spool_dir=tmp_path, settings=FAST)
        await writer.start()
        writer.submit(make_result("echo"))
        await writer.flush()
        for _ in range(100):
            if writer.stats.write_errors and server.requests:
                break
            await asyncio.sleep(0.05)
        stats = writer.stats
        await writer.close()
    assert server.requests >= 1 and stats.write_errors >= 1
    assert stats.last_error.startswith(f"HTTP {status}"), stats.last_error
    assert stats.spooled_points > 0  # the data is kept for later, not dropped
    text = stats.last_error + caplog.text
    assert fragments(text) == [], text
    if status in (401, 403):
        assert "bad credentials" not in stats.last_error  # a refusal's text is not kept at all
    else:
        assert "bad credentials: " in stats.last_error and "***" in stats.last_error  # kept, scrubbed
