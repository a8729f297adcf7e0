"""Lockout protection against a bank refusing the prober's logins."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from prober.bank import BankServer
from prober.loading import load
from prober.daemon.lockout import LockoutTracker
from prober.daemon.service import ProberService
from prober.results import JourneyResult, Outcome
from prober.writer.writer import ResultWriter
from tests.test_daemon_helpers import Recorder, check, config_text, wait_for

COOLDOWN = 1.5


def _token_requests(bank: BankServer) -> int:
    return bank.state.requests_by_path.get("POST /oauth/token", 0)


async def test_site_backs_off_after_auth_failures_and_resumes(bank: BankServer, tmp_path: Path) -> None:
    bank.state.password = "changed-by-the-bank"  # the prober's password is now wrong
    path = tmp_path / "prober.toml"
    path.write_text(config_text(
        bank.url,
        [check("login", interval="200ms"), check("accounts", interval="200ms")],
        daemon={"lockout_after": 3, "lockout_cooldown": f"{COOLDOWN}s", "state_dir": str(tmp_path / "state")},
    ))
    recorder = Recorder()
    service = ProberService(load(path), writer=ResultWriter(None, spool_dir=tmp_path / "spool"), consumers=[recorder])
    await service.start()
    try:
        await wait_for(lambda: service.scheduler.lockout_skips >= 1, timeout=5, what="the lockout")
        locked_at = time.monotonic()
        auth_failures = [r for r in recorder.results if r.outcome is Outcome.AUTH]
        # 3 failures lock the site; a run already in flight may add one.
        assert 3 <= len(auth_failures) <= 4, [(r.check, r.outcome) for r in recorder.results]
        at_lock = _token_requests(bank)
        assert at_lock == len(auth_failures)

        # During the cool-down nothing reaches the bank; both checks record skipped runs.
        await asyncio.sleep(COOLDOWN * 0.6)
        assert _token_requests(bank) == at_lock
        skipped = [r for r in recorder.results if r.outcome is Outcome.SKIPPED]
        assert {r.check for r in skipped} == {"login", "accounts"}
        assert all("backing off after 3 consecutive auth failures" in r.error and " until " in r.error for r in skipped)
        assert (tmp_path / "state" / "lockout.json").exists()

        # After the cool-down: one probe run, refused again → backing off again.
        await wait_for(lambda: _token_requests(bank) > at_lock, timeout=COOLDOWN + 2, what="the probe run")
        assert time.monotonic() - locked_at >= COOLDOWN * 0.9
        await asyncio.sleep(0.6)
        assert _token_requests(bank) == at_lock + 1

        # The bank accepts the password again: the next probe passes and checks resume.
        bank.state.password = "s3cret-pw"
        await wait_for(lambda: len([r for r in recorder.results if r.outcome is Outcome.OK]) >= 6,
                       timeout=COOLDOWN + 3, what="runs to resume")
        assert {r.check for r in recorder.results if r.outcome is Outcome.OK} == {"login", "accounts"}
        assert service.lockout.locked_sites() == {}
    finally:
        await service.stop(grace=1.0)


def _result(outcome: Outcome, check: str = "login", site: str = "bank") -> JourneyResult:
    return JourneyResult(site=site, check=check, kind="login", location="here", outcome=outcome,
                         started_at_ns=time.time_ns(), duration_ms=1.0)


async def test_lockout_rules_and_persistence(tmp_path: Path) -> None:
    tracker = LockoutTracker(after=3, cooldown=60.0, state_dir=tmp_path)
    for outcome in (Outcome.AUTH, Outcome.AUTH, Outcome.TIMEOUT, Outcome.AUTH, Outcome.AUTH):
        tracker.consume(_result(outcome))
    assert tracker.refusal("bank", "login") is None  # a timeout reset the count
    tracker.consume(_result(Outcome.SKIPPED))  # skipped runs neither count nor reset
    tracker.consume(_result(Outcome.AUTH, check="accounts"))
    reason = tracker.refusal("bank", "login")
    assert reason and "site bank is backing off" in reason
    assert tracker.refusal("other", "login") is None
    saved = json.loads((tmp_path / "lockout.json").read_text())
    assert set(saved["until"]) == {"bank"}

    # A restart keeps backing off.
    again = LockoutTracker(after=3, cooldown=60.0, state_dir=tmp_path)
    await again.start()
    assert again.refusal("bank", "accounts") is not None

    # After the cool-down, only one check probes; the others wait for its result.
    later = time.time() + 61.0
    assert again.refusal("bank", "accounts", now=later) is None
    assert "waiting for the probe run" in (again.refusal("bank", "login", now=later) or "")
    again.consume(_result(Outcome.OK, check="accounts"))
    assert again.refusal("bank", "login") is None
    assert json.loads((tmp_path / "lockout.json").read_text()) == {"until": {}}
