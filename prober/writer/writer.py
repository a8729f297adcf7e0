"""The result writer: journals points to the spool, writes them to InfluxDB, replays the rest.

Lifecycle::

    writer = ResultWriter(config.influxdb)       # None: the embedded default, spool only
    await writer.start()                          # opens the spool, replays what it holds
    writer.submit(result)                         # synchronous, never blocks or raises
    ...
    await writer.close(timeout=10)                # flush; whatever is not written stays spooled

Flow of a point::

    submit ─▶ buffer ─(every journal_interval, 50 ms)─▶ spool (one commit per tick) ─▶ pending
                                                                                         │
        (batch_size points or flush_interval) ─▶ sink ─ok──────────────▶ delete from spool
                                                  ├─ retry (down, 5xx, 429, 401/403) ─▶ replay task
                                                  └─ rejected / partial (400, 422) ───▶ spool.rejected,
                                                                                        dropped_points

**Durability.** Every submitted point is committed to the SQLite spool (the journal)
within ``journal_interval`` (50 ms) plus the time of that commit, whatever InfluxDB is
doing: down, slow (a write in flight for seconds) or healthy. One commit per tick, not
per point; the rows are deleted once InfluxDB acknowledges them. The commit is a WAL
commit with ``synchronous=NORMAL``: it survives the process being killed (SIGKILL, OOM
killer, a crash), not a power loss or kernel crash, which may lose the last commits.
A batch is thus never only in memory while it is being sent, and a crash costs at most
the points submitted in the last ``journal_interval``.

After a failed write the sink is *unhealthy*: new batches stay in the spool only and the
replay task alone talks to the server, oldest batch first, with exponential backoff and
jitter between attempts (``backoff_max``, ~60 s, at most; a ``Retry-After`` is honoured),
through tenacity like the notifiers' retries. Its first success makes the sink healthy
again: new batches are written directly while the spool drains. Writing a point twice is
harmless (same series and timestamp), so a batch whose fate is unknown (cancelled at
shutdown, answer lost) stays in the spool and is written again rather than risked.

**Spool faults.** When the spool cannot be opened (read-only or missing directory) or a
commit fails (disk full, file size limit), the writer keeps going: the error is logged
(rate-limited), counted in ``write_errors`` and shown in ``last_error``; the points are
kept in memory and written to InfluxDB when it takes them; at most ``memory_max_points``
of them wait in memory for InfluxDB, the oldest beyond that are dropped and counted in
``dropped_points``. The spool is tried again every ``SPOOL_RETRY_INTERVAL`` seconds.

Memory: the buffer holds one tick of points; at most ``max_in_flight`` × ``batch_size``
journaled points wait in memory for a send (beyond that the replay task reads them back
from the spool), plus the ``memory_max_points`` bound above while the spool fails.

Logs (``prober.writer``) are rate-limited per kind of event and never contain tokens or
passwords: they name the server by :meth:`InfluxDBConfig.describe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path

from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_never, wait_exponential_jitter

from prober.config.influxdb import InfluxDBConfig, SpoolConfig
from prober.results import JourneyResult
from prober.waiting import wait_event
from prober.writer.points import Precision, journey_lines, rescale_lines
from prober.writer.sinks import Sink, WriteResult, WriteStatus, make_sink
from prober.writer.spool import AsyncSpool, SpooledBatch, merge_batches

__all__ = ["ResultWriter", "WriterStats"]

log = logging.getLogger("prober.writer")

JOURNAL_INTERVAL = 0.05
"""Seconds between spool commits of new points: the durability bound, commit time aside."""
MEMORY_MAX_POINTS = 100_000
"""Points kept in memory at most while the spool fails and InfluxDB does not take them."""
SPOOL_RETRY_INTERVAL = 5.0
"""Seconds between attempts to use a spool that failed (open, commit)."""


@dataclass(slots=True)
class WriterStats:
    """Counters for the ``prober`` measurement (field names match :func:`prober_point`)."""

    written_points: int = 0
    """Points the server accepted since start (replayed ones included)."""
    spooled_points: int = 0
    """Points waiting in the spool for a replay (new points on their first send are not counted)."""
    dropped_points: int = 0
    """Points lost for good: refused by the server, or pushed out of a full spool."""
    write_errors: int = 0
    """Failed write attempts, to InfluxDB (each retry counts) or to the spool."""
    last_error: str = ""
    """The last write error, without credentials; empty until one happens."""


class _Stopped(Exception):
    """The writer stopped while the replay waited for its next attempt."""


class _RateLimitedLog:
    """At most one log line per ``key`` per ``interval``; says how many were suppressed."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, key: str, level: int, msg: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            msg += " (%d similar messages suppressed)"
            args = (*args, suppressed)
        log.log(level, msg, *args)


