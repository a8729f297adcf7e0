"""The daily figures materialised as ``psd2_daily`` points, and read back.

One point per site × side (``api``) × interface × day, plus one per site × side × day
with ``interface = "all"`` (the error rate over every interface). Tags: ``api``,
``interface``, ``site``, ``tz``; the timestamp is the day's local midnight in ``tz``. So
writing a day again (late data, a recompute) overwrites its point: InfluxDB keeps one
point per measurement, tag set and timestamp, the last written fields winning.

Fields that are unknown are left out (the line protocol has no null), and a field once
written stays until overwritten; readers therefore trust a figure only under its flag,
which is always written: uptime and downtime when ``known = 1``, the error rate when
``requests > 0``, response times when ``ttfb_count`` / ``ttlb_count > 0``.

``schema`` is the version of this layout (:data:`SCHEMA`): a point with another or none
(written by another version of the prober) is not read, and that day is computed from
the raw points; ``prober report --write`` overwrites it. A point is used only when it was
computed after its day ended plus the margin the downtime rule looks past midnight
(``computed_at``): the points of today and yesterday are provisional until then.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from prober.report.compute import Stream
from prober.report.influx import QueryClient, quote_tag
from prober.report.model import DayErrors, DayStats

MEASUREMENT = "psd2_daily"
SCHEMA = 1
"""Version of the point layout; bump it when a field changes meaning."""
ALL_INTERFACES = "all"

_FLOAT_FIELDS = ("uptime_pct", "downtime_s", "planned_downtime_s", "unplanned_downtime_s", "incident_downtime_s")
_INT_FIELDS = ("probes", "failed_probes", "requests", "errors", "ttfb_count", "ttlb_count")


Record = tuple[str, dict[str, str], dict[str, object], int]
"""(measurement, tags, fields, time in epoch ms): what :mod:`prober.writer.records` writes."""


def _tags(site: str, api: str, interface: str, tz: str) -> dict[str, str]:
    return {"api": api, "interface": interface, "site": site, "tz": tz}


def day_record(row: DayStats, tz: str, day_start_ms: int, computed_at_ms: int) -> Record:
    """The ``psd2_daily`` point of one site × side × interface × day."""
    fields: dict[str, object] = {
        "schema": SCHEMA, "known": int(row.known), "partial": int(row.partial),
        "day_seconds": float(row.day_seconds), "window_s": float(row.window_s), "computed_at": computed_at_ms,
        "compared": 0 if row.worse_than_psu is None else 1, "worse": 1 if row.worse_than_psu else 0,
        "worse_than_psu": ";".join(row.worse_than_psu or ()),
        "top_errors": json.dumps([list(e) for e in row.top_errors]),
    }
    fields.update({name: int(getattr(row, name)) for name in _INT_FIELDS})
    if row.known:
        fields.update({name: float(getattr(row, name) or 0.0) for name in _FLOAT_FIELDS})
    if row.error_rate_pct is not None:
        fields["error_rate_pct"] = float(row.error_rate_pct)
    for prefix in ("ttfb", "ttlb"):
        count, mean, p95 = (getattr(row, f"{prefix}_count"), getattr(row, f"{prefix}_mean_ms"),
                            getattr(row, f"{prefix}_p95_ms"))
        fields[f"{prefix}_sum_ms"] = float(mean * count) if count and mean is not None else 0.0
        if count and mean is not None:
            fields[f"{prefix}_mean_ms"] = float(mean)
        if count and p95 is not None:
            fields[f"{prefix}_p95_ms"] = float(p95)
    if row.spacing_s is not None:
        fields["spacing_s"] = float(row.spacing_s)
    return MEASUREMENT, _tags(row.site, row.api, row.interface, tz), fields, day_start_ms


def errors_record(row: DayErrors, tz: str, day_start_ms: int, computed_at_ms: int) -> Record:
    """The ``interface = "all"`` point of one site × side × day: the error rate over every interface."""
    fields: dict[str, object] = {"schema": SCHEMA, "requests": row.requests, "errors": row.errors,
                                 "computed_at": computed_at_ms}
    if row.error_rate_pct is not None:
        fields["error_rate_pct"] = float(row.error_rate_pct)
    return MEASUREMENT, _tags(row.site, row.api, ALL_INTERFACES, tz), fields, day_start_ms


def report_records(days: Iterable[DayStats], errors: Iterable[DayErrors], tz: str, first_day: date,
                   bounds: Sequence[int], computed_at_ms: int) -> list[Record]:
    """Every ``psd2_daily`` point of a computed report."""
    def start_of(day: date) -> int:
        return bounds[(day - first_day).days]

    records = [day_record(r, tz, start_of(r.day), computed_at_ms) for r in days]
    records += [errors_record(e, tz, start_of(e.day), computed_at_ms) for e in errors]
    return records


def daily_query(start_ms: int, end_ms: int, tz: str, sites: Sequence[str]) -> str:
    """Every ``psd2_daily`` point of the range for one time zone."""
    where = f'"tz" = {quote_tag(tz)} AND time >= {start_ms}ms AND time < {end_ms}ms'
    if sites:
        where = "(" + " OR ".join(f'"site" = {quote_tag(s)}' for s in sites) + ") AND " + where
    return f'SELECT * FROM "{MEASUREMENT}" WHERE {where} GROUP BY "site", "api", "interface"'


@dataclass
class Stored:
    """The usable ``psd2_daily`` points of a range, by day index."""

    rows: dict[tuple[Stream, int], DayStats] = field(default_factory=dict)
    errors: dict[tuple[str, str, int], DayErrors] = field(default_factory=dict)
    ignored: int = 0
    """Points not used: another schema version, or computed before their day was over."""

    def streams(self, day: int) -> set[Stream]:
        return {stream for (stream, d) in self.rows if d == day}

    def keep_days(self, days: set[int]) -> None:
        """Forget every point of a day not in ``days``."""
        self.rows = {k: v for k, v in self.rows.items() if k[1] in days}
        self.errors = {k: v for k, v in self.errors.items() if k[2] in days}


def _number(row: dict, name: str) -> float | None:
    value = row.get(name)
    return None if value is None else float(value)


def _day_stats(site: str, api: str, interface: str, day: date, row: dict) -> DayStats:
    known = bool(row.get("known"))
    counts = {name: int(row.get(name) or 0) for name in _INT_FIELDS}
    figures = {name: _number(row, name) if known else None for name in _FLOAT_FIELDS}
    timing = {}
    for prefix in ("ttfb", "ttlb"):
        present = counts[f"{prefix}_count"] > 0
        timing[f"{prefix}_mean_ms"] = _number(row, f"{prefix}_mean_ms") if present else None
        timing[f"{prefix}_p95_ms"] = _number(row, f"{prefix}_p95_ms") if present else None
    worse = str(row.get("worse_than_psu") or "")
    try:
        top = tuple((str(text), int(count)) for text, count in json.loads(row.get("top_errors") or "[]"))
    except (ValueError, TypeError):
        top = ()
    return DayStats(
        site=site, api=api, interface=interface, day=day,
        day_seconds=float(row.get("day_seconds") or 0.0), partial=bool(row.get("partial")), known=known,
        # the fields _FLOAT_FIELDS and _INT_FIELDS name, read from the row as their types
        **figures, **counts, **timing,  # type: ignore[arg-type]
        error_rate_pct=_number(row, "error_rate_pct") if counts["requests"] else None,
        window_s=float(row.get("window_s") or 30.0), spacing_s=_number(row, "spacing_s"),
        worse_than_psu=(tuple(worse.split(";")) if worse else ()) if row.get("compared") else None,
        top_errors=top, source="stored")


def read_stored(client: QueryClient, bounds: Sequence[int], first_day: date, tz: str, sites: Sequence[str],
                margin_ms: int) -> Stored:
    """The ``psd2_daily`` points of the range that may be used (see the module docstring)."""
    index = {start: d for d, start in enumerate(bounds[:-1])}
    stored = Stored()
    for result in client.run([daily_query(bounds[0], bounds[-1], tz, sites)]):
        for series in result.get("series", []):
            tags = series.get("tags", {})
            site, api, interface = tags.get("site", ""), tags.get("api", ""), tags.get("interface", "")
            columns = series.get("columns", [])
            for values in series.get("values") or []:
                row = dict(zip(columns, values, strict=False))
                d = index.get(int(row["time"]))
                if d is None:
                    continue
                if row.get("schema") != SCHEMA or int(row.get("computed_at") or 0) < bounds[d + 1] + margin_ms:
                    stored.ignored += 1
                    continue
                day = first_day + timedelta(days=d)
                if interface == ALL_INTERFACES:
                    requests, errors = int(row.get("requests") or 0), int(row.get("errors") or 0)
                    stored.errors[(site, api, d)] = DayErrors(
                        site=site, api=api, day=day, requests=requests, errors=errors,
                        error_rate_pct=_number(row, "error_rate_pct") if requests else None)
                else:
                    stored.rows[((site, api, interface), d)] = _day_stats(site, api, interface, day, row)
    return stored
