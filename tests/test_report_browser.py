"""The HTML report in a real browser: Debian's chromium (headless, driven by Playwright),
on the known history of ``tests/report_history.py`` read from a real InfluxDB 1.6.

Asserted from the boxes the browser laid out: every bar sits over its own date and the
bars fill the plot's width; a day without data is a short grey "?" at the base, not a
bar; the caption is shown whole; each day's uptime cell is green only when the day meets
the benchmark; the customer-interface comparison and the maintenance windows are there.

``BANK_PROBER_REPORT_SCREENSHOT=FILE`` also writes the page's screenshot there.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from playwright.async_api import async_playwright

from prober.cli import main
from tests.chromium_helpers import CHROMIUM, CHROMIUM_ARGS
from tests.fixtures.servers import InfluxDBServer, new_database
from tests.report_history import CONFIG, SITES, history

MEASURE = """() => {
    const charts = [...document.querySelectorAll("figure")].map(figure => {
        const svg = figure.querySelector("svg").getBoundingClientRect();
        const bars = [...figure.querySelectorAll("g.day")].map(g => {
            const box = g.querySelector("rect").getBoundingClientRect();
            return {day: g.dataset.day, unknown: g.classList.contains("unknown"),
                    left: box.left, right: box.right, height: box.height};
        });
        const dates = [...figure.querySelectorAll("text.date")].map(t => {
            const box = t.getBoundingClientRect();
            return {day: t.dataset.day, centre: (box.left + box.right) / 2};
        });
        const caption = figure.querySelector("figcaption");
        const cbox = caption.getBoundingClientRect();
        return {svgLeft: svg.left, svgRight: svg.right, bars, dates,
                caption: {right: cbox.right, scroll: caption.scrollWidth, client: caption.clientWidth,
                          text: caption.textContent}};
    });
    const cells = [...document.querySelectorAll("table.days tr")].map(tr => {
        const tds = tr.querySelectorAll("td");
        if (tds.length < 2) return null;
        return {day: tds[0].textContent, uptime: tds[1].textContent,
                background: getComputedStyle(tds[1]).backgroundColor};
    }).filter(Boolean);
    return {charts, cells, width: window.innerWidth};
}"""

GREEN = "rgb(216, 240, 216)"


async def test_the_html_report_reads_right_in_a_browser(influxdb_v1: InfluxDBServer, tmp_path: Path):
    db = new_database(influxdb_v1, "page")
    try:
        influxdb_v1.write_lines(db.name, history())
        config = tmp_path / "p.toml"
        config.write_text(CONFIG.format(url=db.url, db=db.name) + SITES)
        page_file = tmp_path / "report.html"
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["report", "-c", str(config), "--from", "2026-03-02", "--to", "2026-03-07",
                         "--format", "html", "-o", str(page_file)]) == 0
    finally:
        influxdb_v1.drop_database(db.name)
    html = page_file.read_text()
    assert "worse: uptime" in html and "payments platform upgrade" in html and "customer interface" in html
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await page.goto(page_file.as_uri())
            await page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
            measured = await page.evaluate(MEASURE)
            shot = os.environ.get("BANK_PROBER_REPORT_SCREENSHOT")
            if os.environ.get("BANK_PROBER_REPORT_HTML"):
                Path(os.environ["BANK_PROBER_REPORT_HTML"]).write_text(html)
            if shot:
                await page.screenshot(path=shot, full_page=True)
        finally:
            await browser.close()
    charts = measured["charts"]
    assert len(charts) == 6  # alpha: ais, ais (customer), pis, cof; beta: ais, pis
    for chart in charts:
        bars = chart["bars"]
        assert [b["day"] for b in bars] == [f"2026-03-0{d}" for d in range(2, 8)]
        slot = (bars[-1]["right"] - bars[0]["left"]) / len(bars)
        # the bars fill the plot: the first starts at its left edge, the last ends at its right
        assert bars[0]["left"] - chart["svgLeft"] < 60 and chart["svgRight"] - bars[-1]["right"] < 20
        assert slot > 100
        by_day = {b["day"]: b for b in bars}
        assert chart["dates"], "no date under the bars"
        for date in chart["dates"]:  # each date label is centred under its own bar
            bar = by_day[date["day"]]
            assert bar["left"] <= date["centre"] <= bar["right"], (date, bar)
        for bar in bars:
            if bar["unknown"]:
                assert bar["height"] < 20  # a short grey "?", not a full bar that reads as downtime
        assert chart["caption"]["scroll"] <= chart["caption"]["client"] + 1
        assert chart["caption"]["right"] <= measured["width"] and "allows" in chart["caption"]["text"]
    unknown = [b for c in charts for b in c["bars"] if b["unknown"]]
    assert {b["day"] for b in unknown} == {"2026-03-06"}
    cells = [c for c in measured["cells"] if c["day"].startswith("2026-")]
    assert cells
    for cell in cells:
        meets = cell["uptime"] != "unknown" and float(cell["uptime"]) >= 99.5
        assert (cell["background"] == GREEN) == meets, cell
