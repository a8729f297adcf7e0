"""A durable spool of line-protocol batches: SQLite (standard library), WAL mode.

Tables::

    batches (id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL, lines TEXT, points INTEGER,
             precision TEXT)  -- the timestamp precision of the lines: ns, us, ms or s
    rejected(id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL, rejected REAL,
             reason TEXT, lines TEXT, points INTEGER)

``batches`` holds what could not be written yet, replayed oldest first (lowest ``id``);
``rejected`` holds what the server refused, for an operator to inspect (never replayed).
Each committed ``put`` survives a crash of the process (WAL, ``synchronous=NORMAL``: a
power loss may lose the last transactions, a SIGKILL does not).

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

__all__ = ["AsyncSpool", "Spool", "SpooledBatch", "SPOOL_FILENAME"]

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
    """One batch read back from the spool."""

    id: int
    created: float
    lines: str
    points: int
    precision: str = "ns"


class Spool:
    """The SQLite spool file ``<directory>/influx-spool.sqlite3`` (synchronous API)."""

    def __init__(self, directory: str | Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.path = self.directory / SPOOL_FILENAME
        self.max_bytes = max_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT COUNT(*), COALESCE(SUM(points), 0), COALESCE(SUM(LENGTH(lines)), 0) FROM batches").fetchone()
        self.batches, self.points, self.bytes = int(row[0]), int(row[1]), int(row[2])

    def put(self, lines: str, points: int, precision: str = "ns", created: float | None = None) -> int:
        """Append a batch; returns the points dropped (oldest batches) to stay under the limit."""
        size = len(lines)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO batches (created, lines, points, precision) VALUES (?, ?, ?, ?)",
                (created if created is not None else time.time(), lines, points, precision),
            )
        self.batches += 1
        self.points += points
        self.bytes += size
        return self._enforce_limit()

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

    def oldest(self) -> SpooledBatch | None:
        """The oldest batch still to replay, or ``None``."""
        row = self._db.execute("SELECT id, created, lines, points, precision FROM batches ORDER BY id LIMIT 1").fetchone()
        return SpooledBatch(*row) if row else None

    def delete(self, batch: SpooledBatch) -> None:
        """Forget a batch once it has been written."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            deleted = self._db.execute("DELETE FROM batches WHERE id = ?", (batch.id,)).rowcount
        if deleted:
            self.batches -= 1
            self.points -= batch.points
            self.bytes -= len(batch.lines)

    def reject(self, lines: str, points: int, reason: str, batch: SpooledBatch | None = None) -> None:
        """Set a batch the server refused aside in ``rejected`` (removing it from ``batches``)."""
        now = time.time()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO rejected (created, rejected, reason, lines, points) VALUES (?, ?, ?, ?, ?)",
                (batch.created if batch else now, now, reason, lines, points),
            )
            deleted = 0
            if batch is not None:
                deleted = self._db.execute("DELETE FROM batches WHERE id = ?", (batch.id,)).rowcount
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
        if deleted and batch is not None:
            self.batches -= 1
            self.points -= batch.points
            self.bytes -= len(batch.lines)

    def rejected(self) -> list[tuple[str, str, int]]:
        """``(reason, lines, points)`` of every rejected batch, oldest first."""
        return [tuple(r) for r in self._db.execute("SELECT reason, lines, points FROM rejected ORDER BY id")]

    def close(self) -> None:
        self._db.close()


class AsyncSpool:
    """:class:`Spool` behind one worker thread; every method is a coroutine."""

    def __init__(self, directory: str | Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prober-spool")
        self._spool: Spool | None = None
        self._closed_counts = (0, 0)  # (points, batches) when closed

    async def _call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def open(self) -> None:
        if self._spool is None:
            self._spool = await self._call(Spool, self.directory, self.max_bytes)

    @property
    def path(self) -> Path:
        return self.directory / SPOOL_FILENAME

    @property
    def points(self) -> int:
        """Points currently waiting in the spool."""
        return self._spool.points if self._spool else self._closed_counts[0]

    @property
    def batches(self) -> int:
        return self._spool.batches if self._spool else self._closed_counts[1]

    async def put(self, lines: str, points: int, precision: str = "ns") -> int:
        assert self._spool is not None
        return await self._call(self._spool.put, lines, points, precision)

    async def oldest(self) -> SpooledBatch | None:
        assert self._spool is not None
        return await self._call(self._spool.oldest)

    async def delete(self, batch: SpooledBatch) -> None:
        assert self._spool is not None
        await self._call(self._spool.delete, batch)

    async def reject(self, lines: str, points: int, reason: str, batch: SpooledBatch | None = None) -> None:
        assert self._spool is not None
        await self._call(self._spool.reject, lines, points, reason, batch)

    async def rejected(self) -> list[tuple[str, str, int]]:
        assert self._spool is not None
        return await self._call(self._spool.rejected)

    async def close(self) -> None:
        if self._spool is not None:
            self._closed_counts = (self._spool.points, self._spool.batches)
            await self._call(self._spool.close)
            self._spool = None
        self._executor.shutdown(wait=True)
