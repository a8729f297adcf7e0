"""Fetched data → :class:`~prober.report.model.Report` (no I/O).

Every day is computed on its own, from the probes of that day and of ``margin_ms``
around it (for a downtime that crosses midnight), with the request spacing of that day:
so a day's figures are the same whether the whole range is computed at once, the day
alone, or the day is read back from its ``psd2_daily`` point.
"""

from __future__ import annotations

import bisect
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from itertools import chain
from zoneinfo import ZoneInfo

from prober.config.incidents import MaintenanceWindow
from prober.report.downtime import (
    incident_intervals,
    maintenance_intervals,
    rule_downtime_sparse,
    spacing_ms,
    window_ms,
)
from prober.report.influx import ERROR_OUTCOMES, REPLIED_OUTCOMES, Fetched, RunKey
from prober.report.interfaces import INTERFACES, LABELS, Catalog, is_auth, kinds_feeding
from prober.report.intervals import Interval, intersect, overlap_ms, union
from prober.report.model import DayErrors, DayStats, MaintenanceSpan, RangeSummary, Report

TOP_ERRORS = 5
DEFAULT_BENCHMARK = 99.5
MARGIN_MS = 3_600_000
"""Probes looked at beyond each end of a day, for downtimes crossing midnight."""


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
    catalog: Catalog = field(default_factory=lambda: Catalog(overrides={}))
    maintenance: tuple[MaintenanceWindow, ...] = ()
    margin_ms: int = MARGIN_MS


Stream = tuple[str, str, str]
"""(site, api, interface): one column set of the report."""

_API_ORDER = {"dedicated": 0, "psu": 1}
_INTERFACE_ORDER: dict[str, int] = {name: i for i, name in enumerate(INTERFACES)}


def _stream_order(stream: Stream) -> tuple[str, int, int]:
    return stream[0], _INTERFACE_ORDER[stream[2]], _API_ORDER[stream[1]]


def streams_of(scope: Scope, keys: Iterable[Sequence[str]], stored: Iterable[Stream] = ()) -> list[Stream]:
    """The (site, api, interface) the report has rows for: every one fed by a check other
    than login, in the data, the configuration or the stored daily points."""
    catalog = scope.catalog
    found: set[Stream] = set(stored)
    for site, check, kind, *_ in chain(keys, scope.configured):
        if is_auth(kind):
            continue
        api = catalog.api_of(site, check)
        found.update((site, api, interface) for interface in catalog.interfaces_of(site, check, kind))
    if scope.sites:
        found = {s for s in found if s[0] in scope.sites}
        for site in scope.sites:
            if not any(s[0] == site for s in found):
                found.update((site, "dedicated", i) for i in INTERFACES)
    return sorted(found, key=_stream_order)


