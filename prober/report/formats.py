"""The formats of a :class:`~prober.report.model.Report`: terminal table, CSV and JSON
here, the HTML page in :mod:`prober.report.page`, and :data:`FORMATS`, the one table of
them (``prober report --format``).

Site names and error strings come from the database and are treated as hostile: control
characters are replaced in the table (:func:`~prober.report.text.clean`), CSV cells that
a spreadsheet would run as a formula are prefixed with ``'``, and JSON is written by
:mod:`json` (which escapes everything it must).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable
from datetime import date
from typing import TextIO

from prober.report.interfaces import INTERFACES, LABELS
from prober.report.model import DayStats, Report
from prober.report.page import render_html
from prober.report.text import benchmark_verdict, clean, header_lines, maintenance_text, number, worse_text

_DAY_COLUMNS: list[tuple[str, Callable[[DayStats], str]]] = [
    ("uptime %", lambda r: number(r.uptime_pct, 3)),
    ("down s", lambda r: number(r.downtime_s, 0, "-")),
    ("planned s", lambda r: number(r.planned_downtime_s, 0, "-")),
    ("unplanned s", lambda r: number(r.unplanned_downtime_s, 0, "-")),
    ("incident s", lambda r: number(r.incident_downtime_s, 0, "-")),
    ("probes", lambda r: str(r.probes)),
    ("failed", lambda r: str(r.failed_probes)),
    ("requests", lambda r: str(r.requests)),
    ("errors %", lambda r: number(r.error_rate_pct, 2, "-")),
    ("TTFB mean", lambda r: number(r.ttfb_mean_ms, 1, "-")),
    ("TTFB p95", lambda r: number(r.ttfb_p95_ms, 1, "-")),
    ("TTLB mean", lambda r: number(r.ttlb_mean_ms, 1, "-")),
    ("TTLB p95", lambda r: number(r.ttlb_p95_ms, 1, "-")),
    ("vs customer", worse_text),
]


def _grid(header: list[str], rows: list[list[str]], out: TextIO, left: int = 4) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    for row in [header, *rows]:
        out.write("  ".join(c.ljust(w) if i < left or i == len(row) - 1 else c.rjust(w)
                            for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip())
        out.write("\n")


def render_table(report: Report, out: TextIO) -> None:
    """The terminal table: one line per site × side × interface × day, then the summary."""
    lines = header_lines(report)
    out.write(lines[0] + "\n")
    for note in lines[1:]:
        out.write(f"  * {clean(note, 400)}\n")
    out.write("  * Times in ms: TTFB = time to first byte, TTLB = time to last byte (the whole request).\n\n")
    rows = [[clean(r.site), r.api, r.interface, r.day.isoformat() + ("*" if r.partial else ""),
             *(fn(r) for _, fn in _DAY_COLUMNS)] for r in report.days]
    _grid(["site", "side", "interface", "day", *(name for name, _ in _DAY_COLUMNS)], rows, out)
    if any(r.partial for r in report.days):
        out.write("* day not over yet: figures cover it up to now\n")
    if report.daily_errors:
        out.write("\nError rate over every interface (a failed login request counted once)\n")
        _grid(["site", "side", "day", "requests", "errors", "errors %"],
              [[clean(e.site), e.api, e.day.isoformat(), str(e.requests), str(e.errors),
                number(e.error_rate_pct, 2, "-")] for e in report.daily_errors], out, left=3)
    out.write("\nMaintenance windows that applied (planned downtime)\n")
    if report.maintenance:
        for span in report.maintenance:
            out.write(f"  {clean(span.site)}  {span.day}  {clean(maintenance_text(span), 200)}\n")
    else:
        out.write("  none\n")
    out.write(f"\nSummary ({report.first_day} to {report.last_day}) against {report.benchmark_pct:g} % uptime\n")
    summary_rows = []
    for s in report.summaries:
        summary_rows.append([
            clean(s.site), s.api, s.interface, f"{s.known_days}/{s.days}", number(s.uptime_pct, 3),
            number(s.unplanned_uptime_pct, 3), number(s.downtime_s, 0), number(s.planned_downtime_s, 0),
            number(s.unplanned_downtime_s, 0), number(s.incident_downtime_s, 0), str(s.probes), str(s.requests),
            number(s.error_rate_pct, 2, "-"), number(s.ttfb_mean_ms, 1, "-"), number(s.ttlb_mean_ms, 1, "-"),
            str(s.days_below_benchmark), str(s.days_worse_than_psu) if s.api == "dedicated" else "-",
            benchmark_verdict(s.meets_benchmark)])
    _grid(["site", "side", "interface", "known days", "uptime %", "uptime if only unplanned counted %", "down s",
           "planned s", "unplanned s", "incident s", "probes", "requests", "errors %", "TTFB mean", "TTLB mean",
           "days below", "days worse than customer", "benchmark"], summary_rows, out, left=3)


CSV_FIELDS = ("uptime_pct", "downtime_s", "planned_downtime_s", "unplanned_downtime_s", "incident_downtime_s",
              "probes", "failed_probes", "requests", "errors", "error_rate_pct", "ttfb_mean_ms", "ttfb_p95_ms",
              "ttlb_mean_ms", "ttlb_p95_ms")
"""Per interface, the CSV columns ``{ais,pis,cof}_{field}`` (dedicated interface) and
``{ais,pis,cof}_psu_{field}`` (customer interface)."""


def _cell(value: object) -> object:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".")
    return value


def csv_header() -> list[str]:
    """The CSV columns, always the same whatever the data (a file to file, not a dump)."""
    columns = ["site", "date", "day_seconds", "partial"]
    for i in INTERFACES:
        columns += [f"{i}_{name}" for name in CSV_FIELDS]
        columns += [f"{i}_psu_{name}" for name in CSV_FIELDS]
        columns.append(f"{i}_worse_than_psu")
    columns += ["all_requests", "all_errors", "all_error_rate_pct",
                "all_psu_requests", "all_psu_errors", "all_psu_error_rate_pct", "maintenance"]
    return columns


def render_csv(report: Report, out: TextIO) -> None:
    """One row per site × day, the three interfaces side by side, as banks publish them.

    Unknown figures (no probe that day, or no such interface) are empty cells.
    """
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(csv_header())
    by_key = {(r.site, r.day, r.api, r.interface): r for r in report.days}
    errors = {(e.site, e.day, e.api): e for e in report.daily_errors}
    spans: dict[tuple[str, date], list[str]] = {}
    for span in report.maintenance:
        spans.setdefault((span.site, span.day), []).append(maintenance_text(span))
    for site, day in sorted({(r.site, r.day) for r in report.days}):
        first = next(r for r in report.days if r.site == site and r.day == day)
        cells: list[object] = [_cell(site), day.isoformat(), _cell(first.day_seconds), int(first.partial)]
        for interface in INTERFACES:
            for api in ("dedicated", "psu"):
                row = by_key.get((site, day, api, interface))
                for name in CSV_FIELDS:
                    value = getattr(row, name) if row is not None and row.known else None
                    cells.append("" if value is None else _cell(value))
            dedicated = by_key.get((site, day, "dedicated", interface))
            cells.append(";".join(dedicated.worse_than_psu) if dedicated and dedicated.worse_than_psu else "")
        for api in ("dedicated", "psu"):
            e = errors.get((site, day, api))
            cells += ["", "", ""] if e is None else [e.requests, e.errors,
                                                     "" if e.error_rate_pct is None else _cell(e.error_rate_pct)]
        cells.append(_cell("; ".join(spans.get((site, day), []))))
        writer.writerow(cells)


def _plain(value: object) -> object:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def report_dict(report: Report) -> dict:
    """The report as JSON-ready data (dates as ISO strings)."""
    def convert(item: object) -> object:
        if isinstance(item, dict):
            return {k: convert(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [convert(v) for v in item]
        return _plain(item)

    data = convert(dataclasses.asdict(report))
    assert isinstance(data, dict)
    data["interfaces"] = dict(LABELS)
    return data


def render_json(report: Report, out: TextIO) -> None:
    """The whole report as one JSON document."""
    json.dump(report_dict(report), out, indent=1, ensure_ascii=True, allow_nan=False)
    out.write("\n")


Renderer = Callable[[Report, TextIO], None]

FORMATS: dict[str, Renderer] = {
    "table": render_table,
    "csv": render_csv,
    "json": render_json,
    "html": render_html,
}
"""Every format of ``prober report --format``, by name (the first is the default)."""


def render(report: Report, fmt: str, out: TextIO) -> None:
    """Render in one of :data:`FORMATS`."""
    try:
        renderer = FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}") from None
    renderer(report, out)


def to_text(report: Report, fmt: str) -> str:
    """``render`` into a string."""
    buffer = io.StringIO()
    render(report, fmt, buffer)
    return buffer.getvalue()
