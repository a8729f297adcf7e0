"""A page's paint figures are read after its first contentful paint, not at the load
event: a page whose content a script renders after load (or a machine slow to paint)
still reports First and Largest Contentful Paint; a page that paints nothing contentful
still reports its navigation figures, within a bounded wait."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from prober.results import Outcome
from tests.browser_helpers import Pages, config, plans_of, runner_for, step, warm_up

pytestmark = pytest.mark.exclusive  # a page's figures within the journey's timeout

LATE = ("<title>late</title><body><script>addEventListener('load', () => setTimeout(() => {"
        " document.body.innerHTML = '<h1>Balances</h1><p id=balance>1,234.00 EUR</p>'; }, 150));</script></body>")
BLANK = "<title>blank</title><body></body>"


async def _first_step_of(tmp_path: Path, path: str, body: str):
    async with Pages({path: body}) as pages:
        plans = plans_of(tmp_path, config(pages.url, step("open", f'goto = "{path}"')))
        runner = runner_for(tmp_path, evidence_runs=0)
        try:
            await warm_up(runner, pages.url, tmp_path)  # a fresh Chromium paints its first page late
            started = time.monotonic()
            result = await runner(plans[0])
            took = time.monotonic() - started
        finally:
            await runner.close()
    assert result.outcome is Outcome.OK, result.error
    return result.steps[0], took


async def test_content_rendered_after_load_reports_its_paints(tmp_path: Path) -> None:
    opened, _ = await _first_step_of(tmp_path, "/late", LATE)
    figures = opened.page
    assert figures is not None and figures.load_ms is not None
    assert figures.fcp_ms is not None and figures.fcp_ms >= figures.load_ms, figures
    assert figures.lcp_ms is not None and figures.lcp_ms >= figures.fcp_ms, figures


async def test_a_page_that_paints_nothing_still_gives_its_navigation_figures(tmp_path: Path) -> None:
    opened, took = await _first_step_of(tmp_path, "/blank", BLANK)
    figures = opened.page
    assert figures is not None and figures.dcl_ms is not None and figures.load_ms is not None
    assert figures.fcp_ms is None and figures.lcp_ms is None, figures
    assert took < 5, took
