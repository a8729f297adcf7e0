"""The result writer: journals points to the spool, writes them to InfluxDB, replays the rest.

Lifecycle::

    writer = ResultWriter(config.influxdb)       # None: the embedded default, spool only
    await writer.start()                          # opens the spool, replays what it holds
    writer.submit(result)                         # synchronous, never blocks or raises
    ...
    await writer.close(timeout=10)                # flush; whatever is not written stays spooled

Flow of a point, and the module that owns each part::

    submit ─▶ buffer ─(every journal_interval, 50 ms)─▶ spool (one commit per tick) ─▶ pending
    (writer.py: the journal)                            (backlog.py)                  (queue.py)
                                                                                         │
        (batch_size points or flush_interval) ─▶ sink ─ok──────────────▶ delete from spool
                                                  ├─ retry (down, 5xx, 429, 401/403) ─▶ replay task (replay.py)
                                                  └─ rejected / partial (400, 422) ───▶ spool.rejected,
                                                                                        dropped_points

Its tuning is one frozen :class:`~prober.writer.settings.WriterSettings` (from
``[influxdb]`` unless given), and its one seam for tests is the ``sink`` (anything with
``start``, ``write`` and ``close``: :class:`~prober.writer.sinks.Sink`).

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
import time
from pathlib import Path

from prober.config.influxdb import InfluxDBConfig, SpoolConfig
from prober.results import JourneyResult
from prober.waiting import wait_event
from prober.writer.backlog import Backlog
from prober.writer.points import Precision, journey_lines
from prober.writer.queue import BatchQueue, cancel_quietly
from prober.writer.replay import Replay
from prober.writer.settings import JOURNAL_INTERVAL, MEMORY_MAX_POINTS, SPOOL_RETRY_INTERVAL, WriterSettings
from prober.writer.sinks import Sink, make_sink
from prober.writer.spool import AsyncSpool, SpooledBatch
from prober.writer.stats import RateLimitedLog, WriterStats, log

__all__ = ["JOURNAL_INTERVAL", "MEMORY_MAX_POINTS", "SPOOL_RETRY_INTERVAL", "ResultWriter", "WriterSettings",
           "WriterStats"]


class ResultWriter:
    """Writes journey results to InfluxDB without losing them.

    ``config`` is the ``[influxdb]`` section, or ``None`` for the embedded default (every
    batch goes to the spool, to be replayed by a later start that has ``[influxdb]``).
    ``settings`` is the writer's tuning (default: what ``config`` sets, see
    :class:`~prober.writer.settings.WriterSettings`); ``spool_dir`` overrides the
    configured spool directory. ``sink`` replaces the sink built from ``config`` (tests,
    benchmarks). ``ephemeral`` says the spool is thrown away at exit (``prober demo``),
    so nothing promises that a later start will write it. ``instance`` is the
    ``instance`` tag of the journey points.
    """

    def __init__(
        self,
        config: InfluxDBConfig | None,
        *,
        settings: WriterSettings | None = None,
        spool_dir: str | Path | None = None,
        sink: Sink | None = None,
        ephemeral: bool = False,
        instance: str = "",
    ) -> None:
        self.config = config
        self.settings = settings if settings is not None else WriterSettings.from_config(config)
        self.precision: Precision = config.precision if config is not None else "ns"
        """Timestamp precision of the lines this writer produces (and expects from ``submit_lines``)."""
        self.instance = instance
        """The ``instance`` tag of the journey points (``[prober] instance``); none when empty."""
        spool = config.spool if config is not None else SpoolConfig()
        self.spool_dir = Path(spool_dir if spool_dir is not None else spool.spool_dir)
        self._ephemeral = ephemeral
        self._sink: Sink | None = sink if sink is not None else (make_sink(config) if config is not None else None)
        self._stats = WriterStats()
        self._log = RateLimitedLog(self.settings.log_interval)
        self._backlog = Backlog(AsyncSpool(self.spool_dir, self.settings.spool_max_bytes), self.settings,
                                self._stats, self._log)
        self._replay = (
            Replay(self._sink, self._backlog, self.settings, self.precision, self._log) if self._sink else None
        )
        if self._replay is not None:
            self._backlog.on_release = self._replay.wake
        self._queue = BatchQueue(self._sink, self._replay, self._backlog, self.settings, self.precision,
                                 on_slot_free=self._wake_journal)
        self._buffer: list[str] = []  # submitted since the last journal commit
        self._started = False
        self._closed = False
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._journal_task: asyncio.Task | None = None

    # -- public surface ------------------------------------------------------------

    @property
    def stats(self) -> WriterStats:
        """A snapshot of the counters."""
        s = self._stats
        return WriterStats(s.written_points, self._backlog.spooled_points, s.dropped_points, s.write_errors,
                           s.last_error)

    @property
    def queued_points(self) -> int:
        """Points held in memory on their way to InfluxDB: submitted and not yet
        journaled, journaled and waiting for their first send, and (while the spool
        fails) waiting in memory for InfluxDB. The spool's own are :attr:`stats`."""
        return len(self._buffer) + self._queue.pending_points + self._backlog.memory_points

    @property
    def healthy(self) -> bool:
        """False from a failed write to InfluxDB until a write succeeds again."""
        return self._replay is None or self._replay.healthy

    @property
    def spool_path(self) -> Path:
        """The SQLite spool file."""
        return self._backlog.spool.path

    @property
    def ephemeral(self) -> bool:
        """The spool is thrown away at exit (``prober demo``): nothing is kept for later."""
        return self._ephemeral

    async def start(self) -> None:
        """Open the spool, start the sink, the journal task and (if needed) the replay."""
        if self._started:
            return
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._queue.start()
        await self._backlog.open()
        spool = self._backlog.spool
        if self._sink is None and self._ephemeral:
            log.info("results are kept in a temporary spool at %s, removed at exit", spool.path)
        elif self._sink is None:
            log.warning(
                "no [influxdb] section: results are kept in the local spool only, at %s "
                "(%d points there); a start with [influxdb] will write them",
                spool.path,
                spool.points,
            )
        else:
            assert self._replay is not None
            await self._sink.start()
            log.info("writing results to InfluxDB %s; spool at %s", self._sink.description, spool.path)
            if spool.points:
                log.info("replaying %d spooled points (%d batches)", spool.points, spool.batches)
            self._replay.start(self._stop, work_waiting=spool.points > 0)
        self._journal_task = asyncio.create_task(self._journal_loop(), name="prober-writer-journal")
        self._started = True

    def submit(self, result: JourneyResult) -> None:
        """Queue a journey's points (one ``check`` point, one ``step`` point per executed step)."""
        self.submit_lines(journey_lines(result, self.precision, self.instance))

    def submit_lines(self, lines: list[str]) -> None:
        """Queue ready-made lines (incident, prober points) in :attr:`precision`; never blocks."""
        if self._closed:
            self._stats.dropped_points += len(lines)
            self._log("closed", logging.ERROR, "writer is closed: %d points submitted after close were dropped",
                      len(lines))
            return
        self._buffer.extend(lines)
        if len(self._buffer) >= self.settings.batch_size and self._wake is not None:
            self._wake.set()

    async def flush(self) -> None:
        """Journal the buffer, send everything pending now and wait for the sends (tests, shutdown)."""
        await self._journal()
        await self._queue.flush()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is buffered, in flight, in memory or in the spool (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await self.flush()
            if not (self._buffer or self._queue.in_flight or self._queue.pending) and self._backlog.empty:
                return True
            await asyncio.sleep(0.02)
        return False

    async def close(self, timeout: float = 10.0) -> None:
        """Flush within ``timeout`` seconds; whatever is not written by then stays in the spool."""
        if self._closed or not self._started:
            self._closed = True
            return
        assert self._stop is not None and self._wake is not None
        deadline = time.monotonic() + max(timeout, 0.0)
        await self._stop_tasks(deadline)
        self._closed = True  # later submits are refused (and counted)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.001)):
                await self.flush()
        await self._keep_leftovers()
        if self._sink is not None:
            with contextlib.suppress(Exception):
                await self._sink.close()
        spool = self._backlog.spool
        if spool.points and not self._ephemeral:
            log.info("closed with %d points in the spool at %s", spool.points, spool.path)
        await spool.close()

    # -- closing -------------------------------------------------------------------

    async def _stop_tasks(self, deadline: float) -> None:
        """Stop the replay at once (its batch is in the spool, or in memory, already) and the
        journal task after its current commit."""
        assert self._stop is not None and self._wake is not None
        self._queue.closing = True
        self._stop.set()
        self._wake.set()
        if self._replay is not None:
            self._replay.wake()
            if self._replay.task is not None:
                await cancel_quietly(self._replay.task)
        if self._journal_task is not None:
            await asyncio.wait([self._journal_task], timeout=max(deadline - time.monotonic(), 0.001))
            await cancel_quietly(self._journal_task)

    async def _keep_leftovers(self) -> None:
        """What the flush did not write goes to the spool: the batches of the sends still
        running (cancelled now: a duplicate is harmless), the buffer, the queue and memory."""
        leftovers = await self._queue.cancel()
        if self._buffer:  # the flush timed out before journaling it
            lines, self._buffer = self._buffer, []
            leftovers.append(SpooledBatch((), time.time(), "\n".join(lines), len(lines), self.precision))
        leftovers.extend(self._queue.take_pending())
        leftovers.extend(self._backlog.take_memory())
        for batch in leftovers:
            if not batch.ids:
                await self._backlog.last_chance(batch)

    # -- journal -------------------------------------------------------------------

    def _wake_journal(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _journal_loop(self) -> None:
        assert self._wake is not None and self._stop is not None
        # The loops end on `_stop` as well as on cancellation (see prober.waiting).
        while not self._stop.is_set():
            await wait_event(self._wake, self.settings.journal_every)
            self._wake.clear()
            try:
                self._queue.send()  # free slots need not wait for the commit below
                await self._journal()
                self._queue.send()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the loop die
                log.exception("unexpected error in the writer's journal loop")

    async def _journal(self) -> None:
        """Commit the buffer to the spool in one transaction and queue it for sending."""
        await self._backlog.retry_forget()
        if not self._buffer:
            return
        lines, self._buffer = self._buffer, []
        size = self.settings.batch_size
        chunks = [("\n".join(lines[i : i + size]), len(lines[i : i + size])) for i in range(0, len(lines), size)]
        try:
            ids = await self._backlog.commit(chunks, self.precision)
        except asyncio.CancelledError:
            self._buffer[:0] = lines  # for close() (if the commit made it, a duplicate is harmless)
            raise
        now = time.time()
        for k, (body, points) in enumerate(chunks):
            self._queue.add(SpooledBatch((ids[k],) if ids else (), now, body, points, self.precision))
