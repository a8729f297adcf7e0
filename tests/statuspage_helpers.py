"""Shared pieces of the status page tests: a bank whose error text carries a script,
a configuration of two banks, and a small HTML reader (no tests here)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

from tests.daemon_helpers import check, config_text

SCRIPT = "<script>alert('pwned')</script>"
"""What the hostile bank puts in its answers: it ends up in the failing step's error."""


class EvilBank:
    """A bank answering 200 with a hostile body and header: ``{"state": "<script>…"}``."""

    def __init__(self) -> None:
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> EvilBank:
        async def health(request: web.Request) -> web.Response:
            return web.json_response({"state": SCRIPT}, headers={"X-Error": SCRIPT})

        app = web.Application()
        app.router.add_get("/health", health)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def evil_site(url: str, interval: str = "300ms") -> str:
    return f"""
[[sites]]
name = "evilbank"
base_url = "{url}"
timeout = "2s"

[[sites.checks]]
name = "health"
kind = "custom"
interval = "{interval}"
timeout = "{interval}"
  [[sites.checks.steps]]
  name = "state"
  path = "/health"
  expect = [ {{ json = "state", equals = "UP" }} ]
"""


def two_banks(bank_url: str, evil_url: str, *, state_dir: str, interval: str = "300ms",
              daemon: dict[str, Any] | None = None, status_page: dict[str, Any] | None = None) -> str:
    """simbank (login + accounts) and evilbank (custom), and a ``[status_page]``."""
    text = config_text(
        bank_url, [check("login", interval=interval), check("accounts", interval=interval)],
        daemon={"state_dir": state_dir, **(daemon or {})},
    )
    page = {"refresh": "2s", **(status_page or {})}
    maintenance = (
        '\n[[incidents.maintenance]]\nsite = "simbank"\nkinds = ["transfer"]\nweekdays = ["sun"]\n'
        'from = "01:00"\nto = "03:00"\ndescription = "Core banking <b>upgrade</b>"\n'
    )
    section = "\n[status_page]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in page.items())
    return text + evil_site(evil_url, interval) + section + maintenance


class Cells(HTMLParser):
    """``(site, kind) → text`` of the page's grid cells."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], str] = {}
        self._key: tuple[str, str] | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        data = dict(attrs)
        if tag == "td" and data.get("data-site"):
            self._key = (data["data-site"] or "", data.get("data-kind") or "")
            self.cells[self._key] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._key = None

    def handle_data(self, data: str) -> None:
        if self._key is not None:
            self.cells[self._key] += data

    @classmethod
    def of(cls, html: str) -> dict[tuple[str, str], str]:
        parser = cls()
        parser.feed(html)
        return {k: " ".join(v.split()) for k, v in parser.cells.items()}


def fetch(url: str) -> tuple[int, dict[str, str], str]:
    """GET ``url``: status, headers, body (an error status too, not an exception)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


async def get(url: str) -> tuple[int, dict[str, str], str]:
    """:func:`fetch` in a thread, off the event loop the servers under test run on."""
    return await asyncio.to_thread(fetch, url)
