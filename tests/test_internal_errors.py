"""One journey's internal error is that journey's `error` outcome; the others still run.

Against a real aiohttp bank on loopback: a JSON array nested 200,000 deep, and a step
whose assertion raises (a stand-in for any bug in the prober).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from prober.cli import run_once
from prober.journey.checks import CompiledAssertion, Redact, Response
from prober.loading import load
from prober.results import Outcome
from tests.cli import run_prober
from tests.fixtures.echo_bank import TOKEN, EchoBank

MAX_JSON_DEPTH = 100  # the documented limit


def check(name: str, steps: str) -> str:
    return f'[[sites.checks]]\nname = "{name}"\nkind = "accounts"\ninterval = "60s"\ntimeout = "10s"\n{steps}'


def step(name: str, path: str, extra: str = "", method: str = "GET") -> str:
    return f'  [[sites.checks.steps]]\n  name = "{name}"\n  method = "{method}"\n  path = "{path}"\n{extra}\n'


def config(url: str, *checks: str) -> str:
    return f'[[sites]]\nname = "hostile"\nbase_url = "{url}"\ntimeout = "5s"\n\n' + "\n".join(checks)


async def test_deeply_nested_json_fails_its_check_and_every_check_prints(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    async with EchoBank() as bank:
        path.write_text(config(
            bank.url,
            check("deep-assert", step("deep", "/deep", '  expect = [ { json = "[0]", exists = true } ]')),
            check("deep-extract", step("deep", "/deep", '  extract = { first = { json = "[0]" } }')),
            check("deep-body", step("deep", "/deep", '  expect = [ { body = true, contains = "nope" } ]')),
            check("fine", step("ok", "/ok", '  expect = [ { json = "status", equals = "ok" } ]')),
        ))
        done = await run_prober("check", "-c", str(path), "--json")
        table = await run_prober("check", "-c", str(path))
    assert "Traceback" not in done.stderr + table.stderr
    assert done.returncode == table.returncode == 1, done.stderr
    results = done.by_check()
    too_deep = f"response body is JSON nested deeper than {MAX_JSON_DEPTH} levels"
    assert results["deep-assert"]["outcome"] == "assertion"
    assert results["deep-assert"]["error"] == f"assertion failed: json [0]: {too_deep}"
    assert results["deep-extract"]["outcome"] == "assertion"
    assert results["deep-extract"]["error"] == f"extract first: {too_deep}"
    assert results["deep-body"]["outcome"] == "assertion"  # a text excerpt of it is fine
    assert results["fine"]["outcome"] == "ok"
    assert all(name in table.stdout for name in results)


async def test_a_bug_in_a_step_is_that_journey_s_error_and_cleanup_still_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="prober.journey")
    original = CompiledAssertion.check

    def buggy(self: CompiledAssertion, response: Response, values: Mapping[str, Any], redact: Redact) -> str | None:
        if self.label == "explodes":
            raise RecursionError(f"maximum recursion depth exceeded near {TOKEN}")
        return original(self, response, values, redact)

    monkeypatch.setattr(CompiledAssertion, "check", buggy)
    path = tmp_path / "bug.toml"
    async with EchoBank() as bank:
        path.write_text(config(
            bank.url,
            check("buggy",
                  step("token", "/oauth/token",
                       '  form = { a = "b" }\n  extract = { access_token = { json = "access_token" } }', method="POST")
                  + step("probe", "/ok", '  expect = [ { json = "status", equals = "ok", description = "explodes" } ]')
                  + step("after", "/ok")
                  + step("cleanup", "/landing", "  always_run = true")),
            check("fine", step("ok", "/ok", '  expect = [ { json = "status", equals = "ok" } ]')),
        ))
        results = {r.check: r for r in await run_once(load(path, environ={}).plans)}
        cleanups = bank.seen("/landing")
    buggy_run = results["buggy"]
    assert buggy_run.outcome is Outcome.ERROR
    assert buggy_run.failed_step == "probe"
    assert buggy_run.error == "error: internal RecursionError in step probe"
    assert [(s.name, s.outcome) for s in buggy_run.steps] == [
        ("token", Outcome.OK), ("probe", Outcome.ERROR), ("after", Outcome.SKIPPED), ("cleanup", Outcome.OK)]
    assert len(cleanups) == 1
    assert results["fine"].outcome is Outcome.OK
    # Logged by class, the traceback at debug level only, and without the exception's secret.
    assert "check hostile/buggy step probe raised RecursionError" in caplog.text
    assert "Traceback" in caplog.text and "maximum recursion depth exceeded near ***" in caplog.text
    assert TOKEN[:8] not in caplog.text
