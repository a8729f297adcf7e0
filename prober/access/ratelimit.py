"""A token bucket per client address, in a table of bounded size.

Each client may make ``burst`` requests at once, then ``rate`` per second. The table
keeps the clients seen most recently (at most ``max_clients``): a flood of new addresses
evicts the oldest entries, never grows the table. An evicted client starts again with a
full bucket, which costs nothing worse than its burst.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ClientRateLimiter:
    """``rate`` requests per second and ``burst`` at once, per key (a client address)."""

    def __init__(self, rate: float, burst: int, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        """key → (tokens, when they were counted); in order of last use (oldest first)."""

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """Spend one request of ``key``: 0 when allowed, else the seconds until it would be."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        tokens, then = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens >= 1.0:
            wait, tokens = 0.0, tokens - 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)  # re-inserted: the most recently used
        if len(self._buckets) > self.max_clients:
            del self._buckets[next(iter(self._buckets))]
        return wait
