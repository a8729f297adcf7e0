"""The report as one self-contained HTML page: inline CSS and SVG, no JavaScript, no fetches.

Every text that comes from data (site names, error strings) goes through
:func:`html.escape`, and a Content-Security-Policy forbids scripts and remote content
should anything slip through. Per site, side and interface: a bar chart of daily downtime
(planned and unplanned stacked; a day without data drawn as a grey "?" at the base, not
as a bar) against the daily downtime the benchmark allows (dashed line), one bar per day
in a plot of fixed width, each bar over its own date; then the table of days, each uptime
cell coloured by the benchmark (green only when the day meets it). Per site, the
maintenance windows that applied and the error rate over every interface.
"""

from __future__ import annotations

from html import escape as _html_escape
from typing import TextIO

from prober.report.interfaces import API_LABELS, LABELS
from prober.report.model import DayErrors, DayStats, MaintenanceSpan, RangeSummary, Report
from prober.report.text import benchmark_verdict, clean, header_lines, maintenance_text, number, worse_text

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}h3{font-size:1em}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}
td,th{border:1px solid #ccc;padding:2px 4px;text-align:right}
td.d{white-space:nowrap}
th{background:#f3f3f3;font-weight:600;max-width:8em;vertical-align:bottom}td.l,th.l{text-align:left}
.ok{background:#d8f0d8}.bad{background:#f6d0d0}.unk{background:#eee;color:#666}.worse{background:#fde8c8}
.notes li{margin:.2em 0}svg{display:block;margin:.5em 0 0}figure{margin:0 0 .5em}
figcaption{font-size:12px;color:#444;max-width:760px}details{margin:.5em 0}
.err{font-family:monospace;white-space:pre-wrap;word-break:break-all}
"""


def escape(text: str) -> str:
    """HTML-escaped, control and bidi characters replaced (text from data is hostile)."""
    return _html_escape(clean(text, 2000))


_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
LEFT = 56
PLOT_WIDTH = 720
HEIGHT = 150
TOP = 10
LABEL_SPACE = 40


def _day_class(row: DayStats, benchmark: float) -> str:
    if not row.known or row.uptime_pct is None:
        return "unk"
    return "ok" if row.uptime_pct >= benchmark else "bad"


def _chart(days: list[DayStats], benchmark: float) -> str:
    """Daily downtime bars for one stream, as inline SVG: one slot per day across the plot."""
    slot = PLOT_WIDTH / max(len(days), 1)
    gap = min(2.0, slot * 0.2)
    allowance = (100.0 - benchmark) / 100.0 * 86_400
    peak = max([allowance * 2, 60.0] + [r.downtime_s or 0.0 for r in days])
    width = LEFT + PLOT_WIDTH + 10
    base = TOP + HEIGHT

    def y(seconds: float) -> float:
        return base - HEIGHT * min(seconds, peak) / peak

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{base + LABEL_SPACE}" '
             f'viewBox="0 0 {width} {base + LABEL_SPACE}" role="img" aria-label="daily downtime">',
             f'<line x1="{LEFT}" y1="{base}" x2="{LEFT + PLOT_WIDTH}" y2="{base}" stroke="#444"/>']
    for frac in (0.0, 0.5, 1.0):
        value = peak * frac
        parts.append(f'<text x="{LEFT - 4}" y="{y(value) + 4:.1f}" font-size="10" text-anchor="end">'
                     f'{value / 60:.0f} min</text>')
    every = max(1, round(len(days) / 12))  # at most about 12 date labels
    for i, row in enumerate(days):
        x = LEFT + i * slot
        w = max(slot - gap, 1.0)
        centre = x + slot / 2
        label = escape(f"{row.day}: " + (
            "unknown (no probe)" if not row.known else
            f"uptime {number(row.uptime_pct, 3)} %, planned {number(row.planned_downtime_s, 0)} s, "
            f"unplanned {number(row.unplanned_downtime_s, 0)} s"))
        if i % every == 0 or i == len(days) - 1:
            parts.append(f'<line x1="{centre:.1f}" y1="{base}" x2="{centre:.1f}" y2="{base + 4}" stroke="#444"/>'
                         f'<text class="date" data-day="{row.day}" x="{centre:.1f}" y="{base + 16}" font-size="10" '
                         f'text-anchor="middle">{escape(row.day.strftime("%m-%d"))}</text>')
        if not row.known:
            parts.append(f'<g class="day unknown" data-day="{row.day}"><title>{label}</title>'
                         f'<rect x="{x:.1f}" y="{base - 14}" width="{w:.1f}" height="14" '
                         f'fill="#e4e4e4" stroke="#999"/><text x="{centre:.1f}" y="{base - 3}" font-size="10" '
                         f'text-anchor="middle" fill="#555">?</text></g>')
            continue
        planned, unplanned = row.planned_downtime_s or 0.0, row.unplanned_downtime_s or 0.0
        below = (row.uptime_pct or 0.0) < benchmark
        parts.append(f'<g class="day" data-day="{row.day}"><title>{label}</title>'
                     f'<rect x="{x:.1f}" y="{y(planned):.1f}" width="{w:.1f}" height="{base - y(planned):.1f}" '
                     'fill="#6b8fd6"/>'
                     f'<rect x="{x:.1f}" y="{y(planned + unplanned):.1f}" width="{w:.1f}" '
                     f'height="{y(planned) - y(planned + unplanned):.1f}" fill="{"#d9534f" if below else "#f0ad4e"}"/>'
                     f'<rect x="{x:.1f}" y="{base + 1}" width="{w:.1f}" height="3" '
                     f'fill="{"#d9534f" if below else "#5cb85c"}"/></g>')
    line = y(allowance)
    parts.append(f'<line x1="{LEFT}" y1="{line:.1f}" x2="{LEFT + PLOT_WIDTH}" y2="{line:.1f}" stroke="#000" '
                 'stroke-dasharray="4 3"/></svg>')
    caption = (f"Downtime per day (blue: planned, orange: unplanned on a day meeting {benchmark:g} %, red: on a day "
               f"below it; grey ?: no probe that day). Dashed line: the {allowance / 60:.1f} min a day that "
               f"{benchmark:g} % uptime allows.")
    return f"<figure>{''.join(parts)}<figcaption>{escape(caption)}</figcaption></figure>"


SIDES = {"dedicated": "dedicated", "psu": "customer (PSU)"}
SUMMARY_HEADERS = ("site", "side", "interface", "known days", "uptime %", "uptime if only unplanned downtime counted %",
                   "planned s", "unplanned s", "incident s", "probes", "requests", "errors %", "TTFB mean ms",
                   "TTLB mean ms", "worst day, its uptime %", "days below", "days worse than customer", "benchmark")


def _summary_table(report: Report) -> str:
    head = "<tr>" + "".join(f"<th{' class=l' if i < 3 else ''}>{escape(h)}</th>"
                            for i, h in enumerate(SUMMARY_HEADERS)) + "</tr>"
    rows = []
    for s in report.summaries:
        css = "unk" if s.meets_benchmark is None else ("ok" if s.meets_benchmark else "bad")
        rows.append(
            f"<tr><td class=l>{escape(s.site)}</td><td class=l>{escape(SIDES[s.api])}</td>"
            f"<td class=l>{escape(LABELS[s.interface])}</td>"
            f"<td>{s.known_days}/{s.days}</td><td class={css}>{number(s.uptime_pct, 3)}</td>"
            f"<td>{number(s.unplanned_uptime_pct, 3)}</td><td>{number(s.planned_downtime_s, 0)}</td>"
            f"<td>{number(s.unplanned_downtime_s, 0)}</td><td>{number(s.incident_downtime_s, 0)}</td>"
            f"<td>{s.probes}</td><td>{s.requests}</td><td>{number(s.error_rate_pct, 2, '-')}</td>"
            f"<td>{number(s.ttfb_mean_ms, 1, '-')}</td><td>{number(s.ttlb_mean_ms, 1, '-')}</td>"
            f"<td class=d>{escape(str(s.worst_day or '-'))}<br>{number(s.worst_day_uptime_pct, 3, '-')}</td>"
            f"<td>{s.days_below_benchmark}</td><td>{s.days_worse_than_psu if s.api == 'dedicated' else '-'}</td>"
            f"<td class={css}>{benchmark_verdict(s.meets_benchmark)}</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


DAY_HEADERS = ("day", "uptime %", "planned s", "unplanned s", "incident s", "probes", "failed probes", "requests",
               "errors %", "TTFB mean ms", "TTFB p95 ms", "TTLB mean ms", "TTLB p95 ms", "vs customer interface")


def _day_table(days: list[DayStats], benchmark: float) -> str:
    head = "<tr>" + "".join(f"<th{' class=l' if i == 0 else ''}>{escape(h)}</th>"
                            for i, h in enumerate(DAY_HEADERS)) + "</tr>"
    rows = [
        f"<tr><td class='l d'>{escape(str(r.day))}{'*' if r.partial else ''}</td>"
        f"<td class={_day_class(r, benchmark)}>{number(r.uptime_pct, 3)}</td>"
        f"<td>{number(r.planned_downtime_s, 0, '-')}</td><td>{number(r.unplanned_downtime_s, 0, '-')}</td>"
        f"<td>{number(r.incident_downtime_s, 0, '-')}</td><td>{r.probes}</td><td>{r.failed_probes}</td>"
        f"<td>{r.requests}</td><td>{number(r.error_rate_pct, 2, '-')}</td><td>{number(r.ttfb_mean_ms, 1, '-')}</td>"
        f"<td>{number(r.ttfb_p95_ms, 1, '-')}</td><td>{number(r.ttlb_mean_ms, 1, '-')}</td>"
        f"<td>{number(r.ttlb_p95_ms, 1, '-')}</td>"
        f"<td class={'worse' if r.worse_than_psu else 'l'}>{escape(worse_text(r) or '-')}</td></tr>"
        for r in days]
    return f"<details><summary>every day</summary><table class=days>{head}{''.join(rows)}</table></details>"


def _section(summary: RangeSummary, days: list[DayStats], benchmark: float) -> str:
    errors = "".join(f"<li><span class=err>{escape(text)}</span> × {count}</li>" for text, count in summary.top_errors)
    side = "" if summary.api == "dedicated" else " (customer interface)"
    return (f"<h3>{escape(summary.site)}: {escape(LABELS[summary.interface])}{side}</h3>"
            f"{_chart(days, benchmark)}{_day_table(days, benchmark)}"
            + (f"<p>Most frequent errors:</p><ul>{errors}</ul>" if errors else ""))


def _site_extras(site: str, spans: list[MaintenanceSpan], errors: list[DayErrors]) -> str:
    items = "".join(f"<li>{escape(str(s.day))}: {escape(maintenance_text(s))}</li>" for s in spans)
    out = "<h3>Maintenance windows that applied (planned downtime)</h3>" + (
        f"<ul>{items}</ul>" if items else "<p>none</p>")
    if errors:
        rows = "".join(f"<tr><td class='l d'>{escape(str(e.day))}</td><td class=l>{escape(API_LABELS[e.api])}</td>"
                       f"<td>{e.requests}</td><td>{e.errors}</td><td>{number(e.error_rate_pct, 2, '-')}</td></tr>"
                       for e in errors)
        out += ("<details><summary>error rate over every interface, per day (a failed login request counted "
                "once)</summary><table><tr><th class=l>day</th><th class=l>side</th><th>requests</th><th>errors</th>"
                f"<th>errors %</th></tr>{rows}</table></details>")
    return out


def render_html(report: Report, out: TextIO) -> None:
    """Write the page."""
    title, *notes = header_lines(report)
    out.write(f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
              f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
              f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
              f"<h1>{escape(title)}</h1><ul class=notes>{''.join(f'<li>{escape(n)}</li>' for n in notes)}</ul>"
              f"<p>Times in ms: TTFB = time to first byte, TTLB = time to last byte (the whole request). "
              f"Generated {escape(report.generated_at)}.</p><h2>Summary</h2>{_summary_table(report)}")
    for site in dict.fromkeys(s.site for s in report.summaries):
        out.write(f"<h2>{escape(site)}</h2>")
        for summary in (s for s in report.summaries if s.site == site):
            days = [r for r in report.days
                    if (r.site, r.api, r.interface) == (summary.site, summary.api, summary.interface)]
            out.write(_section(summary, days, report.benchmark_pct))
        out.write(_site_extras(site, [m for m in report.maintenance if m.site == site],
                               [e for e in report.daily_errors if e.site == site]))
    out.write("</body></html>\n")
