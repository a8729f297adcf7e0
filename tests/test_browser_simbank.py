"""Browser checks in real Chromium against the simulated bank's web front: each web
check passes on a healthy bank with its page figures, each fault of the bank (the API's
and the web-only ones) is caught on the right capability with the right outcome,
cleanup steps run after a failure, runs do not share cookies, and the evidence of a
failed run is kept with no secret in any of its bytes."""

from __future__ import annotations

import base64
import zipfile
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import pytest_asyncio

from prober.journey.dispatch import JourneyRunner
from prober.results import Outcome
from prober.simbank import BankServer, Fault
from tests.browser_helpers import PASSWORD, plans_of, run_named, runner_for, web_checks_config

WEB_CHECKS = ("web-login", "web-accounts", "web-transfer", "web-cards")

pytestmark = pytest.mark.asyncio(loop_scope="module")  # the module's shared browser lives on its loop


@pytest_asyncio.fixture(loop_scope="module")
async def bank():
    async with BankServer(port=0) as server:
        yield server


async def test_every_web_check_passes_with_its_page_figures(
    bank: BankServer, shared_browser: JourneyRunner, tmp_path: Path,
) -> None:
    plans = plans_of(tmp_path, web_checks_config(bank.url, tmp_path / "state", only=WEB_CHECKS))
    results = {check: await run_named(shared_browser, plans, check) for check in WEB_CHECKS}
    for check, result in results.items():
        assert result.outcome is Outcome.OK, (check, result.failed_step, result.error)
        assert result.evidence == ()
    accounts = results["web-accounts"]
    assert [s.name for s in accounts.steps] == ["login-page", "credentials", "sign-in", "balances"]
    page_step = accounts.steps[0]  # goto /web/login: a navigation
    assert page_step.http_status == 200 and page_step.phases is not None and page_step.page is not None
    assert page_step.phases.ttfb_ms > 0 and page_step.bytes > 500
    figures = page_step.page
    assert figures.dcl_ms and figures.load_ms and figures.dcl_ms <= figures.load_ms
    assert figures.fcp_ms and figures.lcp_ms and figures.cls is not None
    fill = accounts.steps[1]  # typing: no navigation, no navigation figures, counts still
    assert fill.phases is None and fill.page is not None and fill.page.lcp_ms is None
    assert fill.page.console_errors == 0 and fill.page.failed_requests == 0
    assert bank.state.cards["card-003"].status == "ACTIVE"
    assert any(p.status(0) for p in bank.state.payments.values())  # the web transfer was made


@pytest.mark.parametrize(("capability", "fault", "check", "step", "outcome", "words"), [
    ("accounts", Fault(mode="wrong_data"), "web-accounts", "balances", Outcome.ASSERTION,
     "rendered closing balance: expected > 0, got '0.00 EUR'"),
    ("transfer", Fault(mode="script_error"), "web-transfer", "send", Outcome.ERROR,
     "error: uncaught page error: Cannot read properties of undefined (reading 'submit')"),
    ("cards", Fault(mode="blank"), "web-cards", "freeze", Outcome.ASSERTION,
     "assertion failed: #freeze-card-003: no element to click"),
    ("accounts", Fault(mode="slow_render"), "web-accounts", "balances", Outcome.SLOW,
     "slow: "),
    ("transfer", Fault(mode="down"), "web-transfer", "form", Outcome.HTTP_STATUS, "HTTP 503 (page: form)"),
    ("login", Fault(mode="refuse"), "web-login", "login-page", Outcome.AUTH, "HTTP 403 (page: login-page)"),
    ("accounts", Fault(mode="hang"), "web-accounts", "sign-in", Outcome.TIMEOUT, "timeout: "),
])
async def test_each_fault_is_caught_on_its_capability(
    bank: BankServer, shared_browser: JourneyRunner, tmp_path: Path, capability: str, fault: Fault, check: str,
    step: str, outcome: Outcome, words: str,
) -> None:
    plans = plans_of(tmp_path, web_checks_config(bank.url, tmp_path / "state", only=WEB_CHECKS))
    bank.faults.set(capability, fault)
    # The other capabilities must stay up, except where the fault takes them down too: a
    # refused login, and a hanging accounts page (every web journey signs in through it).
    # There the other checks are not run: each would only wait for its own timeout.
    spreads = capability == "login" or (capability == "accounts" and fault.mode == "hang")
    results = {name: await run_named(shared_browser, plans, name) for name in ((check,) if spreads else WEB_CHECKS)}
    failed = results[check]
    assert (failed.outcome, failed.failed_step) == (outcome, step), (failed.outcome, failed.failed_step, failed.error)
    assert words in failed.error, failed.error
    for other, result in results.items():
        kind = next(p.kind for p in plans if p.check == other)
        if kind != capability:
            assert result.outcome is Outcome.OK, (other, result.failed_step, result.error)
    assert spreads or len(results) == len(WEB_CHECKS)


