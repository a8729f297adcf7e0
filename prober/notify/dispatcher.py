"""Routing, retries, timeouts and background delivery of notifications.

:meth:`Dispatcher.submit` is synchronous and only creates tasks: a notifier that hangs
or answers 500 never delays probing. Each delivery is one task per (notifier, message);
every attempt is bounded by the notifier's ``timeout``, and failures that another
attempt can fix (connection errors, timeouts, 5xx, 429) are retried with exponential
backoff and jitter (tenacity), ``retries`` times. At most :data:`MAX_PENDING` deliveries
per notifier are in flight; beyond that new messages are dropped with an error log
rather than piling up memory behind a dead endpoint. Logs name the notifier by its
``name`` or type, never by URL (webhook URLs are secrets).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from prober.notify.base import Notifier, NotifyError
from prober.notify.message import Message
from prober.notify.providers import make_notifier
from prober.notify.settings import NotifierSettings

log = logging.getLogger("prober.notify")

MAX_PENDING = 100


def routes(config: NotifierSettings, message: Message) -> bool:
    """Whether ``message`` goes to this notifier (empty ``sites``/``kinds`` = all)."""
    if config.sites and message.site not in config.sites:
        return False
    if config.kinds and message.kind not in config.kinds:
        return False
    if message.event == "reminder" and not config.reminders:
        return False
    return True


class Dispatcher:
    """Delivers messages to the configured notifiers in background tasks."""

    def __init__(self, configs: Sequence[NotifierSettings], session: aiohttp.ClientSession | None = None) -> None:
        self.configs = list(configs)
        self._session = session
        self._own_session = session is None
        self._notifiers: list[Notifier] = []
        self._tasks: set[asyncio.Task] = set()
        self._pending: dict[int, int] = {}
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.attempts = 0

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self._notifiers = [make_notifier(c, self._session) for c in self.configs]

    def submit(self, message: Message) -> None:
        """Schedule delivery of ``message`` to every notifier it routes to; never blocks."""
        if not self._notifiers and self.configs:
            log.error("notification for %s/%s dropped: dispatcher not started", message.site, message.kind)
            return
        for index, notifier in enumerate(self._notifiers):
            if not routes(notifier.config, message):
                continue
            if self._pending.get(index, 0) >= MAX_PENDING:
                self.dropped += 1
                log.error("notifier %s: %d deliveries pending, dropping %s of %s/%s",
                          notifier.config.label, MAX_PENDING, message.event, message.site, message.kind)
                continue
            self._pending[index] = self._pending.get(index, 0) + 1
            task = asyncio.get_running_loop().create_task(self._deliver(index, notifier, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, index: int, notifier: Notifier, message: Message) -> None:
        config = notifier.config
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(config.retries + 1),
                wait=wait_exponential_jitter(multiplier=config.backoff, max=config.backoff_max, jitter=config.backoff),
                retry=retry_if_exception(lambda exc: isinstance(exc, NotifyError) and exc.retryable),
                reraise=True,
            ):
                with attempt:
                    self.attempts += 1
                    try:
                        async with asyncio.timeout(config.timeout):
                            await notifier.send(message)
                    except TimeoutError:
                        raise NotifyError(f"no answer within {config.timeout:g}s", retryable=True) from None
            self.sent += 1
        except NotifyError as exc:
            self.failed += 1
            log.error("notifier %s: %s of %s/%s not delivered: %s", config.label, message.event, message.site,
                      message.kind, exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in a payload builder must not kill the loop
            self.failed += 1
            log.error("notifier %s: %s of %s/%s failed: %s", config.label, message.event, message.site,
                      message.kind, type(exc).__name__)
        finally:
            self._pending[index] -= 1

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until every delivery is done (or ``timeout``); True when idle."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        return not pending

    async def close(self, timeout: float = 5.0) -> None:
        """Give pending deliveries ``timeout`` seconds, cancel the rest, close the session."""
        if not await self.wait_idle(timeout):
            log.warning("%d notifications still pending at shutdown, cancelled", len(self._tasks))
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None
