"""Text renderings of a :class:`~prober.report.model.Report`: terminal table, CSV, JSON.

The HTML page is :mod:`prober.report.page`. Site names and error strings come from the
database and are treated as hostile: control characters are replaced in the table, CSV
cells that a spreadsheet would run as a formula are prefixed with ``'``, and JSON is
written by :mod:`json` (which escapes everything it must).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from collections.abc import Callable
from datetime import date
from typing import TextIO

from prober.report.interfaces import INTERFACES, LABELS
from prober.report.model import DayStats, Report

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean(text: str, limit: int = 80) -> str:
    """A string safe to print on a terminal: control and bidi characters → ``?``, cut to ``limit``."""
    text = _CONTROL.sub("?", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def number(value: float | int | None, digits: int = 1, unknown: str = "unknown") -> str:
    """A figure for people: ``unknown`` for ``None``."""
    if value is None:
        return unknown
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def header_lines(report: Report) -> list[str]:
    """Title and notes, shared by the table and the HTML page."""
    title = (f"PSD2 availability and performance, {report.first_day} to {report.last_day} ({report.tz}), "
             f"benchmark {report.benchmark_pct:g} % uptime")
    return [title, *report.notes]


_DAY_COLUMNS: list[tuple[str, Callable[[DayStats], str]]] = [
    ("uptime %", lambda r: number(r.uptime_pct, 3)),
    ("down s", lambda r: number(r.downtime_s, 0, "-")),
    ("planned s", lambda r: number(r.planned_downtime_s, 0, "-")),
    ("unplanned s", lambda r: number(r.unplanned_downtime_s, 0, "-")),
    ("incident s", lambda r: number(r.incident_downtime_s, 0, "-")),
    ("probes", lambda r: str(r.probes)),
    ("requests", lambda r: str(r.requests)),
    ("errors %", lambda r: number(r.error_rate_pct, 2, "-")),
    ("ttfb ms", lambda r: number(r.ttfb_mean_ms, 1, "-")),
    ("ttfb p95", lambda r: number(r.ttfb_p95_ms, 1, "-")),
    ("total ms", lambda r: number(r.total_mean_ms, 1, "-")),
    ("total p95", lambda r: number(r.total_p95_ms, 1, "-")),
]


def _grid(header: list[str], rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    for row in [header, *rows]:
        out.write("  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        out.write("\n")


def render_table(report: Report, out: TextIO) -> None:
    """The terminal table: one line per site × interface × day, then the summary."""
    lines = header_lines(report)
    out.write(lines[0] + "\n")
    for note in lines[1:]:
        out.write(f"  * {clean(note, 400)}\n")
    out.write("\n")
    rows = [[clean(r.site), r.interface, r.day.isoformat() + ("*" if r.partial else ""),
             *(fn(r) for _, fn in _DAY_COLUMNS)] for r in report.days]
    _grid(["site", "interface", "day", *(name for name, _ in _DAY_COLUMNS)], rows, out)
    if any(r.partial for r in report.days):
        out.write("* day not over yet: figures cover it up to now\n")
    out.write(f"\nSummary ({report.first_day} to {report.last_day}) against {report.benchmark_pct:g} % uptime\n")
    summary_rows = []
    for s in report.summaries:
        verdict = "unknown" if s.meets_benchmark is None else ("meets" if s.meets_benchmark else "BELOW")
        summary_rows.append([
            clean(s.site), s.interface, f"{s.known_days}/{s.days}", number(s.uptime_pct, 3),
            number(s.unplanned_uptime_pct, 3), number(s.downtime_s, 0), number(s.planned_downtime_s, 0),
            number(s.unplanned_downtime_s, 0), number(s.incident_downtime_s, 0), str(s.requests),
            number(s.error_rate_pct, 2, "-"), number(s.ttfb_mean_ms, 1, "-"), number(s.total_mean_ms, 1, "-"),
            str(s.days_below_benchmark), verdict])
    _grid(["site", "interface", "known days", "uptime %", "unplanned %", "down s", "planned s", "unplanned s",
           "incident s", "requests", "errors %", "ttfb ms", "total ms", "days below", "benchmark"],
          summary_rows, out)


CSV_FIELDS = ("uptime_pct", "downtime_s", "planned_downtime_s", "unplanned_downtime_s", "incident_downtime_s",
              "probes", "requests", "error_rate_pct", "ttfb_mean_ms", "ttfb_p95_ms", "total_mean_ms", "total_p95_ms")
"""Per interface, the CSV columns ``{ais,pis,cof}_{field}``."""


def _cell(value: object) -> object:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".")
    return value


def render_csv(report: Report, out: TextIO) -> None:
    """One row per site × day, the three interfaces side by side, as banks publish them.

    Unknown figures (no request that day) are empty cells.
    """
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["site", "date", "day_seconds", "partial",
                     *(f"{i}_{name}" for i in INTERFACES for name in CSV_FIELDS)])
    by_key = {(r.site, r.day, r.interface): r for r in report.days}
    for site, day in sorted({(r.site, r.day) for r in report.days}):
        rows = [by_key.get((site, day, i)) for i in INTERFACES]
        first = next(r for r in rows if r is not None)
        cells: list[object] = [_cell(site), day.isoformat(), _cell(first.day_seconds), int(first.partial)]
        for row in rows:
            for name in CSV_FIELDS:
                value = getattr(row, name) if row is not None and row.known else None
                cells.append("" if value is None else _cell(value))
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


def render(report: Report, fmt: str, out: TextIO) -> None:
    """Render in ``table``, ``csv``, ``json`` or ``html``."""
    if fmt == "table":
        render_table(report, out)
    elif fmt == "csv":
        render_csv(report, out)
    elif fmt == "json":
        render_json(report, out)
    elif fmt == "html":
        from prober.report.page import render_html

        render_html(report, out)
    else:
        raise ValueError(f"unknown format {fmt!r}")


def to_text(report: Report, fmt: str) -> str:
    """``render`` into a string."""
    buffer = io.StringIO()
    render(report, fmt, buffer)
    return buffer.getvalue()
