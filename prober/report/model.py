"""What a report holds: one :class:`DayStats` per site × interface side × interface × day,
one :class:`RangeSummary` per site × side × interface, and the :class:`Report` around them.

Words used everywhere (headers, notes, CSV columns, JSON keys):

* a **probe** is one run of a check feeding the interface: the "request" of the
  five-failures rule (EBA/GL/2018/07 2.4). Runs of login checks are probes only when they
  failed;
* a **request** is one HTTP request of those probes (a ``step`` point): what response
  times and the error rate are counted over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class DayStats:
    """One site × side (``api``) × interface × day (midnight to midnight in the report's zone).

    ``known`` is false when no probe of the interface started that day: every figure is
    then ``None`` (unknown, not 100 %). Downtime seconds are by the five-failures rule
    (:mod:`prober.report.downtime`), split into ``planned`` (inside a maintenance window)
    and ``unplanned``; ``incident_downtime_s`` is the time the prober's own incidents of
    the interface's checks were open. Response times (time to first byte, time to last
    byte) are over the **answered** requests only; ``errors`` are requests that failed
    (see :data:`prober.report.influx.ERROR_OUTCOMES`). ``worse_than_psu`` (dedicated rows
    only) lists what was worse than the customer interface that day: ``uptime``,
    ``response time``; ``None`` when there is nothing to compare with.
    """

    site: str
    interface: str
    day: date
    day_seconds: float
    partial: bool
    known: bool
    api: str = "dedicated"
    uptime_pct: float | None = None
    downtime_s: float | None = None
    planned_downtime_s: float | None = None
    unplanned_downtime_s: float | None = None
    incident_downtime_s: float | None = None
    probes: int = 0
    failed_probes: int = 0
    requests: int = 0
    errors: int = 0
    error_rate_pct: float | None = None
    ttfb_count: int = 0
    ttfb_mean_ms: float | None = None
    ttfb_p95_ms: float | None = None
    ttlb_count: int = 0
    ttlb_mean_ms: float | None = None
    ttlb_p95_ms: float | None = None
    window_s: float = 30.0
    spacing_s: float | None = None
    worse_than_psu: tuple[str, ...] | None = None
    top_errors: tuple[tuple[str, int], ...] = ()
    source: str = "raw"
    """``raw``: computed from the ``check``/``step`` points now; ``stored``: read from a
    ``psd2_daily`` point."""


@dataclass(frozen=True)
class DayErrors:
    """The error rate of one site × side × day over every interface together (a failed
    login request counted once)."""

    site: str
    api: str
    day: date
    requests: int
    errors: int
    error_rate_pct: float | None


@dataclass(frozen=True)
class MaintenanceSpan:
    """A maintenance window of the configuration that applied on a day (times in UTC,
    whole seconds, as they were configured, not cut at midnight)."""

    site: str
    day: date
    kinds: tuple[str, ...]
    """Empty: every kind."""
    start: str
    end: str
    description: str = ""


@dataclass(frozen=True)
class RangeSummary:
    """One site × side × interface over the whole range, against the benchmark.

    ``uptime_pct`` is over the known days only (``None`` when there is none);
    ``unplanned_uptime_pct`` counts unplanned downtime only. Mean response times are over
    every answered request of the range; ``worst_*_p95_ms`` is the highest daily p95.
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
    errors: int
    error_rate_pct: float | None
    ttfb_mean_ms: float | None
    ttlb_mean_ms: float | None
    worst_ttfb_p95_ms: float | None
    worst_ttlb_p95_ms: float | None
    worst_day: date | None
    worst_day_uptime_pct: float | None
    days_below_benchmark: int
    meets_benchmark: bool | None
    window_s: float
    spacing_s: float | None
    api: str = "dedicated"
    days_worse_than_psu: int = 0
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
    daily_errors: list[DayErrors] = field(default_factory=list)
    maintenance: list[MaintenanceSpan] = field(default_factory=list)
