"""The browser process: browser journeys run in a process of their own, at a lower CPU
priority (so are its driver and Chromium), its log records reach the prober's logging,
and a terminal's Ctrl-C does not take it from under running journeys."""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from prober.journey.browser import priority, process
from prober.journey.browser.priority import autogroup
from prober.journey.browser.process import run_request
from prober.journey.browser.worker import NICENESS
from prober.results import Outcome
from tests.browser_helpers import Pages, chromium_pids, config, plans_of, runner_for, step


def _niceness(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[16])


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


async def test_the_browser_side_runs_in_its_own_process_at_a_lower_priority(tmp_path: Path) -> None:
    async with Pages() as pages:
        plans = plans_of(tmp_path, config(pages.url, step("open", 'goto = "/ok"')))
        runner = runner_for(tmp_path)
        try:
            result = await runner(plans[0])
            assert result.outcome is Outcome.OK, result.error
            assert runner.browser is not None and runner.browser.pid is not None
            worker = runner.browser.pid
            [browser] = chromium_pids()
            driver = _parent(browser)
            assert _parent(driver) == worker and _parent(worker) == os.getpid()
            expected = min(_niceness(os.getpid()) + NICENESS, 19)
            assert [_niceness(pid) for pid in (worker, driver, browser)] == [expected] * 3
            assert _niceness(os.getpid()) == expected - NICENESS  # the prober's own is unchanged
            # Chromium runs in a session of its own: where the kernel shares the CPU by
            # session, that session's group gets the niceness too, also when the prober's
            # own process is in the kernel's default group (its file reads empty).
            own, chromium = autogroup("self"), autogroup(browser)
            assert chromium is None or (own is not None and chromium[0] == own[0]) or chromium[1] == NICENESS, (
                own, chromium)
        finally:
            await runner.close()
    assert chromium_pids() == []


async def test_its_log_records_reach_the_probers_logging(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="prober")
    async with Pages() as pages:
        plans = plans_of(tmp_path, config(pages.url, step("open", 'goto = "/ok"')))
        runner = runner_for(tmp_path)
        try:
            assert (await runner(plans[0])).outcome is Outcome.OK
            [browser] = chromium_pids()
            os.kill(browser, signal.SIGKILL)
            assert (await runner(plans[0])).outcome is Outcome.OK
        finally:
            await runner.close()
    warnings = [(r.name, r.levelno, r.getMessage()) for r in caplog.records if "browser is gone" in r.getMessage()]
    assert warnings == [("prober.journey.browser", logging.WARNING,
                         "the browser is gone (crashed or killed): launching it again")], caplog.text


async def test_a_terminals_interrupt_does_not_end_the_browser_process(tmp_path: Path) -> None:
    async with Pages() as pages:
        plans = plans_of(tmp_path, config(pages.url, step("open", 'goto = "/ok"')))
        runner = runner_for(tmp_path)
        try:
            assert (await runner(plans[0])).outcome is Outcome.OK
            assert runner.browser is not None and runner.browser.pid is not None
            [browser] = chromium_pids()
            for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
                os.kill(runner.browser.pid, signum)  # what a terminal or a service manager sends the group
            again = await runner(plans[0])
            assert again.outcome is Outcome.OK, again.error
            assert runner.browser.starts == 1 and chromium_pids() == [browser]
        finally:
            await runner.close()
    assert chromium_pids() == []


async def test_a_plan_changed_after_it_was_compiled_runs_as_changed(tmp_path: Path) -> None:
    """``prober demo`` shortens timeouts and trusts its test certificate by changing the
    compiled plans: the browser process compiles the steps again, and takes the rest as sent."""
    async with Pages() as pages:
        [plan] = plans_of(tmp_path, config(pages.url, step("open", 'goto = "/never"')))  # the check's timeout: 8s
        assert plan.browser is not None
        changed = dataclasses.replace(plan, timeout=1.5, location="elsewhere",
                                      browser=dataclasses.replace(plan.browser, ignore_https_errors=True))
        runner = runner_for(tmp_path)
        try:
            result = await runner(changed)
        finally:
            await runner.close()
    assert result.outcome is Outcome.TIMEOUT, result.error
    assert result.error.startswith("timeout: the page did not finish loading within 1.5s (journey timeout 1.5s"), \
        result.error
    assert result.location == "elsewhere"
    fields, journey_fields = run_request(changed)[1:]
    assert fields["timeout"] == 1.5 and journey_fields["ignore_https_errors"] is True


async def test_a_stuck_browser_process_is_killed_and_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run ends within its bounds whatever the page does: a browser process that does not
    answer in time is stuck (here: stopped), killed, and the next run gets a new one."""
    monkeypatch.setattr(process, "ANSWER_MARGIN", 1.0)
    async with Pages() as pages:
        [plan] = plans_of(tmp_path, config(pages.url, step("open", 'goto = "/ok"')))
        quick = dataclasses.replace(plan, timeout=1.0)
        runner = runner_for(tmp_path)
        try:
            assert (await runner(plan)).outcome is Outcome.OK
            assert runner.browser is not None and runner.browser.pid is not None
            stuck = runner.browser.pid
            os.kill(stuck, signal.SIGSTOP)
            result = await runner(quick)
            assert result.outcome is Outcome.ERROR
            assert result.error == ("error: the browser process did not answer within 3s (killed; the next run "
                                    "starts a new one)"), result.error
            after = await runner(plan)
            assert after.outcome is Outcome.OK, after.error
            assert runner.browser.starts == 2 and runner.browser.pid != stuck
        finally:
            await runner.close()


def test_a_plans_source_is_pickled_once_not_at_every_run(tmp_path: Path) -> None:
    [plan] = plans_of(tmp_path, config("http://127.0.0.1:9", step("open", 'goto = "/ok"')))
    first, again = run_request(plan)[0], run_request(dataclasses.replace(plan, timeout=1.0))[0]
    assert first is again  # the same bytes object: pickled once for the plan's source
    assert plan.browser is not None and pickle.loads(first) == plan.browser.source


def test_a_session_below_a_process_of_the_default_group_is_lowered_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # A prober started by init without a session of its own is in the kernel's default
    # autogroup, whose file reads empty; Chromium's session beside it must still be lowered.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        before = autogroup(child.pid)
        if before is None:  # a kernel without autogroups: nothing to lower, nothing changed
            assert priority.lower_autogroups(NICENESS) == 0
            return
        assert before[1] == 0, before
        real = priority.autogroup
        monkeypatch.setattr(priority, "autogroup", lambda pid: None if pid == "self" else real(pid))
        # (other descendants of the test process with sessions of their own count too)
        assert priority.lower_autogroups(NICENESS) >= 1
        assert autogroup(child.pid) == (before[0], NICENESS)
        assert priority.lower_autogroups(NICENESS) == 0  # already lowered: left alone
    finally:
        child.kill()
        child.wait()
