"""Fetched data → :class:`~prober.report.model.Report` (no I/O)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import chain
from zoneinfo import ZoneInfo

from prober.report.downtime import (
    count_in,
    incident_intervals,
    maintenance_intervals,
    rule_downtime,
    spacing_ms,
    window_ms,
)
from prober.report.influx import Fetched, SeriesKey
from prober.report.interfaces import INTERFACES, LABELS, Overrides, interfaces_of, kinds_feeding
from prober.report.intervals import Interval, intersect, overlap_ms, union
from prober.report.model import DayStats, RangeSummary, Report

TOP_ERRORS = 5
DEFAULT_BENCHMARK = 99.5


def day_bounds(first: date, last: date, tz: ZoneInfo) -> list[int]:
    """Epoch ms of each local midnight from ``first`` to the one after ``last``."""
    out = []
    day = first
    while day <= last + timedelta(days=1):
        out.append(int(datetime.combine(day, time(0), tzinfo=tz).timestamp() * 1000))
        day += timedelta(days=1)
    return out


@dataclass(frozen=True)
class Scope:
    """What the report covers and the configuration it needs."""

    first: date
    last: date
    tz: str
    bounds: list[int]
    now_ms: int
    benchmark_pct: float = DEFAULT_BENCHMARK
    sites: tuple[str, ...] = ()
    """Only these sites (empty: every site with data or configured)."""
    configured: tuple[tuple[str, str, str], ...] = ()
    """(site, check, kind) of the configured checks: they are reported even without data."""
    overrides: Overrides | None = None
    maintenance: tuple[object, ...] = ()


def _pairs(scope: Scope, keys: Iterable[SeriesKey], overrides: Overrides) -> list[tuple[str, str]]:
    pairs = set()
    for site, check, kind, *_ in chain(keys, scope.configured):
        for interface in interfaces_of(site, check, kind, overrides):
            pairs.add((site, interface))
    if scope.sites:
        pairs = {p for p in pairs if p[0] in scope.sites}
        for site in scope.sites:
            if not any(p[0] == site for p in pairs):
                pairs.update((site, i) for i in INTERFACES)
    order = {name: i for i, name in enumerate(INTERFACES)}
    return sorted(pairs, key=lambda p: (p[0], order[p[1]]))


def _merge(fetched: Fetched, keys: Sequence[SeriesKey]) -> tuple[list[int], bytes]:
    if len(keys) == 1:
        return list(fetched.times[keys[0]]), bytes(fetched.ok[keys[0]])
    merged = sorted(zip(chain.from_iterable(fetched.times[k] for k in keys),
                        chain.from_iterable(fetched.ok[k] for k in keys)))
    return [t for t, _ in merged], bytes(o for _, o in merged)


def _maintenance(scope: Scope, site: str, interface: str) -> list[Interval]:
    covered: list[Interval] = []
    for window in scope.maintenance:
        if getattr(window, "site", None) not in (None, site):
            continue
        if not kinds_feeding(interface, getattr(window, "kinds", [])):
            continue
        covered += maintenance_intervals(window, scope.bounds[0], scope.bounds[-1])
    return union(covered)


def _pct(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole else None


def build_report(fetched: Fetched, scope: Scope, generated_at: str) -> Report:
    """Compute every day and summary of ``scope`` from ``fetched``."""
    overrides = scope.overrides or {}
    end_of_range = min(scope.bounds[-1], scope.now_ms)
    days: list[DayStats] = []
    summaries: list[RangeSummary] = []
    notes = [
        "Downtime by EBA/GL/2018/07 2.4: the interface is down when five consecutive requests are not "
        "replied to within 30 s with no successful request in between, counted from the first of them "
        "until the next successful request.",
        "Requests are the prober's runs of the checks that feed each interface (all locations); "
        "response times and the error rate are per HTTP request of those runs.",
        f"Days run midnight to midnight in {scope.tz}; a day without any request is unknown, not 100 %.",
        "Downtime inside a maintenance window of the configuration is planned, the rest unplanned; "
        "uptime counts both.",
    ]
    for site, interface in _pairs(scope, fetched.times.keys(), overrides):
        keys = [k for k in fetched.times if k[0] == site and interface in interfaces_of(*k[:3], overrides)]
        times, ok = _merge(fetched, keys)
        spacing = spacing_ms(fetched.times[k] for k in keys)
        window = window_ms(spacing)
        if window > 30_000:
            notes.append(
                f"{site} / {LABELS[interface]}: one request every {spacing / 1000:.0f} s on average, too sparse "
                f"for five in 30 s: five consecutive failed runs count when they start within {window / 1000:g} s "
                "(4.5 × the spacing).")
        down = rule_downtime(times, ok, window, round(spacing or 0))
        planned = intersect(down, _maintenance(scope, site, interface))
        incidents = union(chain.from_iterable(
            incident_intervals(events, end_of_range)
            for key, events in fetched.incidents.items()
            if key[0] == site and interface in interfaces_of(*key[:3], overrides)))
        rows = [_day(scope, fetched, site, interface, d, times, ok, down, planned, incidents)
                for d in range(len(scope.bounds) - 1)]
        days += rows
        errors: Counter = Counter()
        for key in {k[:3] for k in keys}:
            errors.update(fetched.errors.get(key, {}))
        summaries.append(_summary(scope, site, interface, rows, window, spacing, errors.most_common(TOP_ERRORS)))
    return Report(first_day=scope.first, last_day=scope.last, tz=scope.tz, benchmark_pct=scope.benchmark_pct,
                  generated_at=generated_at, notes=notes, days=days, summaries=summaries)


def _day(scope: Scope, fetched: Fetched, site: str, interface: str, d: int, times: list[int], ok: bytes,
         down: list[Interval], planned: list[Interval], incidents: list[Interval]) -> DayStats:
    start, end = scope.bounds[d], scope.bounds[d + 1]
    cut = min(end, scope.now_ms)
    day = scope.first + timedelta(days=d)
    common = dict(site=site, interface=interface, day=day, day_seconds=max(cut - start, 0) / 1000, partial=cut < end)
    i0, i1 = count_in(times, start, end)
    if i1 == i0 or cut <= start:
        return DayStats(known=False, **common)
    failed = (i1 - i0) - sum(ok[i0:i1])
    down_ms = overlap_ms(down, start, cut)
    planned_ms = overlap_ms(planned, start, cut)
    steps = fetched.steps.get((site, interface, d))
    requests = steps.requests if steps else 0
    failed_requests = requests - steps.ok if steps else 0
    return DayStats(
        known=True, **common,
        uptime_pct=100.0 - 100.0 * down_ms / (cut - start),
        downtime_s=down_ms / 1000, planned_downtime_s=planned_ms / 1000,
        unplanned_downtime_s=(down_ms - planned_ms) / 1000,
        incident_downtime_s=overlap_ms(incidents, start, cut) / 1000,
        probes=i1 - i0, failed_probes=failed, requests=requests, failed_requests=failed_requests,
        error_rate_pct=_pct(failed_requests, requests),
        ttfb_mean_ms=steps.ttfb_mean if steps else None, ttfb_p95_ms=steps.ttfb_p95 if steps else None,
        total_mean_ms=steps.total_mean if steps else None, total_p95_ms=steps.total_p95 if steps else None,
        ttfb_count=steps.ttfb_n if steps else 0, total_count=steps.total_n if steps else 0,
    )


def _weighted(rows: list[DayStats], mean: str, count: str) -> float | None:
    n = sum(getattr(r, count) for r in rows if getattr(r, mean) is not None)
    if not n:
        return None
    return sum(getattr(r, mean) * getattr(r, count) for r in rows if getattr(r, mean) is not None) / n


def _max(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _summary(scope: Scope, site: str, interface: str, rows: list[DayStats], window: int, spacing: float | None,
             errors: list[tuple[str, int]]) -> RangeSummary:
    known = [r for r in rows if r.known]
    seconds = sum(r.day_seconds for r in known)
    down = sum(r.downtime_s or 0.0 for r in known)
    unplanned = sum(r.unplanned_downtime_s or 0.0 for r in known)
    uptime = None if not seconds else 100.0 - 100.0 * down / seconds
    worst = min(known, key=lambda r: (r.uptime_pct, r.day), default=None)
    requests = sum(r.requests for r in known)
    return RangeSummary(
        site=site, interface=interface, days=len(rows), known_days=len(known),
        uptime_pct=uptime, unplanned_uptime_pct=None if not seconds else 100.0 - 100.0 * unplanned / seconds,
        downtime_s=down, planned_downtime_s=sum(r.planned_downtime_s or 0.0 for r in known),
        unplanned_downtime_s=unplanned, incident_downtime_s=sum(r.incident_downtime_s or 0.0 for r in known),
        probes=sum(r.probes for r in known), requests=requests,
        error_rate_pct=_pct(sum(r.failed_requests for r in known), requests),
        ttfb_mean_ms=_weighted(known, "ttfb_mean_ms", "ttfb_count"),
        total_mean_ms=_weighted(known, "total_mean_ms", "total_count"),
        worst_ttfb_p95_ms=_max(r.ttfb_p95_ms for r in known), worst_total_p95_ms=_max(r.total_p95_ms for r in known),
        worst_day=worst.day if worst else None, worst_day_uptime_pct=worst.uptime_pct if worst else None,
        days_below_benchmark=sum(1 for r in known if (r.uptime_pct or 0.0) < scope.benchmark_pct),
        meets_benchmark=None if uptime is None else uptime >= scope.benchmark_pct,
        window_s=window / 1000, spacing_s=None if spacing is None else spacing / 1000, top_errors=errors,
    )
