"""Where unwritten points wait, and what becomes of each batch that was sent.

The spool (:class:`~prober.writer.spool.AsyncSpool`) holds them; when it cannot (read-only
or missing directory, full disk) they wait in memory instead, at most
``memory_max_points`` of them (the oldest beyond that are dropped and counted), and the
spool is tried again every :data:`~prober.writer.settings.SPOOL_RETRY_INTERVAL` seconds.
A batch's fate is settled here too: deleted from the spool once written (held, and
deleted later, when that delete fails), set aside in the spool's ``rejected`` table when
the server refused it, handed to the replay otherwise.

*Fresh* points are journaled points on their first, direct send: they are in the spool
but do not count as ``spooled_points`` (waiting for a replay) unless that send fails.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable

from prober.writer.settings import SPOOL_RETRY_INTERVAL, WriterSettings
from prober.writer.sinks import WriteResult, WriteStatus
from prober.writer.spool import AsyncSpool, SpooledBatch
from prober.writer.stats import RateLimitedLog, WriterStats, log

__all__ = ["Backlog", "SPOOL_ERRORS"]

SPOOL_ERRORS = (sqlite3.Error, OSError, RuntimeError)
"""What a spool call raises when the spool cannot do it (closed or never opened: RuntimeError)."""


class Backlog:
    """The spool and, while it fails, memory: the points InfluxDB has not taken yet.

    ``on_release`` is called when batches are handed over to the replay (it wakes it).
    """

    def __init__(self, spool: AsyncSpool, settings: WriterSettings, stats: WriterStats, log_: RateLimitedLog) -> None:
        self.spool = spool
        self.settings = settings
        self.stats = stats
        self._log = log_
        self.on_release: Callable[[], None] | None = None
        self.memory: deque[SpooledBatch] = deque()  # the spool failed: waiting in memory for the replay
        self.memory_points = 0
        self.replaying: SpooledBatch | None = None  # the memory batch the replay is writing
        self.fresh_points = 0
        self._unforgotten: list[SpooledBatch] = []  # written, but the spool failed to delete them
        self._failing = False
        self._retry_at = 0.0

    @property
    def spooled_points(self) -> int:
        """Points in the spool waiting for a replay (fresh points are not waiting yet)."""
        spooled = self.spool.points - self.fresh_points if self.spool.available else self.spool.points
        return max(spooled, 0)

    @property
    def empty(self) -> bool:
        """Nothing waits, in memory or in the spool."""
        return not self.memory and not self.spool.points

    # -- the spool ---------------------------------------------------------------------

    async def open(self) -> bool:
        try:
            await self.spool.open()
        except SPOOL_ERRORS as exc:
            self.error("open", exc)
            return False
        return True

    async def usable(self, force: bool = False) -> bool:
        """Whether to try the spool now (after a failure, not before ``SPOOL_RETRY_INTERVAL``)."""
        if self._failing and not force and time.monotonic() < self._retry_at:
            return False
        if self.spool.available:
            return True
        if not await self.open():
            return False
        if self.spool.points and self.on_release is not None:
            self.on_release()
        return True

    def error(self, action: str, exc: BaseException) -> None:
        """The spool failed at ``action``: count it, say so (rate-limited), retry it later."""
        self._failing = True
        self._retry_at = time.monotonic() + SPOOL_RETRY_INTERVAL
        self.stats.write_errors += 1
        self.stats.last_error = f"spool: {type(exc).__name__}: {exc}"
        self._log(
            "spool-error",
            logging.ERROR,
            "cannot %s the spool %s (%s: %s): new results are not durable; they are kept in memory "
            "(at most %d points) until InfluxDB takes them; retrying the spool every %.0f s",
            action,
            self.spool.path,
            type(exc).__name__,
            exc,
            self.settings.memory_max_points,
            SPOOL_RETRY_INTERVAL,
        )

    def _count_drops(self, dropped: int) -> None:
        if not dropped:
            return
        self.stats.dropped_points += dropped
        self._log(
            "spool-full",
            logging.WARNING,
            "spool full (%d MB limit): dropped the %d oldest points (%d dropped in total)",
            self.spool.max_bytes // (1024 * 1024),
            dropped,
            self.stats.dropped_points,
        )

    async def commit(self, chunks: list[tuple[str, int]], precision: str) -> list[int] | None:
        """Journal ``chunks`` in one transaction, held for their direct send (fresh); the new
        rows' ids, or ``None`` when the spool cannot take them."""
        if not await self.usable():
            return None
        try:
            # Shielded: a cancellation (shutdown) must not abort a commit queued on the spool thread.
            ids, dropped = await asyncio.shield(self.spool.append(chunks, precision, hold=True))
        except SPOOL_ERRORS as exc:
            self.error("write to", exc)
            return None
        self._count_drops(dropped)
        if self._failing:
            self._failing = False
            log.warning("spool %s works again; new results are durable again", self.spool.path)
        self.fresh_points += sum(points for _, points in chunks)
        return ids

    async def take_oldest(self, max_points: int) -> SpooledBatch | None:
        """The oldest spooled rows nobody is sending, held; ``None`` when none (or the spool failed)."""
        try:
            return await self.spool.take_oldest(max_points)
        except SPOOL_ERRORS as exc:
            self.error("read", exc)
            return None

    # -- handing over to the replay ------------------------------------------------

    def _unfresh(self, batch: SpooledBatch, fresh: bool) -> None:
        if fresh and batch.ids:
            self.fresh_points -= batch.points

    def release(self, batches: list[SpooledBatch], fresh: bool = False) -> None:
        """Hand batches over to the replay: journaled ones stay in the spool, the others in memory."""
        if not batches:
            return
        for batch in batches:
            self._unfresh(batch, fresh)
            if batch.ids:
                self.spool.release_soon(batch.ids)
            else:
                self._remember(batch)
        if self.on_release is not None:
            self.on_release()

    def _remember(self, batch: SpooledBatch) -> None:
        """Keep a batch the spool could not take, within ``memory_max_points`` (oldest out first)."""
        self.memory.append(batch)
        self.memory_points += batch.points
        dropped = 0
        while self.memory_points > self.settings.memory_max_points and len(self.memory) > 1:
            old = self.memory.popleft()
            self.memory_points -= old.points
            dropped += old.points
        if dropped:
            self.stats.dropped_points += dropped
            self._log(
                "memory-full",
                logging.ERROR,
                "spool unusable and InfluxDB not taking writes: dropped the %d oldest points kept in memory "
                "(%d dropped in total)",
                dropped,
                self.stats.dropped_points,
            )

    async def next_to_replay(self, max_points: int) -> SpooledBatch | None:
        """The oldest batch kept in memory, else the oldest spooled rows nobody is sending."""
        if self.memory:
            batch = self.memory.popleft()
            self.memory_points -= batch.points
            self.replaying = batch  # out of the deque: never dropped while being written
            return batch
        if not self.spool.available:
            return None
        return await self.take_oldest(max_points)

    def take_memory(self) -> list[SpooledBatch]:
        """Everything waiting in memory, the replay's batch last (at close)."""
        batches = list(self.memory)
        if self.replaying is not None:
            batches.append(self.replaying)
        self.memory.clear()
        return batches

    # -- what became of a write -------------------------------------------------------

    async def forget(self, batch: SpooledBatch, fresh: bool = False) -> None:
        """Delete a written batch from the spool; if that fails, keep it held and try again later."""
        if not batch.ids:
            return
        self._unfresh(batch, fresh)
        try:
            await self.spool.delete(batch)
        except SPOOL_ERRORS as exc:
            self.spool.hold_soon(dict.fromkeys(batch.ids, 0))  # written: never to be replayed
            self._unforgotten.append(batch)
            self.error("delete from", exc)

    async def retry_forget(self) -> None:
        """Delete the written batches a failing spool kept (when it may be tried again)."""
        if not self._unforgotten or not await self.usable():
            return
        batches, self._unforgotten = self._unforgotten, []
        for batch in batches:
            await self.forget(batch)

    def failed(self, result: WriteResult, server: str) -> None:
        """A write to ``server`` failed and will be retried."""
        self.stats.write_errors += 1
        self.stats.last_error = result.message
        self._log(
            "retry",
            logging.WARNING,
            "InfluxDB write to %s failed (%s); keeping results in the spool (%d points) and retrying",
            server,
            result.message,
            self.spool.points,
        )

    async def rejected(self, result: WriteResult, batch: SpooledBatch, fresh: bool = False) -> None:
        """The server refused ``batch`` (all or part of it): set it aside in the spool's
        ``rejected`` table, count what was lost."""
        self._unfresh(batch, fresh)
        self.stats.write_errors += 1
        self.stats.last_error = result.message
        self.stats.dropped_points += result.dropped
        if result.status is WriteStatus.PARTIAL:
            self.stats.written_points += max(batch.points - result.dropped, 0)
        try:
            await self.spool.reject(batch.lines, batch.points, result.message, batch if batch.ids else None)
        except SPOOL_ERRORS as exc:
            log.error("cannot keep a rejected batch in %s: %s", self.spool.path, exc)
        self._log(
            "rejected",
            logging.ERROR,
            "InfluxDB %s a batch of %d points (%d dropped, kept in the spool's rejected table): %s",
            "partly refused" if result.status is WriteStatus.PARTIAL else "refused",
            batch.points,
            result.dropped,
            result.message,
        )

    async def last_chance(self, batch: SpooledBatch) -> None:
        """At close: a batch only in memory goes to the spool if it can, else it is lost (and counted)."""
        try:
            if not await self.usable(force=True):
                raise RuntimeError(self.stats.last_error or "spool unavailable")
            await self.spool.put(batch.lines, batch.points, batch.precision)
        except SPOOL_ERRORS as exc:
            self.stats.dropped_points += batch.points
            log.error("closing: %d points could be neither written nor spooled (%s): dropped", batch.points, exc)
