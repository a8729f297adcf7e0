"""What a page can do to a browser check, each ending in its documented outcome within
the timeout: a dialog, a popup, a download, a page that never finishes loading, a script
that never ends, a navigation to another origin, a 500, errors counted; and the browser
itself killed (relaunched for the next run), validation of selectors and of Chromium."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from prober.config.errors import ConfigError
from prober.journey.dispatch import JourneyRunner
from prober.loading import load
from prober.results import Outcome
from tests.browser_helpers import Pages, chromium_pids, config, plans_of, runner_for, step, warm_up
from tests.cli import run_prober

SHARED_LOOP = pytest.mark.asyncio(loop_scope="module")
"""The tests run on the module's event loop, where its shared browser lives."""


def open_and_click(path: str) -> str:
    """A browser check's two steps: open ``path``, click ``#b``."""
    return step("open", f'goto = "{path}"') + step("click", 'click = "#b"')


@pytest.mark.parametrize(("steps", "failed", "outcome", "words"), [
    (open_and_click("/dialog"), "click", Outcome.ERROR, "unexpected dialog (alert: Are you sure?), dismissed"),
    (open_and_click("/popup"), "click", Outcome.ERROR, "the page opened a popup (http://127.0.0.1:"),
    (open_and_click("/download"), "click", Outcome.ERROR, "the page started a download (statement.pdf)"),
    (step("open", 'goto = "/never"'), "open", Outcome.TIMEOUT, "timeout: the page did not finish loading within 3s"),
    (open_and_click("/loop"), "click", Outcome.TIMEOUT, "timeout: the page stopped responding"),
    (open_and_click("/away"), "click", Outcome.ERROR, "the page went to another origin (http://127.0.0.1:"),
    (step("open", 'goto = "/error"'), "open", Outcome.HTTP_STATUS, "HTTP 500 (page: open)"),
])
@SHARED_LOOP
async def test_each_hostile_page_ends_in_its_outcome_within_the_timeout(
    shared_browser: JourneyRunner, tmp_path: Path, steps: str, failed: str, outcome: Outcome, words: str
) -> None:
    """On one browser, as the daemon runs them: each hostile page ends its own run, and the
    next test's run finds the browser serving."""
    async with Pages() as pages:
        plans = plans_of(tmp_path, config(pages.url, steps))
        await warm_up(shared_browser, pages.url, tmp_path)  # the hostile run is timed once the browser is up
        started = time.monotonic()
        result = await shared_browser(plans[0])
        took = time.monotonic() - started
    assert (result.outcome, result.failed_step) == (outcome, failed), (result.outcome, result.failed_step, result.error)
    assert words in result.error, result.error
    assert took < 8 + 3, took  # the journey's timeout, and its closing


@SHARED_LOOP
async def test_the_dialog_a_step_expects_is_answered(shared_browser: JourneyRunner, tmp_path: Path) -> None:
    async with Pages() as pages:
        plans = plans_of(tmp_path, config(pages.url, step("open", 'goto = "/dialog"')
                                          + step("click", 'click = "#b"\n  dialog = "accept"')))
        result = await shared_browser(plans[0])
    assert result.outcome is Outcome.OK, result.error


@SHARED_LOOP
async def test_console_errors_and_failed_subrequests_are_counted(shared_browser: JourneyRunner, tmp_path: Path) -> None:
    async with Pages() as pages:
        plans = plans_of(tmp_path, config(pages.url, step(
            "open", 'goto = "/ok"\n  expect = [ { selector = "#x", equals = "fine" } ]')))
        result = await shared_browser(plans[0])
    assert result.outcome is Outcome.OK, result.error
    page = result.steps[0].page
    assert page is not None and page.console_errors >= 1 and page.failed_requests == 1 and page.page_errors == 0


@SHARED_LOOP
async def test_a_killed_browser_is_launched_again_for_the_next_run(tmp_path: Path) -> None:
    async with Pages() as pages:
        plans = plans_of(tmp_path, config(pages.url, step("open", 'goto = "/ok"')))
        runner = runner_for(tmp_path)
        try:
            assert (await runner(plans[0])).outcome is Outcome.OK
            assert runner.browser is not None and runner.browser.pid is not None
            own = runner.browser.pid  # its Chromium, not the module's shared one
            [pid] = chromium_pids(own)
            os.kill(pid, signal.SIGKILL)  # and the next run at once, before the driver may have seen it
            after = await runner(plans[0])
            assert after.outcome is Outcome.OK, after.error
            relaunched = chromium_pids(own)
            assert relaunched and relaunched != [pid]
            assert runner.browser.starts == 1  # the same browser process
        finally:
            await runner.close()
    assert [p for p in relaunched if os.path.exists(f"/proc/{p}")] == []


