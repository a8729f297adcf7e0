"""The report as one self-contained HTML page: inline CSS and SVG, no JavaScript, no fetches.

Every text that comes from data (site names, error strings) goes through
:func:`html.escape`, and a Content-Security-Policy forbids scripts and remote content
should anything slip through. Per site and interface, a bar chart of daily downtime
(planned and unplanned stacked, unknown days hatched grey) against the daily downtime the
benchmark allows (dashed line): a day above the line is below the benchmark.
"""

from __future__ import annotations

from html import escape as _html_escape
from typing import TextIO

from prober.report.formats import clean, header_lines, number
from prober.report.interfaces import LABELS
from prober.report.model import DayStats, RangeSummary, Report

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
.ok{background:#d8f0d8}.bad{background:#f6d0d0}.unk{background:#eee;color:#666}
.notes li{margin:.2em 0}svg{display:block;margin:.5em 0}details{margin:.5em 0}
.err{font-family:monospace;white-space:pre-wrap;word-break:break-all}
"""
def escape(text: str) -> str:
    """HTML-escaped, control and bidi characters replaced (text from data is hostile)."""
    return _html_escape(clean(text, 2000))


_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
LEFT = 56
HEIGHT = 150
TOP = 10


def _chart(days: list[DayStats], benchmark: float, number_: int = 0) -> str:
    """Daily downtime bars for one site × interface, as inline SVG (``number_`` keeps ids unique)."""
    bar = max(4, min(24, 720 // max(len(days), 1)))
    hatch = f"h{number_}"
    allowance = (100.0 - benchmark) / 100.0 * 86_400
    peak = max([allowance * 2, 60.0] + [r.downtime_s or 0.0 for r in days])
    width = max(LEFT + bar * len(days) + 20, 640)
    def y(seconds: float) -> float:
        return TOP + HEIGHT - HEIGHT * min(seconds, peak) / peak
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT + TOP + 34}" '
             f'role="img" aria-label="daily downtime in minutes">',
             f'<defs><pattern id="{hatch}" width="4" height="4" patternUnits="userSpaceOnUse">'
             '<path d="M0,4 L4,0" stroke="#999" stroke-width="1"/></pattern></defs>',
             f'<line x1="{LEFT}" y1="{TOP + HEIGHT}" x2="{width - 10}" y2="{TOP + HEIGHT}" stroke="#444"/>']
    for frac in (0.0, 0.5, 1.0):
        value = peak * frac
        parts.append(f'<text x="{LEFT - 4}" y="{y(value) + 4:.1f}" font-size="10" text-anchor="end">'
                     f'{value / 60:.0f} min</text>')
    for i, row in enumerate(days):
        x = LEFT + i * bar
        label = escape(f"{row.day}: " + (
            "unknown (no request)" if not row.known else
            f"uptime {number(row.uptime_pct, 3)} %, planned {number(row.planned_downtime_s, 0)} s, "
            f"unplanned {number(row.unplanned_downtime_s, 0)} s"))
        if not row.known:
            parts.append(f'<rect x="{x}" y="{TOP}" width="{bar - 1}" height="{HEIGHT}" fill="url(#{hatch})">'
                         f'<title>{label}</title></rect>')
            continue
        planned, unplanned = row.planned_downtime_s or 0.0, row.unplanned_downtime_s or 0.0
        below = (row.uptime_pct or 0.0) < benchmark
        parts.append(f'<g><title>{label}</title>'
                     f'<rect x="{x}" y="{y(planned):.1f}" width="{bar - 1}" height="{TOP + HEIGHT - y(planned):.1f}" '
                     'fill="#6b8fd6"/>'
                     f'<rect x="{x}" y="{y(planned + unplanned):.1f}" width="{bar - 1}" '
                     f'height="{y(planned) - y(planned + unplanned):.1f}" fill="{"#d9534f" if below else "#f0ad4e"}"/>'
                     f'<rect x="{x}" y="{TOP + HEIGHT}" width="{bar - 1}" height="4" '
                     f'fill="{"#d9534f" if below else "#5cb85c"}"/></g>')
    line = y(allowance)
    parts.append(f'<line x1="{LEFT}" y1="{line:.1f}" x2="{width - 10}" y2="{line:.1f}" stroke="#000" '
                 'stroke-dasharray="4 3"/>')
    parts.append(f'<text x="{LEFT}" y="{TOP + HEIGHT + 18}" font-size="10">{escape(str(days[0].day))}</text>'
                 if days else "")
    parts.append(f'<text x="{width - 10}" y="{TOP + HEIGHT + 18}" font-size="10" text-anchor="end">'
                 f'{escape(str(days[-1].day))}</text>' if days else "")
    parts.append(f'<text x="{LEFT}" y="{TOP + HEIGHT + 31}" font-size="10">bars: downtime per day (blue planned, '
                 f'orange/red unplanned, hatched unknown); dashed: {allowance / 60:.1f} min allowed by '
                 f'{benchmark:g} %</text></svg>')
    return "".join(parts)


def _summary_table(report: Report) -> str:
    head = ("<tr><th class=l>site</th><th class=l>interface</th><th>known days</th><th>uptime %</th>"
            "<th>unplanned only %</th><th>planned s</th><th>unplanned s</th><th>incident s</th><th>requests</th>"
            "<th>errors %</th><th>TTFB ms</th><th>total ms</th><th>worst day</th><th>days below</th></tr>")
    rows = []
    for s in report.summaries:
        css = "unk" if s.meets_benchmark is None else ("ok" if s.meets_benchmark else "bad")
        rows.append(
            f"<tr><td class=l>{escape(s.site)}</td><td class=l>{escape(LABELS[s.interface])}</td>"
            f"<td>{s.known_days}/{s.days}</td><td class={css}>{number(s.uptime_pct, 3)}</td>"
            f"<td>{number(s.unplanned_uptime_pct, 3)}</td><td>{number(s.planned_downtime_s, 0)}</td>"
            f"<td>{number(s.unplanned_downtime_s, 0)}</td><td>{number(s.incident_downtime_s, 0)}</td>"
            f"<td>{s.requests}</td><td>{number(s.error_rate_pct, 2, '-')}</td>"
            f"<td>{number(s.ttfb_mean_ms, 1, '-')}</td><td>{number(s.ttlb_mean_ms, 1, '-')}</td>"
            f"<td>{escape(str(s.worst_day or '-'))} ({number(s.worst_day_uptime_pct, 3, '-')})</td>"
            f"<td>{s.days_below_benchmark}</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _day_table(days: list[DayStats]) -> str:
    head = ("<tr><th class=l>day</th><th>uptime %</th><th>planned s</th><th>unplanned s</th><th>incident s</th>"
            "<th>probes</th><th>requests</th><th>errors %</th><th>TTFB mean</th><th>TTFB p95</th>"
            "<th>total mean</th><th>total p95</th></tr>")
    rows = [
        f"<tr><td class=l>{escape(str(r.day))}{'*' if r.partial else ''}</td>"
        f"<td class={'ok' if r.known else 'unk'}>{number(r.uptime_pct, 3)}</td>"
        f"<td>{number(r.planned_downtime_s, 0, '-')}</td><td>{number(r.unplanned_downtime_s, 0, '-')}</td>"
        f"<td>{number(r.incident_downtime_s, 0, '-')}</td><td>{r.probes}</td><td>{r.requests}</td>"
        f"<td>{number(r.error_rate_pct, 2, '-')}</td><td>{number(r.ttfb_mean_ms, 1, '-')}</td>"
        f"<td>{number(r.ttfb_p95_ms, 1, '-')}</td><td>{number(r.ttlb_mean_ms, 1, '-')}</td>"
        f"<td>{number(r.ttlb_p95_ms, 1, '-')}</td></tr>"
        for r in days]
    return f"<details><summary>every day</summary><table>{head}{''.join(rows)}</table></details>"


def _section(summary: RangeSummary, days: list[DayStats], benchmark: float, number_: int) -> str:
    errors = "".join(f"<li><span class=err>{escape(text)}</span> × {count}</li>" for text, count in summary.top_errors)
    return (f"<h2>{escape(summary.site)}: {escape(LABELS[summary.interface])}</h2>"
            f"{_chart(days, benchmark, number_)}{_day_table(days)}"
            + (f"<p>Most frequent errors:</p><ul>{errors}</ul>" if errors else ""))


def render_html(report: Report, out: TextIO) -> None:
    """Write the page."""
    title, *notes = header_lines(report)
    out.write(f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
              f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
              f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
              f"<h1>{escape(title)}</h1><ul class=notes>{''.join(f'<li>{escape(n)}</li>' for n in notes)}</ul>"
              f"<p>Generated {escape(report.generated_at)}.</p><h2>Summary</h2>{_summary_table(report)}")
    for i, summary in enumerate(report.summaries):
        days = [r for r in report.days if r.site == summary.site and r.interface == summary.interface]
        out.write(_section(summary, days, report.benchmark_pct, i))
    out.write("</body></html>\n")
