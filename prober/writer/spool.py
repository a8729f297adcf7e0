"""A durable spool of line-protocol batches: SQLite (standard library), WAL mode.

Tables::

    batches (id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL, lines TEXT, points INTEGER,
             precision TEXT)  -- the timestamp precision of the lines: ns, us, ms or s
    rejected(id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL, rejected REAL,
             reason TEXT, lines TEXT, points INTEGER)

``batches`` is the writer's journal: every batch of new points is committed here within
the writer's journal interval, before it is sent, and deleted once InfluxDB has
acknowledged it; what is left is replayed oldest first (lowest ``id``). ``rejected``
holds what the server refused, for an operator to inspect (never replayed).
Each committed ``append`` survives a crash of the process (WAL, ``synchronous=NORMAL``: no
fsync per commit, so a power loss or kernel crash may lose the last transactions, a
SIGKILL does not).

Size limit: when the text in ``batches`` exceeds ``max_bytes``, the oldest batches are
deleted and their points returned as dropped (``rejected`` is capped at a tenth of it).

:class:`Spool` is synchronous and not thread-safe; :class:`AsyncSpool` runs every call on
one dedicated thread so the event loop never waits for the disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from prober.config.types import Precision

__all__ = ["AsyncSpool", "Spool", "SpoolUnavailable", "SpooledBatch", "SPOOL_FILENAME", "merge_batches"]

SPOOL_FILENAME = "influx-spool.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    lines TEXT NOT NULL,
    points INTEGER NOT NULL,
    precision TEXT NOT NULL DEFAULT 'ns'
);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    rejected REAL NOT NULL,
    reason TEXT NOT NULL,
    lines TEXT NOT NULL,
    points INTEGER NOT NULL
);
"""


@dataclass(slots=True, frozen=True)
class SpooledBatch:
    """One batch: consecutive spool rows (``ids``) sent as one write.

    ``ids`` is empty for a batch the spool could not take (kept in memory only).
    """

    ids: tuple[int, ...]
    created: float
    lines: str
    points: int
    precision: Precision = "ns"


def merge_batches(batches: list[SpooledBatch]) -> SpooledBatch:
    """One batch holding the lines of ``batches`` (same precision), in order."""
    if len(batches) == 1:
        return batches[0]
    return SpooledBatch(
        tuple(i for b in batches for i in b.ids),
        batches[0].created,
        "\n".join(b.lines for b in batches),
        sum(b.points for b in batches),
        batches[0].precision,
    )