def _pct(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole else None


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Feeds:
    """The run series of the data that feed each stream, split into own and login series."""

    def __init__(self, fetched: Fetched, catalog: Catalog) -> None:
        self.fetched = fetched
        self.own: dict[Stream, list[RunKey]] = {}
        self.auth: dict[Stream, list[RunKey]] = {}
        self.replied: dict[tuple[Stream, int], int] = {}
        for key in fetched.runs:
            site, check, kind, _location, outcome = key
            api = catalog.api_of(site, check)
            for interface in catalog.interfaces_of(site, check, kind):
                if not is_auth(kind):
                    self.own.setdefault((site, api, interface), []).append(key)
                elif outcome not in REPLIED_OUTCOMES:
                    self.auth.setdefault((site, api, interface), []).append(key)
        for (site, check, kind, _location, _outcome, day), count in fetched.replied.items():
            if is_auth(kind):
                continue
            api = catalog.api_of(site, check)
            for interface in catalog.interfaces_of(site, check, kind):
                stream = (site, api, interface)
                self.replied[(stream, day)] = self.replied.get((stream, day), 0) + count

    def _slices(self, stream: Stream, start: int, end: int) -> Iterator[tuple[RunKey, array, int, int]]:
        for key in chain(self.own.get(stream, ()), self.auth.get(stream, ())):
            times = self.fetched.runs[key]
            i0, i1 = bisect.bisect_left(times, start), bisect.bisect_left(times, end)
            if i1 > i0:
                yield key, times, i0, i1

    def failures(self, stream: Stream, start: int, end: int) -> list[int]:
        """Start times of the failed probes in ``[start, end)``, sorted."""
        return sorted(chain.from_iterable(times[i0:i1] for key, times, i0, i1 in self._slices(stream, start, end)
                                          if key[4] not in REPLIED_OUTCOMES))

    def probe_count(self, stream: Stream, day: int, start: int, end: int) -> int:
        """How many probes started on day ``day`` (``[start, end)``)."""
        failed = sum(i1 - i0 for key, _, i0, i1 in self._slices(stream, start, end) if key[4] not in REPLIED_OUTCOMES)
        return self.replied.get((stream, day), 0) + failed

    def replies(self, stream: Stream, start: int, end: int) -> Callable[[int], int | None]:
        """``next_reply(t)``: the first probe replied to at or after ``t``, inside ``[start, end)``."""
        series = [(times, i0, i1) for key, times, i0, i1 in self._slices(stream, start, end)
                  if key[4] in REPLIED_OUTCOMES]

        def next_reply(t: int) -> int | None:
            best = None
            for times, i0, i1 in series:
                i = bisect.bisect_left(times, t, i0, i1)
                if i < i1 and (best is None or times[i] < best):
                    best = times[i]
            return best

        return next_reply

    def error_texts(self, stream: Stream, start: int, end: int) -> Counter:
        """Error texts of the failed probes in ``[start, end)``."""
        errors: Counter = Counter()
        for key in chain(self.own.get(stream, ()), self.auth.get(stream, ())):
            texts = self.fetched.failures.get(key)
            if not texts:
                continue
            times = self.fetched.runs[key]
            i0, i1 = bisect.bisect_left(times, start), bisect.bisect_left(times, end)
            errors.update(texts[i0:i1])
        return errors

    def spacing(self, stream: Stream, day: int, start: int, end: int, cut: int) -> float | None:
        """Probe spacing of the stream's own series (site × check × location) on day ``day``
        (``[start, end)``, up to ``cut`` for a day not over): from the median gaps where the
        replies were fetched (five failures or more around the day); else, where the window
        cannot change the figures, the day's length divided by its probes."""
        if (stream[0], day) not in self.fetched.raw_replies:
            own = self.replied.get((stream, day), 0) + sum(
                i1 - i0 for key, _, i0, i1 in self._slices(stream, start, end)
                if key[4] not in REPLIED_OUTCOMES and not is_auth(key[2]))
            return (cut - start) / own if own and cut > start else None
        by_series: dict[tuple[str, ...], list[int]] = {}
        for key in self.own.get(stream, ()):
            times = self.fetched.runs[key]
            i0, i1 = bisect.bisect_left(times, start), bisect.bisect_left(times, end)
            if i1 > i0:
                by_series.setdefault(key[:4], []).extend(times[i0:i1])
        return spacing_ms(sorted(times) for times in by_series.values())


def _requests(counts: Iterable[tuple[tuple[str, str, str, str, int], int]], catalog: Catalog
              ) -> tuple[dict[Stream, list[int]], dict[tuple[str, str], list[int]]]:
    """[requests, errors] per stream, and per (site, api) over every interface, of one day's counts."""
    per_stream: dict[Stream, list[int]] = {}
    per_side: dict[tuple[str, str], list[int]] = {}
    for (site, check, kind, outcome, _), count in counts:
        interfaces = catalog.interfaces_of(site, check, kind)
        if not interfaces:
            continue
        failed = outcome in ERROR_OUTCOMES
        if is_auth(kind) and not failed:
            continue
        api = catalog.api_of(site, check)
        for interface in interfaces:
            totals = per_stream.setdefault((site, api, interface), [0, 0])
            totals[0] += count
            totals[1] += count if failed else 0
        side = per_side.setdefault((site, api), [0, 0])
        side[0] += count
        side[1] += count if failed else 0
    return per_stream, per_side


def _maintenance(scope: Scope, site: str, interface: str) -> list[Interval]:
    covered: list[Interval] = []
    for window in scope.maintenance:
        if window.site not in (None, site) or not kinds_feeding(interface, window.kinds):
            continue
        covered += maintenance_intervals(window, scope.bounds[0] - scope.margin_ms, scope.bounds[-1] + scope.margin_ms)
    return union(covered)


def maintenance_spans(scope: Scope, sites: Iterable[str]) -> list[MaintenanceSpan]:
    """The maintenance windows that applied, per site and day of the range."""
    spans: list[MaintenanceSpan] = []
    wide = (scope.bounds[0] - 2 * 86_400_000, scope.bounds[-1] + 2 * 86_400_000)
    for site in sorted(set(sites)):
        for window in scope.maintenance:
            if window.site not in (None, site):
                continue
            for start, end in maintenance_intervals(window, *wide):
                for d in range(len(scope.bounds) - 1):
                    if start < scope.bounds[d + 1] and end > scope.bounds[d]:
                        spans.append(MaintenanceSpan(
                            site=site, day=scope.first + timedelta(days=d), kinds=tuple(window.kinds),
                            start=_iso(start), end=_iso(end), description=window.description))
    return sorted(spans, key=lambda s: (s.site, s.day, s.start))


def compute_day(scope: Scope, feeds: _Feeds, stream: Stream, d: int, requests: Mapping[Stream, list[int]],
                planned_windows: list[Interval], incidents: list[Interval]) -> DayStats:
    """One stream × day from the raw points."""
    site, api, interface = stream
    start, end = scope.bounds[d], scope.bounds[d + 1]
    cut = min(end, scope.now_ms)
    day_stats = partial(DayStats, site=site, api=api, interface=interface, day=scope.first + timedelta(days=d),
                        day_seconds=max(cut - start, 0) / 1000, partial=cut < end)
    spacing = feeds.spacing(stream, d, start, end, cut)
    window = window_ms(spacing)
    probes = feeds.probe_count(stream, d, start, end)
    if not probes or cut <= start:
        return day_stats(known=False, window_s=window / 1000, spacing_s=None if spacing is None else spacing / 1000)
    lo, hi = start - scope.margin_ms, end + scope.margin_ms
    failures = feeds.failures(stream, lo, hi)
    down = rule_downtime_sparse(failures, feeds.replies(stream, lo, hi), window, round(spacing or 0))
    planned = intersect(down, planned_windows)
    down_ms = overlap_ms(down, start, cut)
    planned_ms = overlap_ms(planned, start, cut)
    total, failed = requests.get(stream, (0, 0))
    timing = feeds.fetched.timing.get((site, api, interface, d))
    errors = feeds.error_texts(stream, start, end)
    return day_stats(
        known=True,
        uptime_pct=100.0 - 100.0 * down_ms / (cut - start),
        downtime_s=down_ms / 1000, planned_downtime_s=planned_ms / 1000,
        unplanned_downtime_s=(down_ms - planned_ms) / 1000,
        incident_downtime_s=overlap_ms(incidents, start, cut) / 1000,
        probes=probes, failed_probes=bisect.bisect_left(failures, end) - bisect.bisect_left(failures, start),
        requests=total, errors=failed,
        error_rate_pct=_pct(failed, total),
        ttfb_count=timing.ttfb_n if timing else 0,
        ttfb_mean_ms=timing.ttfb_mean if timing else None, ttfb_p95_ms=timing.ttfb_p95 if timing else None,
        ttlb_count=timing.ttlb_n if timing else 0,
        ttlb_mean_ms=timing.ttlb_mean if timing else None, ttlb_p95_ms=timing.ttlb_p95 if timing else None,
        window_s=window / 1000, spacing_s=None if spacing is None else spacing / 1000,
        top_errors=tuple(errors.most_common(TOP_ERRORS)),
    )


def worse_than(dedicated: DayStats, psu: DayStats | None) -> tuple[str, ...] | None:
    """What the dedicated interface did worse than the customer interface on one day."""
    if psu is None or not (dedicated.known and psu.known):
        return None
    worse = []
    if (dedicated.uptime_pct or 0.0) < (psu.uptime_pct or 0.0):
        worse.append("uptime")
    if (
        dedicated.ttlb_mean_ms is not None
        and psu.ttlb_mean_ms is not None
        and dedicated.ttlb_mean_ms > psu.ttlb_mean_ms
    ):
        worse.append("response time")
    return tuple(worse)


def compare_sides(days: list[DayStats]) -> list[DayStats]:
    """Set ``worse_than_psu`` on the dedicated rows that have a customer-interface row beside them."""
    psu = {(r.site, r.interface, r.day): r for r in days if r.api == "psu"}
    return [replace(r, worse_than_psu=worse_than(r, psu.get((r.site, r.interface, r.day))))
            if r.api == "dedicated" else r for r in days]


def compute_days(scope: Scope, fetched: Fetched, streams: Sequence[Stream], days: Iterable[int]
                 ) -> tuple[dict[tuple[Stream, int], DayStats], dict[tuple[str, str, int], DayErrors]]:
    """The given days of every stream from the raw points (no ``worse_than_psu`` yet)."""
    catalog = scope.catalog
    feeds = _Feeds(fetched, catalog)
    end_of_range = min(scope.bounds[-1], scope.now_ms)
    planned = {s: _maintenance(scope, s[0], s[2]) for s in streams}
    incidents = {}
    for stream in streams:
        site, api, interface = stream
        incidents[stream] = union(chain.from_iterable(
            incident_intervals(events, end_of_range) for key, events in fetched.incidents.items()
            if key[0] == site and catalog.api_of(key[0], key[1]) == api
            and interface in catalog.interfaces_of(*key[:3])))
    rows: dict[tuple[Stream, int], DayStats] = {}
    side_errors: dict[tuple[str, str, int], DayErrors] = {}
    sides = {(s[0], s[1]) for s in streams}
    counts_of_day: dict[int, list[tuple[tuple[str, str, str, str, int], int]]] = {}
    for item in fetched.requests.items():
        counts_of_day.setdefault(item[0][4], []).append(item)
    for d in days:
        per_stream, per_side = _requests(counts_of_day.get(d, ()), catalog)
        for stream in streams:
            rows[(stream, d)] = compute_day(scope, feeds, stream, d, per_stream, planned[stream], incidents[stream])
        for site, api in sides:
            total, failed = per_side.get((site, api), (0, 0))
            side_errors[(site, api, d)] = DayErrors(site=site, api=api, day=scope.first + timedelta(days=d),
                                                    requests=total, errors=failed, error_rate_pct=_pct(failed, total))
    return rows, side_errors


def _notes(scope: Scope, summaries: list[RangeSummary], stored_days: int) -> list[str]:
    notes = [
        "Downtime by EBA/GL/2018/07 2.4: an interface is down when five consecutive probes are not replied to "
        "within 30 s with no successful probe in between, from the first of them until the next successful probe.",
        "A probe is one run of a check feeding the interface (all locations); a login run is a probe of every "
        "interface when it failed (no interface can be reached without a token) and of none when it succeeded "
        "(a token is not information of AIS, PIS or funds confirmation).",
        "A request is one HTTP request of those probes. Response times (time to first byte, time to last byte; "
        "mean and p95 per day) are over the answered requests only (a complete HTTP response arrived), login "
        "requests left out; a timeout or a connection failure is an error and downtime, not a response time.",
        "Errors: requests that got an error status (HTTP status not accepted, 401/403), wrong data, a timeout, "
        "no connection (DNS, TCP, TLS) or a malformed answer; error rate = errors ÷ requests.",
        f"Days run midnight to midnight in {scope.tz}; a day without any probe is unknown, not 100 %.",
        "Downtime inside a maintenance window of the configuration is planned, the rest unplanned; "
        "uptime counts both.",
    ]
    if any(s.api == "psu" for s in summaries):
        notes.append("The customer (PSU) interface is measured by the checks with psd2_interface = \"psu\"; a "
                     "dedicated-interface day with lower uptime or a higher mean time to last byte than the customer "
                     "interface is flagged.")
    if stored_days:
        notes.append(f"{stored_days} of the site-days were read from psd2_daily points (prober report --write), "
                     "the rest computed from the probes now (--recompute computes every day).")
    sparse = [f"{s.site} / {LABELS[s.interface]}" + (" (customer)" if s.api == "psu" else "")
              + f", one probe every {(s.spacing_s or 0):.0f} s: {s.window_s:.0f} s"
              for s in summaries if s.window_s > 30.0]
    if sparse:
        notes.append("Where probes come too rarely for five to fit in 30 s, five consecutive failed probes count when "
                     "they start within 4.5 × the probe spacing (the widest day shown): " + "; ".join(sparse) + ".")
    return notes


def build_report(fetched: Fetched, scope: Scope, generated_at: str,
                 stored: Mapping[tuple[Stream, int], DayStats] | None = None,
                 stored_errors: Mapping[tuple[str, str, int], DayErrors] | None = None,
                 stored_streams: Iterable[Stream] = ()) -> Report:
    """Every day and summary of ``scope``: from ``stored`` where it has the day, else from ``fetched``."""
    stored = stored or {}
    stored_errors = stored_errors or {}
    streams = streams_of(scope, fetched.series(), stored_streams)
    n_days = len(scope.bounds) - 1
    stored_days = {d for (_, d) in stored}
    rows, side_errors = compute_days(scope, fetched, streams, [d for d in range(n_days) if d not in stored_days])
    for (stream, d), row in stored.items():
        if stream in streams:
            rows[(stream, d)] = row
    for stream in streams:
        for d in stored_days:
            if (stream, d) not in rows:  # a stream the stored points do not have (no check then)
                rows[(stream, d)] = DayStats(site=stream[0], api=stream[1], interface=stream[2],
                                             day=scope.first + timedelta(days=d),
                                             day_seconds=(scope.bounds[d + 1] - scope.bounds[d]) / 1000,
                                             partial=False, known=False, source="stored")
    side_errors.update(stored_errors)
    days = compare_sides([rows[(stream, d)] for stream in streams for d in range(n_days)])
    summaries = [_summary(scope, stream, [r for r in days if (r.site, r.api, r.interface) == stream])
                 for stream in streams]
    sides = sorted({(s[0], s[1]) for s in streams}, key=lambda p: (p[0], _API_ORDER[p[1]]))
    daily_errors = [side_errors[(site, api, d)] for site, api in sides for d in range(n_days)
                    if (site, api, d) in side_errors]
    return Report(first_day=scope.first, last_day=scope.last, tz=scope.tz, benchmark_pct=scope.benchmark_pct,
                  generated_at=generated_at, notes=_notes(scope, summaries, len(stored_days)), days=days,
                  summaries=summaries, daily_errors=daily_errors,
                  maintenance=maintenance_spans(scope, {s[0] for s in streams}))


def _weighted(rows: list[DayStats], mean: str, count: str) -> float | None:
    n = sum(getattr(r, count) for r in rows if getattr(r, mean) is not None)
    if not n:
        return None
    return sum(getattr(r, mean) * getattr(r, count) for r in rows if getattr(r, mean) is not None) / n


def _max(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _summary(scope: Scope, stream: Stream, rows: list[DayStats]) -> RangeSummary:
    site, api, interface = stream
    known = [r for r in rows if r.known]
    seconds = sum(r.day_seconds for r in known)
    down = sum(r.downtime_s or 0.0 for r in known)
    unplanned = sum(r.unplanned_downtime_s or 0.0 for r in known)
    uptime = None if not seconds else 100.0 - 100.0 * down / seconds
    worst = min(known, key=lambda r: (r.uptime_pct, r.day), default=None)
    widest = max(known, key=lambda r: r.window_s, default=None)
    requests = sum(r.requests for r in known)
    errors = sum(r.errors for r in known)
    texts: Counter = Counter()
    for r in known:
        texts.update(dict(r.top_errors))
    return RangeSummary(
        site=site, api=api, interface=interface, days=len(rows), known_days=len(known),
        uptime_pct=uptime, unplanned_uptime_pct=None if not seconds else 100.0 - 100.0 * unplanned / seconds,
        downtime_s=down, planned_downtime_s=sum(r.planned_downtime_s or 0.0 for r in known),
        unplanned_downtime_s=unplanned, incident_downtime_s=sum(r.incident_downtime_s or 0.0 for r in known),
        probes=sum(r.probes for r in known), requests=requests, errors=errors, error_rate_pct=_pct(errors, requests),
        ttfb_mean_ms=_weighted(known, "ttfb_mean_ms", "ttfb_count"),
        ttlb_mean_ms=_weighted(known, "ttlb_mean_ms", "ttlb_count"),
        worst_ttfb_p95_ms=_max(r.ttfb_p95_ms for r in known), worst_ttlb_p95_ms=_max(r.ttlb_p95_ms for r in known),
        worst_day=worst.day if worst else None, worst_day_uptime_pct=worst.uptime_pct if worst else None,
        days_below_benchmark=sum(1 for r in known if (r.uptime_pct or 0.0) < scope.benchmark_pct),
        meets_benchmark=None if uptime is None else uptime >= scope.benchmark_pct,
        window_s=widest.window_s if widest else 30.0, spacing_s=widest.spacing_s if widest else None,
        days_worse_than_psu=sum(1 for r in rows if r.worse_than_psu),
        top_errors=texts.most_common(TOP_ERRORS),
    )