async def test_cleanup_steps_run_after_a_failure_and_the_card_is_unfrozen(
    bank: BankServer, shared_browser: JourneyRunner, tmp_path: Path,
) -> None:
    text = web_checks_config(bank.url, tmp_path / "state", only=("web-cards",)).replace(
        'expect = [ { selector = "#status-card-003", equals = "FROZEN" } ]',
        'expect = [ { selector = "#status-card-003", equals = "MELTED" } ]', 1)
    plans = plans_of(tmp_path, text)
    result = await run_named(shared_browser, plans, "web-cards")
    assert (result.outcome, result.failed_step) == (Outcome.ASSERTION, "freeze")
    assert "expected 'MELTED', got 'FROZEN'" in result.error
    steps = {s.name: s for s in result.steps}
    assert steps["back-to-cards"].outcome is Outcome.OK and steps["back-to-cards"].always_run
    assert steps["unfreeze"].outcome is Outcome.OK
    assert bank.state.cards["card-003"].status == "ACTIVE"


async def test_runs_share_no_cookies(bank: BankServer, shared_browser: JourneyRunner, tmp_path: Path) -> None:
    """The second run opens the accounts page without logging in: its fresh context has
    no session cookie of the first run, so the bank sends it to the login page. Both on the
    module's shared browser, which has served the other tests' logins before."""
    extra = """
[[sites.checks]]
name = "no-login"
kind = "custom"
  [[sites.checks.steps]]
  name = "accounts"
  goto = "/web/accounts"
  expect = [ { title = true, equals = "Accounts" } ]
"""
    plans = plans_of(tmp_path, web_checks_config(bank.url, tmp_path / "state", only=("web-login", "no-login")) + extra)
    logged_in = await run_named(shared_browser, plans, "web-login")
    fresh = await run_named(shared_browser, plans, "no-login")
    assert logged_in.outcome is Outcome.OK
    assert fresh.outcome is Outcome.ASSERTION and "title: expected 'Accounts', got 'Sign in'" in fresh.error


def _forms(secret: str) -> set[bytes]:
    raw = secret.encode()
    forms = {raw, quote(secret, safe="").encode(), quote_plus(secret).encode(), base64.b64encode(raw)}
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        forms.add(encoded[-(-8 * offset // 6): (8 * (offset + len(raw))) // 6].encode())
    return {form for form in forms if len(form) >= 6}


async def test_evidence_of_a_failed_run_is_kept_without_any_secret(bank: BankServer, tmp_path: Path) -> None:
    bank.faults.set("accounts", Fault(mode="wrong_data"))
    plans = plans_of(tmp_path, web_checks_config(bank.url, tmp_path / "state", only=("web-accounts",)))
    runner = runner_for(tmp_path)
    try:
        result = await run_named(runner, plans, "web-accounts")
    finally:
        await runner.close()
    assert result.outcome is Outcome.ASSERTION
    shots = [Path(p) for p in result.evidence if p.endswith(".png")]
    traces = [Path(p) for p in result.evidence if p.endswith(".trace.zip")]
    assert len(shots) == 1 and len(traces) == 1, result.evidence
    folder = tmp_path / "state" / "evidence" / "simbank" / "web-accounts"
    assert shots[0].parent == folder and shots[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The secrets of the run: the password typed, the web session's cookie, the API token
    # the page kept in its storage and sent in an Authorization header.
    [(session, (_user, api_token))] = bank.web_sessions.sessions.items()
    secrets = {PASSWORD: _forms(PASSWORD), session: _forms(session), api_token: _forms(api_token)}
    with zipfile.ZipFile(traces[0]) as trace:
        entries = {name: trace.read(name) for name in trace.namelist()}
    assert any(name.endswith(".network") for name in entries) and any(b"/web/login" in d for d in entries.values())
    assert any(b"***" in data for data in entries.values())  # the scrubbing did mask something
    for path in [*shots, *traces]:
        blobs = {str(path): path.read_bytes(), **({f"{path}!{n}": d for n, d in entries.items()}
                                                  if path in traces else {})}
        for where, data in blobs.items():
            for secret, forms in secrets.items():
                for form in forms:
                    assert form not in data, f"{where} holds a form of the secret {secret[:3]}…: {form[:12]!r}"
    # Nothing of the run stays in clear where Playwright recorded it.
    leftovers = [p for p in (tmp_path / "state" / "browser-traces").rglob("*") if p.is_file()]
    for path in leftovers:
        assert PASSWORD.encode() not in path.read_bytes(), path


async def test_evidence_is_bounded_per_check(bank: BankServer, tmp_path: Path) -> None:
    bank.faults.set("accounts", Fault(mode="wrong_data"))
    text = web_checks_config(bank.url, tmp_path / "state", only=("web-accounts",))
    plans = plans_of(tmp_path, text)
    runner = runner_for(tmp_path, evidence_runs=2)
    try:
        for _ in range(3):
            await run_named(runner, plans, "web-accounts")
    finally:
        await runner.close()
    folder = tmp_path / "state" / "evidence" / "simbank" / "web-accounts"
    kept = sorted(p.name for p in folder.iterdir())
    assert len(kept) == 4, kept  # two runs, a screenshot and a trace each
    assert len({name.split(".")[0] for name in kept}) == 2