class Spool:
    """The SQLite spool file ``<directory>/influx-spool.sqlite3`` (synchronous API)."""

    def __init__(self, directory: str | Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.path = self.directory / SPOOL_FILENAME
        self.max_bytes = max_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(points), 0), COALESCE(SUM(LENGTH(lines)), 0) FROM batches"
            ).fetchone()
        except sqlite3.Error:
            self._db.close()
            raise
        self.batches, self.points, self.bytes = int(row[0]), int(row[1]), int(row[2])
        self._held: dict[int, int] = {}  # row id -> points, rows the writer is sending itself
        self.held_points = 0

    def put(self, lines: str, points: int, precision: str = "ns", created: float | None = None) -> int:
        """Append a batch; returns the points dropped (oldest batches) to stay under the limit."""
        return self.append([(lines, points)], precision, created)[1]

    def append(
        self, chunks: list[tuple[str, int]], precision: str = "ns", created: float | None = None, hold: bool = False
    ) -> tuple[list[int], int]:
        """Append ``(lines, points)`` chunks in one transaction (one commit, whatever their number).

        Returns the new rows' ids and the points dropped (oldest batches) to stay under the
        limit. ``hold``: the rows are held (see :meth:`hold`) from the moment they exist.
        """
        when = created if created is not None else time.time()
        ids: list[int] = []
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for lines, points in chunks:
                cursor = self._db.execute(
                    "INSERT INTO batches (created, lines, points, precision) VALUES (?, ?, ?, ?)",
                    (when, lines, points, precision),
                )
                assert cursor.lastrowid is not None  # set by every INSERT
                ids.append(cursor.lastrowid)
        if hold:
            self.hold(dict(zip(ids, (points for _, points in chunks), strict=True)))
        self.batches += len(chunks)
        self.points += sum(points for _, points in chunks)
        self.bytes += sum(len(lines) for lines, _ in chunks)
        return ids, self._enforce_limit()

    def hold(self, rows: dict[int, int]) -> None:
        """Hold rows (id -> points): :meth:`oldest` skips them, the writer is sending them itself."""
        for row_id, points in rows.items():
            if row_id not in self._held:
                self._held[row_id] = points
                self.held_points += points

    def release(self, ids: tuple[int, ...]) -> None:
        """Stop holding rows: they are replayed like any other."""
        for row_id in ids:
            self.held_points -= self._held.pop(row_id, 0)

    def _enforce_limit(self) -> int:
        dropped = 0
        while self.bytes > self.max_bytes and self.batches > 0:
            rows = self._db.execute("SELECT id, points, LENGTH(lines) FROM batches ORDER BY id LIMIT 64").fetchall()
            excess = self.bytes - self.max_bytes
            ids: list[int] = []
            for batch_id, points, size in rows:
                if excess <= 0:
                    break
                ids.append(batch_id)
                self.held_points -= self._held.pop(batch_id, 0)
                excess -= size
                dropped += points
                self.batches -= 1
                self.points -= points
                self.bytes -= size
            if not ids:
                break
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(f"DELETE FROM batches WHERE id IN ({','.join('?' * len(ids))})", ids)
        return dropped

    def oldest(self, max_points: int = 1, exclude: tuple[int, ...] = ()) -> SpooledBatch | None:
        """The oldest rows still to replay, as one batch of up to ``max_points`` points, or ``None``.

        At least one row; consecutive rows of the same precision are merged while the total
        stays within ``max_points``. Rows in ``exclude`` (being written already) are skipped.
        """
        exclude = (*exclude, *self._held)
        where = f"WHERE id NOT IN ({','.join('?' * len(exclude))})" if exclude else ""
        cursor = self._db.execute(
            f"SELECT id, created, lines, points, precision FROM batches {where} ORDER BY id", exclude
        )
        rows: list[SpooledBatch] = []
        total = 0
        for row_id, created, lines, points, precision in cursor:
            if rows and (total + points > max_points or precision != rows[0].precision):
                break
            rows.append(SpooledBatch((row_id,), created, lines, points, precision))
            total += points
        cursor.close()
        return merge_batches(rows) if rows else None

    def take_oldest(self, max_points: int = 1) -> SpooledBatch | None:
        """:meth:`oldest`, held at once (so that no other sender takes the same rows)."""
        batch = self.oldest(max_points)
        if batch is not None:
            self._hold_batch(batch)
        return batch

    def _hold_batch(self, batch: SpooledBatch) -> None:
        if len(batch.ids) == 1:
            self.hold({batch.ids[0]: batch.points})
        else:  # points per row are not kept in a merged batch: count them again
            marks = ",".join("?" * len(batch.ids))
            self.hold(dict(self._db.execute(f"SELECT id, points FROM batches WHERE id IN ({marks})", batch.ids)))

    def _delete_rows(self, batch: SpooledBatch) -> tuple[int, int, int]:
        """Delete ``batch``'s rows (inside a transaction); ``(rows, points, bytes)`` that were there."""
        if not batch.ids:
            return 0, 0, 0
        marks = ",".join("?" * len(batch.ids))
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(points), 0), COALESCE(SUM(LENGTH(lines)), 0) "
            f"FROM batches WHERE id IN ({marks})",
            batch.ids,
        ).fetchone()
        self._db.execute(f"DELETE FROM batches WHERE id IN ({marks})", batch.ids)
        return int(row[0]), int(row[1]), int(row[2])

    def _forget_counts(self, counts: tuple[int, int, int], batch: SpooledBatch | None) -> None:
        if batch is not None:
            self.release(batch.ids)
        self.batches -= counts[0]
        self.points -= counts[1]
        self.bytes -= counts[2]

    def delete(self, batch: SpooledBatch) -> int:
        """Forget a batch once it has been written; the number of its rows still there."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            counts = self._delete_rows(batch)
        self._forget_counts(counts, batch)
        return counts[0]

    def reject(self, lines: str, points: int, reason: str, batch: SpooledBatch | None = None) -> None:
        """Set a batch the server refused aside in ``rejected`` (removing it from ``batches``)."""
        now = time.time()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO rejected (created, rejected, reason, lines, points) VALUES (?, ?, ?, ?, ?)",
                (batch.created if batch else now, now, reason, lines, points),
            )
            counts = self._delete_rows(batch) if batch is not None else (0, 0, 0)
            # Keep the rejected table bounded too: a tenth of the spool, oldest out first.
            limit = max(self.max_bytes // 10, 1)
            total = self._db.execute("SELECT COALESCE(SUM(LENGTH(lines)), 0) FROM rejected").fetchone()[0]
            while total > limit:
                row = self._db.execute("SELECT id, LENGTH(lines) FROM rejected ORDER BY id LIMIT 1").fetchone()
                if row is None or row[0] is None:
                    break
                if self._db.execute("SELECT COUNT(*) FROM rejected").fetchone()[0] <= 1:
                    break  # always keep the latest for inspection
                self._db.execute("DELETE FROM rejected WHERE id = ?", (row[0],))
                total -= row[1]
        self._forget_counts(counts, batch)

    def rejected(self) -> list[tuple[str, str, int]]:
        """``(reason, lines, points)`` of every rejected batch, oldest first."""
        return [tuple(r) for r in self._db.execute("SELECT reason, lines, points FROM rejected ORDER BY id")]

    def close(self) -> None:
        self._db.close()


class SpoolUnavailable(RuntimeError):
    """The spool file could not be opened (the reason is in the message)."""


class AsyncSpool:
    """:class:`Spool` behind one worker thread; every method is a coroutine.

    :meth:`open` may fail (read-only or missing directory, full disk): the spool is then
    *unavailable*, every other call raises :class:`SpoolUnavailable`, and :meth:`open`
    may be tried again later.
    """

    def __init__(self, directory: str | Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prober-spool")
        self._spool: Spool | None = None
        self._closed_counts = (0, 0)  # (points, batches) when closed

    async def _call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _require(self) -> Spool:
        if self._spool is None:
            raise SpoolUnavailable(f"spool {self.path} is not open")
        return self._spool

    async def open(self) -> None:
        """Open (or create) the spool file; raises ``OSError``/``sqlite3.Error`` when it cannot."""
        if self._spool is None:
            self._spool = await self._call(Spool, self.directory, self.max_bytes)

    @property
    def available(self) -> bool:
        """Whether the spool is open."""
        return self._spool is not None

    @property
    def path(self) -> Path:
        return self.directory / SPOOL_FILENAME

    @property
    def points(self) -> int:
        """Points currently in the spool."""
        return self._spool.points if self._spool else self._closed_counts[0]

    @property
    def waiting_points(self) -> int:
        """Points in the spool waiting for the replay (not held by the writer's own sends)."""
        return max(self._spool.points - self._spool.held_points, 0) if self._spool else self._closed_counts[0]

    @property
    def batches(self) -> int:
        return self._spool.batches if self._spool else self._closed_counts[1]

    async def put(self, lines: str, points: int, precision: str = "ns") -> int:
        return await self._call(self._require().put, lines, points, precision)

    async def append(
        self, chunks: list[tuple[str, int]], precision: str = "ns", hold: bool = False
    ) -> tuple[list[int], int]:
        return await self._call(self._require().append, chunks, precision, None, hold)

    def hold_soon(self, rows: dict[int, int]) -> None:
        """:meth:`Spool.hold`, queued on the spool's thread (in order with every other call)."""
        if self._spool is not None:
            self._executor.submit(self._spool.hold, rows)

    def release_soon(self, ids: tuple[int, ...]) -> None:
        """:meth:`Spool.release`, queued on the spool's thread (in order with every other call)."""
        if self._spool is not None and ids:
            self._executor.submit(self._spool.release, ids)

    async def oldest(self, max_points: int = 1, exclude: tuple[int, ...] = ()) -> SpooledBatch | None:
        return await self._call(self._require().oldest, max_points, exclude)

    async def take_oldest(self, max_points: int = 1) -> SpooledBatch | None:
        return await self._call(self._require().take_oldest, max_points)

    async def delete(self, batch: SpooledBatch) -> int:
        return await self._call(self._require().delete, batch)

    async def reject(self, lines: str, points: int, reason: str, batch: SpooledBatch | None = None) -> None:
        await self._call(self._require().reject, lines, points, reason, batch)

    async def rejected(self) -> list[tuple[str, str, int]]:
        return await self._call(self._require().rejected)

    async def close(self) -> None:
        if self._spool is not None:
            self._closed_counts = (self._spool.points, self._spool.batches)
            await self._call(self._spool.close)
            self._spool = None
        self._executor.shutdown(wait=True)
