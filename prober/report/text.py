"""The report's words and figures, shared by every format (:mod:`~prober.report.formats`
for the table, CSV and JSON, :mod:`~prober.report.page` for the HTML page), so that
they say the same things the same way.

Site names and error strings come from the database and are hostile: :func:`clean`
replaces control and bidi characters before any of them reaches a terminal or a page.
"""

from __future__ import annotations

import re

from prober.report.model import DayStats, MaintenanceSpan, Report

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


def benchmark_verdict(meets: bool | None) -> str:
    """The one wording of the benchmark column: ``meets``, ``below`` or ``unknown``."""
    return "unknown" if meets is None else ("meets" if meets else "below")


def worse_text(row: DayStats) -> str:
    """How a dedicated-interface day compared with the customer interface: ``worse: uptime,
    response time``, ``not worse``, or empty when there was nothing to compare with."""
    if row.worse_than_psu is None:
        return ""
    return "worse: " + ", ".join(row.worse_than_psu) if row.worse_than_psu else "not worse"


def maintenance_text(span: MaintenanceSpan) -> str:
    """``2026-03-04T03:00:00Z to 2026-03-04T04:00:00Z (accounts)`` for a listing."""
    kinds = ", ".join(span.kinds) if span.kinds else "every kind"
    return f"{span.start} to {span.end} ({kinds})" + (f" {span.description}" if span.description else "")