@SHARED_LOOP
async def test_a_killed_browser_process_ends_its_runs_and_a_new_one_serves_the_next(tmp_path: Path) -> None:
    async with Pages() as pages:
        plans = plans_of(tmp_path, config(pages.url, step("open", 'goto = "/never"')))
        quick = plans_of(tmp_path, config(pages.url, step("open", 'goto = "/ok"')), "quick.toml")
        runner = runner_for(tmp_path)
        try:
            running = asyncio.create_task(runner(plans[0]))  # a page that never finishes loading
            while not (runner.browser and runner.browser.pid and (orphaned := chromium_pids(runner.browser.pid))):
                await asyncio.sleep(0.05)
            assert runner.browser is not None and runner.browser.pid is not None
            os.kill(runner.browser.pid, signal.SIGKILL)
            ended = await asyncio.wait_for(running, 5)
            assert ended.outcome is Outcome.ERROR, ended
            assert ended.error == "error: the browser process exited (code -9) during the run", ended.error
            after = await runner(quick[0])
            assert after.outcome is Outcome.OK, after.error
            assert runner.browser.starts == 2
        finally:
            await runner.close()
    # The killed process's Chromium, orphaned, is ended by its driver, which saw its pipe close.
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{pid}") for pid in orphaned) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not [pid for pid in orphaned if os.path.exists(f"/proc/{pid}")], orphaned


@pytest.mark.parametrize(("body", "message"), [
    ('click = "button[type=submit"',
     "steps[s].click: invalid selector 'button[type=submit': Malformed attribute selector"),
    ('click = "foo=bar"', "steps[s].click: invalid selector 'foo=bar': unknown selector engine 'foo'"),
    ('fill = { "#a >> " = "x" }', "steps[s].fill: invalid selector '#a >> ': empty part around '>>'"),
    ('wait_for = { selector = "xpath=//div[" }',
     "steps[s].wait_for.selector: invalid selector 'xpath=//div[': unclosed bracket"),
    ('expect = [ { selector = "#a", attribute = "x" } ]', "steps[s].expect[0]: an expectation needs at least one of"),
    ('goto = "/a"\n  click = "#b"', "steps[s]: step 's': one action per step, got goto, click"),
    ('expect = [ { title = true, count = 1 } ]',
     "steps[s].expect[0]: `count` applies to a `selector` expectation only"),
    ('fill = { "#user" = "{{ nobody }}" }',
     "steps[s].fill: uses {{ nobody }}, which is not a site var or secret nor extracted by an earlier step"),
    ('goto = "/{{ oops"', "steps[s].goto: invalid template: unexpected end of template"),
])
def test_validate_names_the_field_of_a_bad_browser_step(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(config("http://127.0.0.1:9", step("s", body)))
    with pytest.raises(ConfigError) as caught:
        load(path, environ={})
    assert any(message in problem for problem in caught.value.problems), caught.value.problems


def test_selectors_validate_accepts_are_the_ones_chromium_accepts(tmp_path: Path) -> None:
    good = ['#a', 'button[type=submit]', 'text=Sign in', '"Sign in"', 'xpath=//div[@id="a"]', '//main//p',
            'role=button[name="Send"]', 'css=li:nth-child(2) >> text=x', 'div:has-text("Total")', 'a:visible',
            'data-testid=balance', 'section:has(> h1)']
    steps = "".join(step(f"s{i}", f"expect = [ {{ selector = '{s}', min_count = 0 }} ]") for i, s in enumerate(good))
    path = tmp_path / "good.toml"
    path.write_text(config("http://127.0.0.1:9", steps))
    assert load(path, environ={}).plans


async def test_validate_fails_with_the_fix_when_chromium_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(config("http://127.0.0.1:9", step("s", 'goto = "/"')).replace(
        '[daemon]\n', '[daemon]\nchromium = "/nonexistent/chromium"\n'))
    done = await run_prober("validate", "-c", str(path))
    assert done.returncode == 2, done.stderr
    assert ("browser checks (web/page) cannot run here: Chromium is not installed at /nonexistent/chromium"
            in done.stderr)
    assert "apt-get install chromium" in done.stderr and "Traceback" not in done.stderr


def test_validate_fails_with_the_fix_when_the_playwright_package_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util
    import sys

    path = tmp_path / "p.toml"
    path.write_text(config("http://127.0.0.1:9", step("s", 'goto = "/"')))
    found = importlib.util.find_spec("playwright")
    assert found is not None and found.submodule_search_locations
    installed_in = str(Path(next(iter(found.submodule_search_locations))).parent)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if Path(p).resolve() != Path(installed_in).resolve()])
    for name in [n for n in sys.modules if n == "playwright" or n.startswith("playwright.")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ConfigError) as caught:
        load(path, environ={})
    assert any("the Python package playwright is not installed" in p and "requirements/runtime.txt" in p
               for p in caught.value.problems), caught.value.problems
