"""The replay: what waits in memory or in the spool goes to InfluxDB, oldest first.

One task. It writes the oldest batch kept in memory, else the oldest spooled rows that no
direct send holds, and retries a write InfluxDB cannot take now (down, 5xx, 429, 401/403)
with exponential backoff and jitter through tenacity (``backoff_base`` doubling up to
``backoff_max``; a ``Retry-After`` is honoured, capped at ten times ``backoff_max``).

It also says whether the sink is *healthy*: after a failed write new batches are not
sent directly but left to the replay, which alone talks to the server until a write
succeeds (or nothing is left to write).
"""

from __future__ import annotations

import asyncio
import logging

from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_never, wait_exponential_jitter

from prober.waiting import wait_event
from prober.writer.backlog import Backlog
from prober.writer.points import Precision, rescale_lines
from prober.writer.settings import SPOOL_RETRY_INTERVAL, WriterSettings
from prober.writer.sinks import Sink, WriteResult, WriteStatus
from prober.writer.spool import SpooledBatch
from prober.writer.stats import RateLimitedLog

__all__ = ["Replay"]


class _Stopped(Exception):
    """The writer stopped while the replay waited for its next attempt."""


class Replay:
    """Writes what ``backlog`` holds through ``sink`` until ``stop`` is set."""

    def __init__(self, sink: Sink, backlog: Backlog, settings: WriterSettings, precision: Precision,
                 log_: RateLimitedLog) -> None:
        self.sink = sink
        self.backlog = backlog
        self.settings = settings
        self.precision = precision
        self._log = log_
        self._backoff = wait_exponential_jitter(
            multiplier=settings.backoff_base, max=settings.backoff_max, jitter=settings.backoff_base
        )
        self.healthy = True
        """Whether new batches may be sent directly (no write has failed since the last success)."""
        self.task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None

    def start(self, stop: asyncio.Event, work_waiting: bool) -> None:
        """Start the task (on the running loop); it ends when ``stop`` is set."""
        self._wake = asyncio.Event()
        self._stop = stop
        if work_waiting:
            self._wake.set()
        self.task = asyncio.create_task(self._loop(), name="prober-writer-replay")

    def wake(self) -> None:
        """There is something to write (or the writer is stopping)."""
        if self._wake is not None:
            self._wake.set()

    def sink_failed(self) -> None:
        """A direct send failed: leave everything to the replay until a write succeeds."""
        self.healthy = False

    # -- the task ----------------------------------------------------------------------

    async def _loop(self) -> None:
        assert self._wake is not None and self._stop is not None
        backlog, stats = self.backlog, self.backlog.stats
        while not self._stop.is_set():
            self._wake.clear()
            batch = await backlog.next_to_replay(self.settings.batch_size)
            if batch is None:
                if not self.healthy:
                    self.healthy = True
                # Woken by new work; also every few seconds, for a spool that failed to read.
                await wait_event(self._wake, SPOOL_RETRY_INTERVAL)
                continue
            answer = await self._write(batch)
            if answer is None:
                break
            result, attempts = answer
            backlog.replaying = None
            if result.status is WriteStatus.OK:
                await backlog.forget(batch)
                stats.written_points += batch.points
                if not self.healthy or attempts > 1:
                    self._log("recovered", logging.INFO, "InfluxDB %s answers again; replaying %d spooled points",
                              self.sink.description, backlog.spool.points)
                self.healthy = True
            else:
                await backlog.rejected(result, batch)

    async def _write(self, batch: SpooledBatch) -> tuple[WriteResult, int] | None:
        """Write one batch, retrying while InfluxDB cannot take it.

        Returns the answer that ended the retries and the number of attempts it took, or
        ``None`` when the writer stopped while waiting for the next attempt.
        """
        assert self._stop is not None
        stop = self._stop

        async def sleep_unless_stopped(seconds: float) -> None:
            if await wait_event(stop, seconds):
                raise _Stopped

        retrying = AsyncRetrying(
            retry=retry_if_result(lambda r: r.status is WriteStatus.RETRY),
            wait=self._wait,
            before_sleep=self._failed,
            sleep=sleep_unless_stopped,
            stop=stop_never,
        )
        body = rescale_lines(batch.lines, batch.precision, self.precision)
        try:
            result: WriteResult = await retrying(self.sink.write, body, batch.points)
        except _Stopped:
            return None
        return result, retrying.statistics.get("attempt_number", 1)

    def _wait(self, state: RetryCallState) -> float:
        """Exponential backoff with jitter, or the server's ``Retry-After`` when longer (capped)."""
        delay = self._backoff(state)
        retry_after = state.outcome.result().retry_after if state.outcome is not None else None
        if retry_after is not None:
            delay = max(delay, min(retry_after, 10 * max(self.settings.backoff_max, 1.0)))
        return delay

    def _failed(self, state: RetryCallState) -> None:
        assert state.outcome is not None
        self.backlog.failed(state.outcome.result(), self.sink.description)
        self.healthy = False
