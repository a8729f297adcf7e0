"""Times as people and machines read them: UTC, ISO 8601, a ``Z`` suffix."""

from __future__ import annotations

import time


def utc_iso(epoch_s: float, *, millis: bool = False) -> str:
    """``2026-03-01T22:00:00Z`` (``…00.123Z`` with ``millis``) for seconds since the epoch."""
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s))
    if millis:
        return f"{text}.{int(epoch_s * 1000) % 1000:03d}Z"
    return text + "Z"
