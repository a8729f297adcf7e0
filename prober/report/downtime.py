"""Downtime as intervals: the five-failures rule, the prober's incidents, maintenance windows.

All pure functions on epoch milliseconds.

**The rule (EBA/GL/2018/07 §2.4)**: the interface is down when five consecutive requests
are not replied to within a total of 30 seconds, with no successful request in between;
the downtime counts from the first of those five. Applied to probe data:

* the requests of an interface are the runs of the checks that feed it, from every
  location, in order of start time (skipped runs are not requests); a run that failed is
  a request not replied to, a run that succeeded is a reply;
* a sequence of consecutive failed runs is downtime when some five consecutive runs of it
  started within the *window* of each other (first to fifth); the downtime starts at the
  first of the earliest such five and ends at the next successful run (a gap in the data
  does not end it); when no run follows, at the last failed run plus one request spacing;
* the window is 30 s when the probes are dense enough for five requests to fit in it.
  When they are not (one request every 30 s or more, as probes usually are), it is
  stretched to :data:`SPARSE_FACTOR` × the request spacing of that site and interface,
  so that five consecutive failed runs at the usual pace still count (with room for
  jitter), and five spread over longer (missing runs in between) still do not. The
  *spacing* is ``1 / Σ (1 / median gap)`` over the series (site × check × location) that
  feed the interface: two checks each every 60 s give 30 s.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from prober.config.incidents import MaintenanceWindow
from prober.report.intervals import Interval, union

FAILURES = 5
"""Consecutive requests not replied to before the interface counts as down."""
WINDOW_MS = 30_000
"""…within a total of 30 seconds."""
SPARSE_FACTOR = 4.5
"""Window = this × spacing when that is more than 30 s (four gaps and half a gap of jitter)."""


def median_gap_ms(times: Sequence[int]) -> float | None:
    """Median gap between consecutive points of one series (``None`` with fewer than two)."""
    if len(times) < 2:
        return None
    return float(statistics.median(b - a for a, b in pairwise(times)))


def spacing_ms(series_times: Iterable[Sequence[int]]) -> float | None:
    """Request spacing of an interface fed by several series (see the module docstring)."""
    rate = 0.0
    for times in series_times:
        gap = median_gap_ms(times)
        if gap is not None and gap > 0:
            rate += 1.0 / gap
    return 1.0 / rate if rate else None


def window_ms(spacing: float | None) -> int:
    """The window five failures must start within, for a request spacing."""
    if spacing is None:
        return WINDOW_MS
    return max(WINDOW_MS, round(SPARSE_FACTOR * spacing))


def rule_downtime(times: Sequence[int], ok: Sequence[int], window: int, tail_ms: int) -> list[Interval]:
    """Down intervals of one interface by the five-failures rule.

    ``times`` are request start times, sorted; ``ok[i]`` is 1 when request ``i`` was
    replied to. ``window`` is what :func:`window_ms` gives; ``tail_ms`` is how long a
    downtime lasts after its last failed request when no request follows (the spacing).
    """
    down: list[Interval] = []
    n = len(times)
    i = 0
    while i < n:
        if ok[i]:
            i += 1
            continue
        j = i
        while j < n and not ok[j]:
            j += 1
        # times[i:j] is a run of consecutive failures; j is the next success (or n)
        for k in range(i, j - FAILURES + 1):
            if times[k + FAILURES - 1] - times[k] <= window:
                end = times[j] if j < n else times[j - 1] + tail_ms
                down.append((times[k], max(end, times[k])))
                break
        i = j
    return down


def rule_downtime_sparse(failures: Sequence[int], next_reply: Callable[[int], int | None], window: int,
                         tail_ms: int) -> list[Interval]:
    """:func:`rule_downtime` from the failed requests alone, asking for replies only near them.

    ``failures`` are the start times of the requests not replied to, sorted;
    ``next_reply(t)`` is the start time of the first request replied to at or after
    ``t`` (a reply at the same instant as a failure comes after it), ``None`` when there
    is none. Replies are usually the bulk of the requests: this looks at
    ``len(failures)`` of them instead of walking them all.
    """
    down: list[Interval] = []
    n = len(failures)
    i = 0
    while i < n:
        # failures[i:j] is a streak: no reply between consecutive ones
        j = i + 1
        reply = next_reply(failures[i])
        while j < n and (reply is None or reply >= failures[j]):
            reply = next_reply(failures[j])
            j += 1
        for k in range(i, j - FAILURES + 1):
            if failures[k + FAILURES - 1] - failures[k] <= window:
                end = reply if reply is not None else failures[j - 1] + tail_ms
                down.append((failures[k], max(end, failures[k])))
                break
        i = j
    return down


Event = tuple[int, str, float]
"""An ``incident`` point: (time ms, state ``open``/``resolved``, ``duration_s``)."""


def incident_intervals(events: Sequence[Event], until_ms: int) -> list[Interval]:
    """Open-to-resolved intervals of one check's incidents (one location).

    A resolution without its opening in the data starts ``duration_s`` before it; an
    incident still open at the end lasts until ``until_ms``.
    """
    out: list[Interval] = []
    opened: int | None = None
    for at, state, duration_s in sorted(events):
        if state == "open":
            if opened is None:
                opened = at
        elif state == "resolved":
            start = opened if opened is not None else at - round((duration_s or 0.0) * 1000)
            out.append((start, at))
            opened = None
    if opened is not None and until_ms > opened:
        out.append((opened, until_ms))
    return union(out)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def maintenance_intervals(window: MaintenanceWindow, start_ms: int, end_ms: int) -> list[Interval]:
    """Times inside ``[start_ms, end_ms)`` covered by one ``[[incidents.maintenance]]``
    window: :meth:`~prober.config.incidents.MaintenanceWindow.intervals` in epoch milliseconds."""
    covered = window.intervals(_EPOCH + start_ms * _MS, _EPOCH + end_ms * _MS)
    return union([((begin - _EPOCH) // _MS, (finish - _EPOCH) // _MS) for begin, finish in covered])


def count_in(times: Sequence[int], start: int, end: int) -> tuple[int, int]:
    """(first index, end index) of the sorted ``times`` inside ``[start, end)``."""
    return bisect.bisect_left(times, start), bisect.bisect_left(times, end)
