"""What every part of the writer reports to: its counters and its rate-limited log."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

__all__ = ["RateLimitedLog", "WriterStats", "log"]

log = logging.getLogger("prober.writer")


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


class RateLimitedLog:
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
