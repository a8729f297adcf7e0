"""Times as people and machines read them: UTC, ISO 8601, a ``Z`` suffix."""

from __future__ import annotations

import time


def utc_iso(epoch_s: float, *, millis: bool = False) -> str:
    """``2026-03-01T22:00:00Z`` (``…00.123Z`` with ``millis``) for seconds since the epoch."""
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s))
    if millis:
        return f"{text}.{int(epoch_s * 1000) % 1000:03d}Z"
    return text + "Z"


def utc_iso_ns(epoch_ns: int, *, millis: bool = False) -> str:
    """:func:`utc_iso` for nanoseconds since the epoch, exact (integer arithmetic: a
    float of ~1.7e9 seconds cannot always hold the milliseconds)."""
    seconds, rest = divmod(epoch_ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{rest // 1_000_000:03d}Z" if millis else text + "Z"


def utc_date(epoch_s: float) -> str:
    """``2026-03-01``: the UTC date of seconds since the epoch."""
    return time.strftime("%Y-%m-%d", time.gmtime(epoch_s))