class ResultWriter:
    """Writes journey results to InfluxDB without losing them.

    ``config`` is the ``[influxdb]`` section, or ``None`` for the embedded default (every
    batch goes to the spool, to be replayed by a later start that has ``[influxdb]``).
    ``spool`` supplies spool settings when ``config`` is ``None``; ``spool_dir`` and
    ``spool_max_mb`` override either. ``sink`` replaces the sink built from ``config``
    (tests); ``batch_size`` and ``flush_interval`` override the configured ones;
    ``backoff_base``/``backoff_max`` bound the replay backoff in seconds;
    ``journal_interval`` is the durability bound (seconds between spool commits);
    ``memory_max_points`` bounds the points kept in memory while the spool fails;
    ``ephemeral`` says the spool is thrown away at exit (``prober demo``), so nothing
    promises that a later start will write it. ``instance`` is the ``instance`` tag of
    the journey points.
    """

    def __init__(
        self,
        config: InfluxDBConfig | None,
        *,
        spool: SpoolConfig | None = None,
        spool_dir: str | Path | None = None,
        spool_max_mb: float | None = None,
        sink: Sink | None = None,
        batch_size: int | None = None,
        flush_interval: float | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        max_in_flight: int = 2,
        log_interval: float = 60.0,
        journal_interval: float = JOURNAL_INTERVAL,
        memory_max_points: int = MEMORY_MAX_POINTS,
        ephemeral: bool = False,
        instance: str = "",
    ) -> None:
        settings = config.spool if config is not None else (spool or SpoolConfig())
        self.config = config
        self.precision: Precision = config.precision if config is not None else "ns"
        """Timestamp precision of the lines this writer produces (and expects from ``submit_lines``)."""
        self.instance = instance
        """The ``instance`` tag of the journey points (``[prober] instance``); none when empty."""
        self.spool_dir = Path(spool_dir if spool_dir is not None else settings.spool_dir)
        max_mb = spool_max_mb if spool_max_mb is not None else settings.spool_max_mb
        self.batch_size = batch_size or settings.batch_size
        self.flush_interval = flush_interval or settings.flush_interval
        self.journal_interval = min(journal_interval, self.flush_interval)
        self.memory_max_points = memory_max_points
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._backoff = wait_exponential_jitter(multiplier=backoff_base, max=backoff_max, jitter=backoff_base)
        self._sink: Sink | None = sink if sink is not None else (make_sink(config) if config is not None else None)
        self._spool = AsyncSpool(self.spool_dir, int(max_mb * 1024 * 1024))
        self._buffer: list[str] = []  # submitted since the last journal commit
        self._pending: deque[SpooledBatch] = deque()  # journaled, waiting for a send
        self._pending_points = 0
        self._fresh_points = 0  # journaled points on their first, direct send (not "waiting" yet)
        self._memory: deque[SpooledBatch] = deque()  # the spool failed: waiting in memory for the replay
        self._memory_points = 0
        self._unforgotten: list[SpooledBatch] = []  # written, but the spool failed to delete them
        self._replaying: SpooledBatch | None = None  # the memory batch the replay is writing
        self._stats = WriterStats()
        self._log = _RateLimitedLog(log_interval)
        self._healthy = True
        self._started = False
        self._closing = False
        self._ephemeral = ephemeral
        self._closed = False
        self._spool_failing = False
        self._spool_retry_at = 0.0
        self._last_send = 0.0
        self._wake: asyncio.Event | None = None
        self._replay_wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._flush_task: asyncio.Task | None = None
        self._replay_task: asyncio.Task | None = None
        # Sends running, with their batch (None: rows taken from the spool, which keeps them).
        self._in_flight: dict[asyncio.Task, SpooledBatch | None] = {}
        self._max_in_flight = max_in_flight

    # -- public surface ------------------------------------------------------------

    @property
    def stats(self) -> WriterStats:
        """A snapshot of the counters."""
        s = self._stats
        spooled = self._spool.points - self._fresh_points if self._spool.available else self._spool.points
        return WriterStats(s.written_points, max(spooled, 0), s.dropped_points, s.write_errors, s.last_error)

    @property
    def queued_points(self) -> int:
        """Points held in memory on their way to InfluxDB: submitted and not yet
        journaled, journaled and waiting for their first send, and (while the spool
        fails) waiting in memory for InfluxDB. The spool's own are :attr:`stats`."""
        return len(self._buffer) + self._pending_points + self._memory_points

    @property
    def healthy(self) -> bool:
        """False from a failed write to InfluxDB until a write succeeds again."""
        return self._healthy

    @property
    def spool_path(self) -> Path:
        """The SQLite spool file."""
        return self._spool.path

    @property
    def ephemeral(self) -> bool:
        """The spool is thrown away at exit (``prober demo``): nothing is kept for later."""
        return self._ephemeral

    async def start(self) -> None:
        """Open the spool, start the sink, the journal task and (if needed) the replay."""
        if self._started:
            return
        self._wake = asyncio.Event()
        self._replay_wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._last_send = time.monotonic()
        await self._open_spool()
        if self._sink is None and self._ephemeral:
            log.info("results are kept in a temporary spool at %s, removed at exit", self._spool.path)
        elif self._sink is None:
            log.warning(
                "no [influxdb] section: results are kept in the local spool only, at %s "
                "(%d points there); a start with [influxdb] will write them",
                self._spool.path,
                self._spool.points,
            )
        else:
            await self._sink.start()
            log.info("writing results to InfluxDB %s; spool at %s", self._sink.description, self._spool.path)
            if self._spool.points:
                log.info("replaying %d spooled points (%d batches)", self._spool.points, self._spool.batches)
                self._replay_wake.set()
            self._replay_task = asyncio.create_task(self._replay_loop(), name="prober-writer-replay")
        self._flush_task = asyncio.create_task(self._flush_loop(), name="prober-writer-journal")
        self._started = True

    def submit(self, result: JourneyResult) -> None:
        """Queue a journey's points (one ``check`` point, one ``step`` point per executed step)."""
        self.submit_lines(journey_lines(result, self.precision, self.instance))

    def submit_lines(self, lines: list[str]) -> None:
        """Queue ready-made lines (incident, prober points) in :attr:`precision`; never blocks."""
        if self._closed:
            self._stats.dropped_points += len(lines)
            self._log("closed", logging.ERROR, "writer is closed: %d points submitted after close were dropped", len(lines))
            return
        self._buffer.extend(lines)
        if len(self._buffer) >= self.batch_size and self._wake is not None:
            self._wake.set()

    async def flush(self) -> None:
        """Journal the buffer, send everything pending now and wait for the sends (tests, shutdown)."""
        await self._journal()
        while True:
            self._send_pending(force=True)
            if not self._in_flight:
                return
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)
            if not self._pending:
                return

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is buffered, in flight, in memory or in the spool (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await self.flush()
            if not (self._buffer or self._in_flight or self._pending or self._memory or self._spool.points):
                return True
            await asyncio.sleep(0.02)
        return False

    async def close(self, timeout: float = 10.0) -> None:
        """Flush within ``timeout`` seconds; whatever is not written by then stays in the spool."""
        if self._closed or not self._started:
            self._closed = True
            return
        assert self._stop is not None and self._wake is not None and self._replay_wake is not None
        deadline = time.monotonic() + max(timeout, 0.0)
        self._closing = True
        self._stop.set()
        self._wake.set()
        self._replay_wake.set()
        # The replay's batch is in the spool (or in memory) already: stop it at once. The
        # journal task ends after its current commit.
        if self._replay_task is not None:
            await _cancel(self._replay_task)
        if self._flush_task is not None:
            await asyncio.wait([self._flush_task], timeout=max(deadline - time.monotonic(), 0.001))
            await _cancel(self._flush_task)
        self._closed = True  # later submits are refused (and counted)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.001)):
                await self.flush()
        # Sends still running: cancel them; their rows stay in the spool (a duplicate is harmless).
        leftovers = [batch for batch in self._in_flight.values() if batch is not None]
        for task in list(self._in_flight):
            await _cancel(task)
        self._in_flight.clear()
        if self._buffer:  # the flush timed out before journaling it
            lines, self._buffer = self._buffer, []
            leftovers.append(SpooledBatch((), time.time(), "\n".join(lines), len(lines), self.precision))
        leftovers.extend(self._pending)
        leftovers.extend(self._memory)
        if self._replaying is not None:
            leftovers.append(self._replaying)
        self._pending.clear()
        self._memory.clear()
        for batch in leftovers:
            if not batch.ids:
                await self._last_chance(batch)
        if self._sink is not None:
            with contextlib.suppress(Exception):
                await self._sink.close()
        if self._spool.points and not self._ephemeral:
            log.info("closed with %d points in the spool at %s", self._spool.points, self._spool.path)
        await self._spool.close()

    # -- journal -------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        assert self._wake is not None and self._stop is not None
        # The loops end on `_stop` as well as on cancellation (see prober.waiting).
        while not self._stop.is_set():
            await wait_event(self._wake, self.journal_interval)
            self._wake.clear()
            try:
                self._send_pending()  # free slots need not wait for the commit below
                await self._journal()
                self._send_pending()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the loop die
                log.exception("unexpected error in the writer's journal loop")

    async def _journal(self) -> None:
        """Commit the buffer to the spool in one transaction and queue it for sending."""
        if self._unforgotten:
            await self._retry_forget()
        if not self._buffer:
            return
        lines, self._buffer = self._buffer, []
        size = self.batch_size
        chunks = [("\n".join(lines[i : i + size]), len(lines[i : i + size])) for i in range(0, len(lines), size)]
        try:
            ids = await self._commit(chunks)
        except asyncio.CancelledError:
            self._buffer[:0] = lines  # for close() (if the commit made it, a duplicate is harmless)
            raise
        now = time.time()
        for k, (body, points) in enumerate(chunks):
            self._pending.append(SpooledBatch((ids[k],) if ids else (), now, body, points, self.precision))
            self._pending_points += points
            if ids:
                self._fresh_points += points

    async def _commit(self, chunks: list[tuple[str, int]]) -> list[int] | None:
        """The new rows' ids (held for the direct send), or ``None`` when the spool cannot take them."""
        if not await self._spool_usable():
            return None
        try:
            # Shielded: a cancellation (shutdown) must not abort a commit queued on the spool thread.
            ids, dropped = await asyncio.shield(self._spool.append(chunks, self.precision, hold=True))
        except (sqlite3.Error, OSError, RuntimeError) as exc:
            self._spool_error("write to", exc)
            return None
        self._count_spool_drops(dropped)
        if self._spool_failing:
            self._spool_failing = False
            log.warning("spool %s works again; new results are durable again", self._spool.path)
        return ids

    async def _open_spool(self) -> bool:
        try:
            await self._spool.open()
        except (sqlite3.Error, OSError, RuntimeError) as exc:
            self._spool_error("open", exc)
            return False
        return True

    async def _spool_usable(self, force: bool = False) -> bool:
        """Whether to try the spool now (after a failure, not before ``SPOOL_RETRY_INTERVAL``)."""
        if self._spool_failing and not force and time.monotonic() < self._spool_retry_at:
            return False
        if self._spool.available:
            return True
        if not await self._open_spool():
            return False
        if self._spool.points and self._replay_wake is not None:
            self._replay_wake.set()
        return True

    def _spool_error(self, action: str, exc: BaseException) -> None:
        self._spool_failing = True
        self._spool_retry_at = time.monotonic() + SPOOL_RETRY_INTERVAL
        self._stats.write_errors += 1
        self._stats.last_error = f"spool: {type(exc).__name__}: {exc}"
        self._log(
            "spool-error",
            logging.ERROR,
            "cannot %s the spool %s (%s: %s): new results are not durable; they are kept in memory "
            "(at most %d points) until InfluxDB takes them; retrying the spool every %.0f s",
            action,
            self._spool.path,
            type(exc).__name__,
            exc,
            self.memory_max_points,
            SPOOL_RETRY_INTERVAL,
        )

    def _count_spool_drops(self, dropped: int) -> None:
        if not dropped:
            return
        self._stats.dropped_points += dropped
        self._log(
            "spool-full",
            logging.WARNING,
            "spool full (%d MB limit): dropped the %d oldest points (%d dropped in total)",
            self._spool.max_bytes // (1024 * 1024),
            dropped,
            self._stats.dropped_points,
        )

    # -- sending -------------------------------------------------------------------

    def _send_pending(self, force: bool = False) -> None:
        """Start sends of pending batches when due; hand what cannot be sent to the replay.

        Slots left free help the replay drain the spool while InfluxDB is healthy.
        """
        if self._sink is None or not self._healthy:
            self._release(list(self._pending), fresh=True)
            self._pending.clear()
            self._pending_points = 0
            return
        now = time.monotonic()
        due = force or self._closing or self._pending_points >= self.batch_size
        if self._pending and (due or now - self._last_send >= self.flush_interval):
            self._last_send = now
            while self._pending and len(self._in_flight) < self._max_in_flight:
                batch = self._take_pending()
                self._start_send(self._send_batch(batch, fresh=True), batch)
            # Bounded memory: what the next sends will not take waits in the spool.
            overflow: list[SpooledBatch] = []
            while self._pending and self._pending_points > self.memory_max_points:
                batch = self._pending.popleft()
                self._pending_points -= batch.points
                overflow.append(batch)
            self._release(overflow, fresh=True)
        while (
            not self._pending
            and not self._closing
            and len(self._in_flight) < self._max_in_flight
            and self._spool.available
            and self._spool.waiting_points > 0
        ):
            self._start_send(self._send_from_spool())

    def _start_send(self, send: Coroutine[None, None, object], batch: SpooledBatch | None = None) -> None:
        task = asyncio.create_task(send)
        self._in_flight[task] = batch
        task.add_done_callback(self._send_done)

    def _take_pending(self) -> SpooledBatch:
        """Up to ``batch_size`` points of pending rows, all journaled or all in memory only."""
        rows = [self._pending.popleft()]
        total = rows[0].points
        durable = bool(rows[0].ids)
        while self._pending:
            nxt = self._pending[0]
            if total + nxt.points > self.batch_size or bool(nxt.ids) != durable:
                break
            rows.append(self._pending.popleft())
            total += nxt.points
        self._pending_points -= total
        return merge_batches(rows)

    def _send_done(self, task: asyncio.Task) -> None:
        if task.cancelled():
            return  # close() deals with it
        self._in_flight.pop(task, None)
        exc = task.exception()
        if exc is not None:
            log.error("unexpected error while writing a batch: %s: %s", type(exc).__name__, exc)
        if self._wake is not None and (self._pending or self._spool.waiting_points):
            self._wake.set()  # a slot is free

    async def _send_batch(self, batch: SpooledBatch, fresh: bool = False) -> SpooledBatch:
        """Write a batch straight to the sink (it is in the spool, held, or only in memory).

        ``fresh``: new points on their first send (they count as spooled only once it fails).
        """
        assert self._sink is not None
        try:
            result = await self._sink.write(batch.lines, batch.points)
        except Exception:
            self._release([batch], fresh)
            raise
        if result.status is WriteStatus.OK:
            self._stats.written_points += batch.points
            await self._forget(batch, fresh)
        elif result.status is WriteStatus.RETRY:
            self._failed(result)
            self._healthy = False
            self._release([batch], fresh)
        else:
            await self._rejected(result, batch, fresh)
        return batch

    async def _send_from_spool(self) -> SpooledBatch | None:
        """Take the oldest spooled rows nobody is sending, and send them."""
        try:
            batch = await self._spool.take_oldest(self.batch_size)
        except (sqlite3.Error, OSError, RuntimeError) as exc:
            self._spool_error("read", exc)
            return None
        if batch is None:
            return None
        batch = SpooledBatch(batch.ids, batch.created, rescale_lines(batch.lines, batch.precision, self.precision),
                             batch.points, self.precision)
        return await self._send_batch(batch)

    def _unfresh(self, batch: SpooledBatch, fresh: bool) -> None:
        if fresh and batch.ids:
            self._fresh_points -= batch.points

    def _release(self, batches: list[SpooledBatch], fresh: bool = False) -> None:
        """Hand batches over to the replay: journaled ones stay in the spool, the others in memory."""
        if not batches:
            return
        for batch in batches:
            self._unfresh(batch, fresh)
            if batch.ids:
                self._spool.release_soon(batch.ids)
            else:
                self._remember(batch)
        if self._replay_wake is not None and self._sink is not None:
            self._replay_wake.set()

    def _remember(self, batch: SpooledBatch) -> None:
        """Keep a batch the spool could not take, within ``memory_max_points`` (oldest out first)."""
        self._memory.append(batch)
        self._memory_points += batch.points
        dropped = 0
        while self._memory_points > self.memory_max_points and len(self._memory) > 1:
            old = self._memory.popleft()
            self._memory_points -= old.points
            dropped += old.points
        if dropped:
            self._stats.dropped_points += dropped
            self._log(
                "memory-full",
                logging.ERROR,
                "spool unusable and InfluxDB not taking writes: dropped the %d oldest points kept in memory "
                "(%d dropped in total)",
                dropped,
                self._stats.dropped_points,
            )

    async def _forget(self, batch: SpooledBatch, fresh: bool = False) -> None:
        """Delete a written batch from the spool; if that fails, keep it held and try again later."""
        if not batch.ids:
            return
        self._unfresh(batch, fresh)
        try:
            await self._spool.delete(batch)
        except (sqlite3.Error, OSError, RuntimeError) as exc:
            self._spool.hold_soon(dict.fromkeys(batch.ids, 0))  # written: never to be replayed
            self._unforgotten.append(batch)
            self._spool_error("delete from", exc)

    async def _retry_forget(self) -> None:
        if not await self._spool_usable():
            return
        batches, self._unforgotten = self._unforgotten, []
        for batch in batches:
            await self._forget(batch)

    async def _last_chance(self, batch: SpooledBatch) -> None:
        """At close: a batch only in memory goes to the spool if it can, else it is lost (and counted)."""
        try:
            if not await self._spool_usable(force=True):
                raise RuntimeError(self._stats.last_error or "spool unavailable")
            await self._spool.put(batch.lines, batch.points, batch.precision)
        except (sqlite3.Error, OSError, RuntimeError) as exc:
            self._stats.dropped_points += batch.points
            log.error("closing: %d points could be neither written nor spooled (%s): dropped", batch.points, exc)

    def _failed(self, result: WriteResult) -> None:
        self._stats.write_errors += 1
        self._stats.last_error = result.message
        self._log(
            "retry",
            logging.WARNING,
            "InfluxDB write to %s failed (%s); keeping results in the spool (%d points) and retrying",
            self._sink.description if self._sink else "?",
            result.message,
            self._spool.points,
        )

    async def _rejected(self, result: WriteResult, batch: SpooledBatch, fresh: bool = False) -> None:
        self._unfresh(batch, fresh)
        self._stats.write_errors += 1
        self._stats.last_error = result.message
        self._stats.dropped_points += result.dropped
        if result.status is WriteStatus.PARTIAL:
            self._stats.written_points += max(batch.points - result.dropped, 0)
        try:
            await self._spool.reject(batch.lines, batch.points, result.message, batch if batch.ids else None)
        except (sqlite3.Error, OSError, RuntimeError) as exc:
            log.error("cannot keep a rejected batch in %s: %s", self._spool.path, exc)
        self._log(
            "rejected",
            logging.ERROR,
            "InfluxDB %s a batch of %d points (%d dropped, kept in the spool's rejected table): %s",
            "partly refused" if result.status is WriteStatus.PARTIAL else "refused",
            batch.points,
            result.dropped,
            result.message,
        )

    # -- replay --------------------------------------------------------------------

    def _replay_wait(self, state: RetryCallState) -> float:
        """Exponential backoff with jitter, or the server's ``Retry-After`` when longer (capped)."""
        delay = self._backoff(state)
        retry_after = state.outcome.result().retry_after if state.outcome is not None else None
        if retry_after is not None:
            delay = max(delay, min(retry_after, 10 * max(self.backoff_max, 1.0)))
        return delay

    def _replay_failed(self, state: RetryCallState) -> None:
        assert state.outcome is not None
        self._failed(state.outcome.result())
        self._healthy = False

    async def _write_spooled(self, batch: SpooledBatch) -> tuple[WriteResult, int] | None:
        """Write one spooled batch, retrying while InfluxDB cannot take it.

        Returns the answer that ended the retries and the number of attempts it took, or
        ``None`` when the writer stopped while waiting for the next attempt.
        """
        assert self._stop is not None and self._sink is not None
        stop = self._stop

        async def sleep_unless_stopped(seconds: float) -> None:
            if await wait_event(stop, seconds):
                raise _Stopped

        retrying = AsyncRetrying(
            retry=retry_if_result(lambda r: r.status is WriteStatus.RETRY),
            wait=self._replay_wait,
            before_sleep=self._replay_failed,
            sleep=sleep_unless_stopped,
            stop=stop_never,
        )
        body = rescale_lines(batch.lines, batch.precision, self.precision)
        try:
            result = await retrying(self._sink.write, body, batch.points)
        except _Stopped:
            return None
        return result, retrying.statistics.get("attempt_number", 1)

    async def _next_to_replay(self) -> SpooledBatch | None:
        """The oldest batch kept in memory, else the oldest spooled rows nobody is sending."""
        if self._memory:
            batch = self._memory.popleft()
            self._memory_points -= batch.points
            self._replaying = batch  # out of the deque: never dropped while being written
            return batch
        if not self._spool.available:
            return None
        try:
            return await self._spool.take_oldest(self.batch_size)
        except (sqlite3.Error, OSError, RuntimeError) as exc:
            self._spool_error("read", exc)
            return None

    async def _replay_loop(self) -> None:
        assert self._replay_wake is not None and self._stop is not None and self._sink is not None
        while not self._stop.is_set():
            self._replay_wake.clear()
            batch = await self._next_to_replay()
            if batch is None:
                if not self._healthy:
                    self._healthy = True
                # Woken by new work; also every few seconds, for a spool that failed to read.
                await wait_event(self._replay_wake, SPOOL_RETRY_INTERVAL)
                continue
            answer = await self._write_spooled(batch)
            if answer is None:
                break
            result, attempts = answer
            self._replaying = None
            if result.status is WriteStatus.OK:
                await self._forget(batch)
                self._stats.written_points += batch.points
                if not self._healthy or attempts > 1:
                    self._log("recovered", logging.INFO, "InfluxDB %s answers again; replaying %d spooled points",
                              self._sink.description, self._spool.points)
                self._healthy = True
            else:
                await self._rejected(result, batch)


async def _cancel(task: asyncio.Task) -> None:
    """Cancel ``task`` and wait for it to end."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
