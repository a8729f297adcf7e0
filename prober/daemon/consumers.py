"""Where finished journey results go: the :class:`ResultConsumer` interface.

The daemon hands every :class:`~prober.results.JourneyResult` (runs, skipped
runs, runs cancelled at shutdown) to each consumer in turn. A consumer:

* ``consume(result)`` — synchronous and cheap; never blocks, never raises (the daemon
  logs and drops an exception rather than lose the other consumers' work);
* ``async start()`` — before the first result;
* ``async close()`` — after the last result; consumers are closed in reverse order, so
  the writer (first in the list) is closed last and takes whatever the others write
  while closing (incident points, for example).

Steps never import consumers; the daemon (:mod:`prober.daemon.service`) composes them.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from prober.results import JourneyResult
from prober.writer.writer import ResultWriter


@runtime_checkable
class ResultConsumer(Protocol):
    """Anything that wants every journey result (writer, live status, incidents…)."""

    def consume(self, result: JourneyResult) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class WriterConsumer:
    """Adapter: journey results → :class:`ResultWriter` (``check`` and ``step`` points).

    Owns the writer's lifecycle: ``close`` flushes what it can within ``close_timeout``
    seconds and spools the rest.
    """

    def __init__(self, writer: ResultWriter, close_timeout: float = 10.0) -> None:
        self.writer = writer
        self.close_timeout = close_timeout
        self.submitted = 0

    def consume(self, result: JourneyResult) -> None:
        self.submitted += 1
        self.writer.submit(result)

    async def start(self) -> None:
        await self.writer.start()

    async def close(self) -> None:
        await self.writer.close(self.close_timeout)
