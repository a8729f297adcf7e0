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

import asyncio
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from prober.config.influxdb import InfluxDBConfig
from prober.report.compute import Stream
from prober.report.influx import QueryClient, QueryError, quote_tag
from prober.report.model import DayErrors, DayStats
from prober.writer.points import PRECISION_DIVISOR, escape_field_string, escape_tag

MEASUREMENT = "psd2_daily"
SCHEMA = 1
"""Version of the point layout; bump it when a field changes meaning."""
ALL_INTERFACES = "all"

_FLOAT_FIELDS = ("uptime_pct", "downtime_s", "planned_downtime_s", "unplanned_downtime_s", "incident_downtime_s")
_INT_FIELDS = ("probes", "failed_probes", "requests", "errors", "ttfb_count", "ttlb_count")


def _tags(site: str, api: str, interface: str, tz: str) -> str:
    return f"{MEASUREMENT},api={escape_tag(api)},interface={escape_tag(interface)},site={escape_tag(site)},tz={escape_tag(tz)}"


def _f(value: float) -> str:
    return repr(float(value))


def day_line(row: DayStats, tz: str, day_start_ms: int, computed_at_ms: int, precision: str = "ns") -> str:
    """The ``psd2_daily`` line of one site × side × interface × day."""
    fields = [f"schema={SCHEMA}i", f"known={int(row.known)}i", f"partial={int(row.partial)}i",
              f"day_seconds={_f(row.day_seconds)}", f"window_s={_f(row.window_s)}",
              f"computed_at={computed_at_ms}i"]
    fields += [f"{name}={int(getattr(row, name))}i" for name in _INT_FIELDS]
    if row.known:
        fields += [f"{name}={_f(getattr(row, name) or 0.0)}" for name in _FLOAT_FIELDS]
    if row.error_rate_pct is not None:
        fields.append(f"error_rate_pct={_f(row.error_rate_pct)}")
    for prefix in ("ttfb", "ttlb"):
        count, mean, p95 = (getattr(row, f"{prefix}_count"), getattr(row, f"{prefix}_mean_ms"),
                            getattr(row, f"{prefix}_p95_ms"))
        fields.append(f"{prefix}_sum_ms={_f(mean * count if count and mean is not None else 0.0)}")
        if count and mean is not None:
            fields.append(f"{prefix}_mean_ms={_f(mean)}")
        if count and p95 is not None:
            fields.append(f"{prefix}_p95_ms={_f(p95)}")
    if row.spacing_s is not None:
        fields.append(f"spacing_s={_f(row.spacing_s)}")
    fields.append(f"compared={0 if row.worse_than_psu is None else 1}i")
    fields.append(f"worse={1 if row.worse_than_psu else 0}i")
    fields.append(f"worse_than_psu={escape_field_string(';'.join(row.worse_than_psu or ()))}")
    fields.append(f"top_errors={escape_field_string(json.dumps([list(e) for e in row.top_errors]))}")
    stamp = day_start_ms * 1_000_000 // PRECISION_DIVISOR[precision]
    return f"{_tags(row.site, row.api, row.interface, tz)} {','.join(fields)} {stamp}"


def errors_line(row: DayErrors, tz: str, day_start_ms: int, computed_at_ms: int, precision: str = "ns") -> str:
    """The ``interface = "all"`` line of one site × side × day: the error rate over every interface."""
    fields = [f"schema={SCHEMA}i", f"requests={row.requests}i", f"errors={row.errors}i",
              f"computed_at={computed_at_ms}i"]
    if row.error_rate_pct is not None:
        fields.append(f"error_rate_pct={_f(row.error_rate_pct)}")
    stamp = day_start_ms * 1_000_000 // PRECISION_DIVISOR[precision]
    return f"{_tags(row.site, row.api, ALL_INTERFACES, tz)} {','.join(fields)} {stamp}"


def report_lines(days: Iterable[DayStats], errors: Iterable[DayErrors], tz: str, first_day: object,
                 bounds: Sequence[int], computed_at_ms: int, precision: str = "ns") -> list[str]:
    """Every ``psd2_daily`` line of a computed report."""
    def start_of(day: object) -> int:
        return bounds[(day - first_day).days]  # type: ignore[operator]

    lines = [day_line(r, tz, start_of(r.day), computed_at_ms, precision) for r in days]
    lines += [errors_line(e, tz, start_of(e.day), computed_at_ms, precision) for e in errors]
    return lines


def write_lines(config: InfluxDBConfig, lines: list[str]) -> None:
    """Write ``lines`` through the prober's own sink for ``config``'s API version; raises
    :class:`QueryError` with the sink's (secret-free) message when InfluxDB refuses them."""
    from prober.writer.sinks import WriteStatus, make_sink

    async def send() -> None:
        sink = make_sink(config)
        await sink.start()
        try:
            result = await sink.write("\n".join(lines), len(lines))
        finally:
            await sink.close()
        if result.status is not WriteStatus.OK:
            raise QueryError(f"cannot write {MEASUREMENT} points to {config.url}: {result.message}")

    asyncio.run(send())


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


def _day_stats(site: str, api: str, interface: str, day: object, row: dict) -> DayStats:
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
        site=site, api=api, interface=interface, day=day,  # type: ignore[arg-type]
        day_seconds=float(row.get("day_seconds") or 0.0), partial=bool(row.get("partial")), known=known,
        **figures, **counts, **timing,  # type: ignore[arg-type]
        error_rate_pct=_number(row, "error_rate_pct") if counts["requests"] else None,
        window_s=float(row.get("window_s") or 30.0), spacing_s=_number(row, "spacing_s"),
        worse_than_psu=(tuple(worse.split(";")) if worse else ()) if row.get("compared") else None,
        top_errors=top, source="stored")


def read_stored(client: QueryClient, bounds: Sequence[int], first_day: object, tz: str, sites: Sequence[str],
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
                row = dict(zip(columns, values))
                d = index.get(int(row["time"]))
                if d is None:
                    continue
                if row.get("schema") != SCHEMA or int(row.get("computed_at") or 0) < bounds[d + 1] + margin_ms:
                    stored.ignored += 1
                    continue
                day = first_day + timedelta(days=d)  # type: ignore[operator]
                if interface == ALL_INTERFACES:
                    requests, errors = int(row.get("requests") or 0), int(row.get("errors") or 0)
                    stored.errors[(site, api, d)] = DayErrors(
                        site=site, api=api, day=day, requests=requests, errors=errors,  # type: ignore[arg-type]
                        error_rate_pct=_number(row, "error_rate_pct") if requests else None)
                else:
                    stored.rows[((site, api, interface), d)] = _day_stats(site, api, interface, day, row)
    return stored
