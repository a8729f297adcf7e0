"""What a report holds: one :class:`DayStats` per site × interface × day, one
:class:`RangeSummary` per site × interface, and the :class:`Report` around them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class DayStats:
    """One site × interface × day (midnight to midnight in the report's time zone).

    ``known`` is false when no request of the interface started that day: every figure is
    then ``None`` (unknown, not 100 %). Downtime seconds are by the five-failures rule
    (:mod:`prober.report.downtime`), split into ``planned`` (inside a maintenance window)
    and ``unplanned``; ``incident_downtime_s`` is the time the prober's own incidents of
    the interface's checks were open. ``probes`` counts check runs, ``requests`` the HTTP
    requests (steps) of those runs; response times are per HTTP request.
    """

    site: str
    interface: str
    day: date
    day_seconds: float
    partial: bool
    known: bool
    uptime_pct: float | None = None
    downtime_s: float | None = None
    planned_downtime_s: float | None = None
    unplanned_downtime_s: float | None = None
    incident_downtime_s: float | None = None
    probes: int = 0
    failed_probes: int = 0
    requests: int = 0
    failed_requests: int = 0
    error_rate_pct: float | None = None
    ttfb_mean_ms: float | None = None
    ttfb_p95_ms: float | None = None
    total_mean_ms: float | None = None
    total_p95_ms: float | None = None
    ttfb_count: int = 0
    total_count: int = 0


@dataclass(frozen=True)
class RangeSummary:
    """One site × interface over the whole range, against the benchmark.

    ``uptime_pct`` is over the known days only (``None`` when there is none);
    ``unplanned_uptime_pct`` counts unplanned downtime only. Mean response times are over
    every request of the range; ``worst_*_p95_ms`` is the highest daily p95.
    """

    site: str
    interface: str
    days: int
    known_days: int
    uptime_pct: float | None
    unplanned_uptime_pct: float | None
    downtime_s: float
    planned_downtime_s: float
    unplanned_downtime_s: float
    incident_downtime_s: float
    probes: int
    requests: int
    error_rate_pct: float | None
    ttfb_mean_ms: float | None
    total_mean_ms: float | None
    worst_ttfb_p95_ms: float | None
    worst_total_p95_ms: float | None
    worst_day: date | None
    worst_day_uptime_pct: float | None
    days_below_benchmark: int
    meets_benchmark: bool | None
    window_s: float
    spacing_s: float | None
    top_errors: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    """Everything a format renders."""

    first_day: date
    last_day: date
    tz: str
    benchmark_pct: float
    generated_at: str
    notes: list[str]
    days: list[DayStats]
    summaries: list[RangeSummary]
