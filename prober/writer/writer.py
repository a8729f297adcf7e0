"""The result writer: batches points, writes them to InfluxDB, spools what it cannot write.

Lifecycle::

    writer = ResultWriter(config.influxdb)       # None: the embedded default, spool only
    await writer.start()                          # opens the spool, replays what it holds
    writer.submit(result)                         # synchronous, never blocks or raises
    ...
    await writer.close(timeout=10)                # flush; whatever is not written is spooled

Flow of a batch::

    submit ─▶ buffer ─(batch_size points or flush_interval)─▶ sink ─ok──▶ written_points
                                                               │
                           retry (down, 5xx, 429, 401/403) ────┴─▶ spool ─▶ replay task
                           rejected / partial (400, 422) ─────────▶ spool.rejected,
                                                                    dropped_points

After a failed write the sink is *unhealthy*: new batches go straight to the spool and
the replay task alone talks to the server, oldest batch first, with exponential backoff
and jitter between attempts (``backoff_max``, ~60 s, at most; a ``Retry-After`` is
honoured), through tenacity like the notifiers' retries. Its first success makes the sink healthy again: new batches are written
directly while the spool drains. Writing a point twice is harmless (same series and
timestamp), so a batch whose fate is unknown (cancelled at shutdown, answer lost) is
spooled and written again rather than risked.

The spool survives crashes: a later start finds it and replays it, into whatever
``[influxdb]`` that start has (timestamps are rescaled if the precision changed).
Memory: the in-memory buffer is bounded only by the sink's throughput while it is
healthy; when it is not, every flush goes to disk.

Logs (``prober.writer``) are rate-limited per kind of event and never contain tokens or
passwords: they name the server by :meth:`InfluxDBConfig.describe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_never, wait_exponential_jitter

from prober.config.influxdb import InfluxDBConfig, SpoolConfig
from prober.journey.results import JourneyResult
from prober.waiting import wait_event
from prober.writer.points import Precision, journey_lines, rescale_lines
from prober.writer.sinks import Sink, WriteResult, WriteStatus, make_sink
from prober.writer.spool import AsyncSpool, SpooledBatch

__all__ = ["ResultWriter", "WriterStats"]

log = logging.getLogger("prober.writer")


@dataclass(slots=True)
class WriterStats:
    """Counters for the ``prober`` measurement (field names match :func:`prober_point`)."""

    written_points: int = 0
    """Points the server accepted since start (replayed ones included)."""
    spooled_points: int = 0
    """Points currently waiting in the spool."""
    dropped_points: int = 0
    """Points lost for good: refused by the server, or pushed out of a full spool."""
    write_errors: int = 0
    """Failed write attempts (each retry counts)."""
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
    ``backoff_base``/``backoff_max`` bound the replay backoff in seconds.
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
    ) -> None:
        settings = config.spool if config is not None else (spool or SpoolConfig())
        self.config = config
        self.precision: Precision = config.precision if config is not None else "ns"
        """Timestamp precision of the lines this writer produces (and expects from ``submit_lines``)."""
        self.spool_dir = Path(spool_dir if spool_dir is not None else settings.spool_dir)
        max_mb = spool_max_mb if spool_max_mb is not None else settings.spool_max_mb
        self.batch_size = batch_size or settings.batch_size
        self.flush_interval = flush_interval or settings.flush_interval
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._backoff = wait_exponential_jitter(multiplier=backoff_base, max=backoff_max, jitter=backoff_base)
        self._sink: Sink | None = sink if sink is not None else (make_sink(config) if config is not None else None)
        self._spool = AsyncSpool(self.spool_dir, int(max_mb * 1024 * 1024))
        self._buffer: list[str] = []
        self._stats = WriterStats()
        self._log = _RateLimitedLog(log_interval)
        self._healthy = True
        self._started = False
        self._closing = False
        self._closed = False
        self._wake: asyncio.Event | None = None
        self._replay_wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._flush_task: asyncio.Task | None = None
        self._replay_task: asyncio.Task | None = None
        self._in_flight: dict[asyncio.Task, tuple[str, int]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._max_in_flight = max_in_flight

    # -- public surface ------------------------------------------------------------

    @property
    def stats(self) -> WriterStats:
        """A snapshot of the counters."""
        s = self._stats
        return WriterStats(s.written_points, self._spool.points, s.dropped_points, s.write_errors, s.last_error)

    @property
    def spool_path(self) -> Path:
        """The SQLite spool file."""
        return self._spool.path

    async def start(self) -> None:
        """Open the spool, start the sink, the flush task and (if needed) the replay."""
        if self._started:
            return
        self._wake = asyncio.Event()
        self._replay_wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._slots = asyncio.Semaphore(self._max_in_flight)
        await self._spool.open()
        if self._sink is None:
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
        self._flush_task = asyncio.create_task(self._flush_loop(), name="prober-writer-flush")
        self._started = True

    def submit(self, result: JourneyResult) -> None:
        """Queue a journey's points (one ``check`` point, one ``step`` point per executed step)."""
        self.submit_lines(journey_lines(result, self.precision))

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
        """Send the buffer now and wait for the sends in flight (tests, shutdown)."""
        await self._flush_buffer()
        if self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until the buffer, the sends in flight and the spool are empty (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await self.flush()
            if not self._buffer and not self._in_flight and self._spool.points == 0:
                return True
            await asyncio.sleep(0.02)
        return False

    async def close(self, timeout: float = 10.0) -> None:
        """Flush within ``timeout`` seconds; whatever is not written by then is spooled."""
        if self._closed or not self._started:
            self._closed = True
            return
        assert self._stop is not None
        deadline = time.monotonic() + max(timeout, 0.0)
        self._closing = True
        self._stop.set()
        for task in (self._flush_task, self._replay_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._closed = True  # later submits are refused (and counted)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._flush_buffer(), max(deadline - time.monotonic(), 0.001))
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=max(deadline - time.monotonic(), 0.001))
        # Sends still running: cancel them and spool their batches (a duplicate is harmless).
        leftovers = list(self._in_flight.items())
        for task, _ in leftovers:
            task.cancel()
        for task, (body, points) in leftovers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            await self._to_spool(body, points)
        self._in_flight.clear()
        # Anything left in the buffer (the flush timed out before taking it).
        while self._buffer:
            chunk, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size :]
            await self._to_spool("\n".join(chunk), len(chunk))
        if self._sink is not None:
            with contextlib.suppress(Exception):
                await self._sink.close()
        if self._spool.points:
            log.info("closed with %d points in the spool at %s", self._spool.points, self._spool.path)
        await self._spool.close()

    # -- batching ------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        assert self._wake is not None and self._stop is not None
        # The loops end on `_stop` as well as on cancellation (see prober.waiting).
        while not self._stop.is_set():
            await wait_event(self._wake, self.flush_interval)
            self._wake.clear()
            try:
                await self._flush_buffer()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the loop die
                log.exception("unexpected error in the writer's flush loop")

    async def _flush_buffer(self) -> None:
        assert self._slots is not None
        while self._buffer:
            await self._slots.acquire()  # take the chunk only once a slot is ours
            chunk = self._buffer[: self.batch_size]
            del self._buffer[: self.batch_size]
            if not chunk:
                self._slots.release()
                break
            body = "\n".join(chunk)
            task = asyncio.create_task(self._send_new(body, len(chunk)))
            self._in_flight[task] = (body, len(chunk))
            task.add_done_callback(self._send_done)

    def _send_done(self, task: asyncio.Task) -> None:
        assert self._slots is not None
        self._slots.release()
        if not task.cancelled():
            self._in_flight.pop(task, None)  # a cancelled one is spooled by close()

    async def _send_new(self, body: str, points: int) -> None:
        if self._sink is None or not self._healthy:
            await self._to_spool(body, points)
            return
        result = await self._sink.write(body, points)
        if result.status is WriteStatus.OK:
            self._stats.written_points += points
        elif result.status is WriteStatus.RETRY:
            self._failed(result)
            self._healthy = False
            await self._to_spool(body, points)
        else:
            await self._rejected(result, body, points, None)

    async def _to_spool(self, body: str, points: int) -> None:
        try:
            dropped = await self._spool.put(body, points, self.precision)
        except (sqlite3.Error, OSError, RuntimeError) as exc:
            self._stats.dropped_points += points
            self._log("spool-error", logging.ERROR, "cannot spool %d points to %s: %s", points, self._spool.path, exc)
            return
        if dropped:
            self._stats.dropped_points += dropped
            self._log(
                "spool-full",
                logging.WARNING,
                "spool full (%d MB limit): dropped the %d oldest points (%d dropped in total)",
                self._spool.max_bytes // (1024 * 1024),
                dropped,
                self._stats.dropped_points,
            )
        if self._replay_wake is not None and self._sink is not None:
            self._replay_wake.set()

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

    async def _rejected(self, result: WriteResult, body: str, points: int, batch: SpooledBatch | None) -> None:
        self._stats.write_errors += 1
        self._stats.last_error = result.message
        self._stats.dropped_points += result.dropped
        if result.status is WriteStatus.PARTIAL:
            self._stats.written_points += max(points - result.dropped, 0)
        try:
            await self._spool.reject(body, points, result.message, batch)
        except (sqlite3.Error, OSError, RuntimeError) as exc:
            log.error("cannot keep a rejected batch in %s: %s", self._spool.path, exc)
        self._log(
            "rejected",
            logging.ERROR,
            "InfluxDB %s a batch of %d points (%d dropped, kept in the spool's rejected table): %s",
            "partly refused" if result.status is WriteStatus.PARTIAL else "refused",
            points,
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

    async def _replay_loop(self) -> None:
        assert self._replay_wake is not None and self._stop is not None and self._sink is not None
        while not self._stop.is_set():
            self._replay_wake.clear()
            batch = await self._spool.oldest()
            if batch is None:
                if not self._healthy:
                    self._healthy = True
                await self._replay_wake.wait()
                continue
            answer = await self._write_spooled(batch)
            if answer is None:
                break
            result, attempts = answer
            if result.status is WriteStatus.OK:
                await self._spool.delete(batch)
                self._stats.written_points += batch.points
                if not self._healthy or attempts > 1:
                    self._log("recovered", logging.INFO, "InfluxDB %s answers again; replaying %d spooled points",
                              self._sink.description, self._spool.points)
                self._healthy = True
            else:
                await self._rejected(result, batch.lines, batch.points, batch)
