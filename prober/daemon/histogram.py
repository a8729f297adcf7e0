"""Cumulative histograms kept as plain counters, and the buckets of ``/metrics``.

A run costs one :func:`bisect.bisect_left` and two additions (no lock, no label
lookup): the event loop is the only writer, and ``/metrics`` copies the counts when it
renders. Prometheus's ``le`` buckets are *upper bounds inclusive*: an observation equal
to a bound falls in that bucket, as :func:`bisect.bisect_left` puts it.

Bucket choices (seconds):

* :data:`JOURNEY_BUCKETS` — a journey is several requests (a token, then one to five
  calls of the capability, each 50–750 ms at a healthy bank: the UK's benchmark is
  750 ms mean time to last byte per request), so healthy journeys take 0.1–3 s and the
  buckets are densest there (quantiles within about 25 % between 0.25 s and 3 s); a
  bank in trouble answers in 5–30 s or hits the check's ``timeout`` (30 s by default),
  so the buckets go on to 60 s and a timed-out journey still lands in a finite bucket.
  16 bounds + ``+Inf``: 19 series per site × capability with ``_sum`` and ``_count``.
* :data:`LAG_BUCKETS` — the schedule lag is normally under 2 ms; 20 ms is the target
  at p99, one second is a run planned in the wrong period.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

JOURNEY_BUCKETS: tuple[float, ...] = (
    0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0,
)
"""Upper bounds of ``bank_prober_journey_duration_seconds`` (see the module's docstring)."""

LAG_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds of ``bank_prober_schedule_lag_seconds``."""


class Histogram:
    """Counts of observations per bucket (the last one is ``+Inf``), their sum and count."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """``[(le, cumulative count), …, ("+Inf", count)]`` as Prometheus exposes them."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, n in zip((*map(repr, self.bounds), "+Inf"), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out

    def copy(self) -> Histogram:
        """A snapshot, safe to read while the original goes on counting."""
        clone = Histogram.__new__(Histogram)
        clone.bounds, clone.counts, clone.total = self.bounds, list(self.counts), self.total
        return clone
