"""The batch queue: journaled batches on their way to InfluxDB, sent directly.

New batches wait here once journaled and are sent when ``batch_size`` points are
pending or ``flush_interval`` has passed, at most ``max_in_flight`` writes at once;
slots left free help the replay drain the spool while InfluxDB is healthy. At most
``memory_max_points`` pending points wait in memory (beyond that they wait in the spool,
for the replay). A batch whose send fails goes to the replay; while the sink is
unhealthy (:attr:`Replay.healthy`), or when there is no sink, every batch does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Coroutine

from prober.writer.backlog import Backlog
from prober.writer.points import Precision, rescale_lines
from prober.writer.replay import Replay
from prober.writer.settings import WriterSettings
from prober.writer.sinks import Sink, WriteStatus
from prober.writer.spool import SpooledBatch, merge_batches
from prober.writer.stats import log

__all__ = ["BatchQueue", "cancel_quietly"]


class BatchQueue:
    """Sends journaled batches through ``sink`` (``None``: hands them all to the spool).

    ``on_slot_free`` is called when a send ends and more is waiting (it wakes the journal
    task, which sends again).
    """

    def __init__(self, sink: Sink | None, replay: Replay | None, backlog: Backlog, settings: WriterSettings,
                 precision: Precision, on_slot_free: Callable[[], None]) -> None:
        self.sink = sink
        self.replay = replay
        self.backlog = backlog
        self.settings = settings
        self.precision = precision
        self.on_slot_free = on_slot_free
        self.pending: deque[SpooledBatch] = deque()  # journaled, waiting for a send
        self.pending_points = 0
        # Sends running, with their batch (None: rows taken from the spool, which keeps them).
        self.in_flight: dict[asyncio.Task, SpooledBatch | None] = {}
        self.closing = False
        """Set at close: everything pending is due, the spool is left to the next start."""
        self._last_send = 0.0

    def start(self) -> None:
        """The ``flush_interval`` of the first batch counts from now."""
        self._last_send = time.monotonic()

    def add(self, batch: SpooledBatch) -> None:
        """Queue a journaled batch (or one only in memory, when the spool failed)."""
        self.pending.append(batch)
        self.pending_points += batch.points

    def send(self, force: bool = False) -> None:
        """Start sends of pending batches when due; hand what cannot be sent to the replay.

        Slots left free help the replay drain the spool while InfluxDB is healthy.
        """
        settings = self.settings
        if self.sink is None or self.replay is None or not self.replay.healthy:
            self.backlog.release(list(self.pending), fresh=True)
            self.pending.clear()
            self.pending_points = 0
            return
        now = time.monotonic()
        due = force or self.closing or self.pending_points >= settings.batch_size
        if self.pending and (due or now - self._last_send >= settings.flush_interval):
            self._last_send = now
            while self.pending and len(self.in_flight) < settings.max_in_flight:
                batch = self._take()
                self._start(self._send(batch, fresh=True), batch)
            # Bounded memory: what the next sends will not take waits in the spool.
            overflow: list[SpooledBatch] = []
            while self.pending and self.pending_points > settings.memory_max_points:
                batch = self.pending.popleft()
                self.pending_points -= batch.points
                overflow.append(batch)
            self.backlog.release(overflow, fresh=True)
        spool = self.backlog.spool
        while (
            not self.pending
            and not self.closing
            and len(self.in_flight) < settings.max_in_flight
            and spool.available
            and spool.waiting_points > 0
        ):
            self._start(self._send_from_spool())

    async def flush(self) -> None:
        """Send everything pending now and wait for the sends."""
        while True:
            self.send(force=True)
            if not self.in_flight:
                return
            await asyncio.gather(*list(self.in_flight), return_exceptions=True)
            if not self.pending:
                return

    async def cancel(self) -> list[SpooledBatch]:
        """Cancel the sends still running (their rows stay in the spool: a duplicate is
        harmless); the batches they were sending."""
        leftovers = [batch for batch in self.in_flight.values() if batch is not None]
        for task in list(self.in_flight):
            await cancel_quietly(task)
        self.in_flight.clear()
        return leftovers

    def take_pending(self) -> list[SpooledBatch]:
        """Everything still pending (at close)."""
        batches = list(self.pending)
        self.pending.clear()
        return batches

    # -- sends ---------------------------------------------------------------------------

    def _start(self, send: Coroutine[None, None, object], batch: SpooledBatch | None = None) -> None:
        task = asyncio.create_task(send)
        self.in_flight[task] = batch
        task.add_done_callback(self._done)

    def _take(self) -> SpooledBatch:
        """Up to ``batch_size`` points of pending rows, all journaled or all in memory only."""
        rows = [self.pending.popleft()]
        total = rows[0].points
        durable = bool(rows[0].ids)
        while self.pending:
            nxt = self.pending[0]
            if total + nxt.points > self.settings.batch_size or bool(nxt.ids) != durable:
                break
            rows.append(self.pending.popleft())
            total += nxt.points
        self.pending_points -= total
        return merge_batches(rows)

    def _done(self, task: asyncio.Task) -> None:
        if task.cancelled():
            return  # close() deals with it
        self.in_flight.pop(task, None)
        exc = task.exception()
        if exc is not None:
            log.error("unexpected error while writing a batch: %s: %s", type(exc).__name__, exc)
        if self.pending or self.backlog.spool.waiting_points:
            self.on_slot_free()  # a slot is free

    async def _send(self, batch: SpooledBatch, fresh: bool = False) -> SpooledBatch:
        """Write a batch straight to the sink (it is in the spool, held, or only in memory).

        ``fresh``: new points on their first send (they count as spooled only once it fails).
        """
        assert self.sink is not None and self.replay is not None
        backlog = self.backlog
        try:
            result = await self.sink.write(batch.lines, batch.points)
        except Exception:
            backlog.release([batch], fresh)
            raise
        if result.status is WriteStatus.OK:
            backlog.stats.written_points += batch.points
            await backlog.forget(batch, fresh)
        elif result.status is WriteStatus.RETRY:
            backlog.failed(result, self.sink.description)
            self.replay.sink_failed()
            backlog.release([batch], fresh)
        else:
            await backlog.rejected(result, batch, fresh)
        return batch

    async def _send_from_spool(self) -> SpooledBatch | None:
        """Take the oldest spooled rows nobody is sending, and send them."""
        batch = await self.backlog.take_oldest(self.settings.batch_size)
        if batch is None:
            return None
        batch = SpooledBatch(batch.ids, batch.created, rescale_lines(batch.lines, batch.precision, self.precision),
                             batch.points, self.precision)
        return await self._send(batch)


async def cancel_quietly(task: asyncio.Task) -> None:
    """Cancel ``task`` and wait for it to end, whatever it raises."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
