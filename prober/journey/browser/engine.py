"""One Chromium per prober process, shared by every browser run, each in its own context.

:class:`BrowserEngine` starts Playwright's driver and launches Debian's Chromium on
first use (never Playwright's own browser downloads), and launches it again when it
crashed or was killed: the run that finds it gone gets a new one. Every run gets a
fresh browser context (cookies, storage, cache of its own: nothing leaks from one run
to the next) and gives it back closed, within a bound: a context that does not close in
time (a renderer stuck in a script) takes the browser down with it, to be relaunched.

At most ``max_concurrency`` runs hold a context at once; the others wait for a slot.

The driver and the browser are child processes of the prober: Playwright's signal
handling is turned off (a SIGHUP reload or the Ctrl-C of a terminal must not close the
browser under running journeys; :meth:`close` does it at shutdown), and when the prober
dies without closing them (SIGKILL) the driver sees its pipe close and kills the browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prober.journey.browser.priority import lower_autogroups

log = logging.getLogger("prober.journey.browser")

CHROMIUM_ARGS = (
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-quic", "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
)
"""Chromium's background traffic (updates, sync, QUIC probes) is off: a prober's
browser talks to the banks it probes and nothing else. ``--no-sandbox`` comes from
Playwright (its default), which Chromium needs when run as root."""
CLOSE_TIMEOUT = 5.0
"""Seconds a context gets to close before the browser is taken down instead."""
LAUNCH_TIMEOUT = 30.0


class BrowserUnavailable(Exception):
    """The browser cannot be started (missing executable, a launch that fails)."""


@dataclass(frozen=True, slots=True)
class BrowserSettings:
    """How the engine launches Chromium."""

    executable: str = "/usr/bin/chromium"
    max_concurrency: int = 1
    traces_dir: Path | None = None
    """Where Playwright writes traces while they are recorded (0700; emptied at launch)."""
    niceness: int = 0
    """The niceness Chromium's session is given after each launch (see
    :mod:`prober.journey.browser.priority`); 0 leaves it as launched."""


class BrowserEngine:
    """The process's browser, launched on first use and again after a crash."""

    def __init__(self, settings: BrowserSettings) -> None:
        self.settings = settings
        self._playwright: Any = None
        self._manager: Any = None
        self._browser: Any = None
        self._lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        self.launches = 0
        """Browsers launched (the first, then one per crash or kill)."""
        self.active = 0
        """Contexts open right now."""
        self._closed = False

    async def _ensure_browser(self) -> Any:
        async with self._lock:
            if self._closed:
                raise BrowserUnavailable("the prober is shutting down")
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            if self._browser is not None:
                log.warning("the browser is gone (crashed or killed): launching it again")
                await self._drop_browser()
            if self._playwright is None:
                from playwright.async_api import async_playwright

                self._manager = async_playwright()
                self._playwright = await self._manager.start()
            self._browser = await self._launch()
            self.launches += 1
            return self._browser

    async def _launch(self) -> Any:
        traces = self.settings.traces_dir
        if traces is not None:
            shutil.rmtree(traces, ignore_errors=True)  # what a previous process left, secrets included
            traces.mkdir(parents=True, mode=0o700, exist_ok=True)
        try:
            browser = await self._playwright.chromium.launch(
                executable_path=self.settings.executable, args=list(CHROMIUM_ARGS), headless=True,
                handle_sigint=False, handle_sigterm=False, handle_sighup=False, timeout=LAUNCH_TIMEOUT * 1000,
                traces_dir=str(traces) if traces is not None else None,
            )
        except Exception as exc:  # noqa: BLE001 - every reason is the same for the run: no browser
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BrowserUnavailable(f"cannot launch {self.settings.executable}: {reason}") from None
        if self.settings.niceness:
            lower_autogroups(self.settings.niceness)
        return browser

    async def _drop_browser(self) -> None:
        browser, self._browser = self._browser, None
        if browser is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(browser.close(), CLOSE_TIMEOUT)

    async def acquire(self, timeout: float) -> bool:
        """Take one of the ``max_concurrency`` places for a browser run, waiting at most
        ``timeout`` seconds; whether it was had (then :meth:`release` it)."""
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await self._slots.acquire()
        except TimeoutError:
            return False
        return True

    def release(self) -> None:
        self._slots.release()

    @contextlib.asynccontextmanager
    async def context(self, **options: Any) -> AsyncIterator[Any]:
        """A fresh browser context, closed (within :data:`CLOSE_TIMEOUT`) on the way out.
        Raises :class:`BrowserUnavailable` when no browser can be had."""
        context = await self._new_context(options, retry=True)
        self.active += 1
        try:
            yield context
        finally:
            self.active -= 1
            await self.close_context(context)

    async def _new_context(self, options: dict[str, Any], retry: bool) -> Any:
        browser = await self._ensure_browser()
        try:
            return await browser.new_context(**options)
        except Exception as exc:  # noqa: BLE001 - a browser that died since the last run, not yet seen gone
            if browser.is_connected() and type(exc).__name__ != "TargetClosedError":
                raise
            if not retry:
                raise BrowserUnavailable(f"the browser went away: {type(exc).__name__}") from None
        log.warning("the browser is gone (crashed or killed): launching it again")
        async with self._lock:
            if self._browser is browser:
                await self._drop_browser()
        return await self._new_context(options, retry=False)

    async def close_context(self, context: Any) -> None:
        """Close ``context``; one that does not close in time takes the browser down."""
        started = time.monotonic()
        try:
            await asyncio.wait_for(context.close(), CLOSE_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - any failure to close restarts the browser
            if self._browser is not None and self._browser.is_connected():
                log.warning("a browser context did not close in %.0fs (%s): restarting the browser",
                            time.monotonic() - started, type(exc).__name__)
                async with self._lock:
                    await self._drop_browser()

    async def close(self) -> None:
        """Close the browser and stop the driver (at shutdown)."""
        async with self._lock:
            self._closed = True
            await self._drop_browser()
            manager, self._manager, self._playwright = self._manager, None, None
            if manager is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(manager.__aexit__(None, None, None), CLOSE_TIMEOUT)
        if self.settings.traces_dir is not None:
            shutil.rmtree(self.settings.traces_dir, ignore_errors=True)
