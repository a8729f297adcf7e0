"""Hostile answers end with a clear outcome, in bounded memory and time, through the real
runner against a real server on loopback (``tests.fixtures.hostile``)."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import pytest

from prober.journey.plan import JourneyPlan
from prober.journey.runner import run_journey
from prober.loading import load
from prober.results import JourneyResult, Outcome
from tests.cli import run_prober
from tests.fixtures.hostile import HostileServer

MiB = 1 << 20
STEP_TIMEOUT = 3.0
# What a loaded two-core machine may add to a step's time; the bodies below would take
# minutes (endless ones: forever) without the limits.
MARGIN_S = 2.0


def write_config(tmp_path: Path, base_url: str, path: str, *, site_extra: str = "", step_extra: str = "",
                 more_steps: str = "") -> Path:
    file = tmp_path / "hostile.toml"
    file.write_text(f"""
[[sites]]
name = "hostile"
base_url = "{base_url}"
timeout = "{STEP_TIMEOUT:g}s"
{site_extra}
[[sites.checks]]
name = "c"
kind = "custom"
interval = "1h"
timeout = "1m"
[[sites.checks.steps]]
name = "s"
path = "{path}"
{step_extra}
{more_steps}
""")
    return file


def plan_for(tmp_path: Path, base_url: str, path: str, **extra: str) -> JourneyPlan:
    return load(write_config(tmp_path, base_url, path, **extra), environ={}).plans[0]


@dataclass
class Measured:
    result: JourneyResult
    seconds: float
    peak_bytes: int
    max_stall_s: float


async def run_measured(plan: JourneyPlan) -> Measured:
    """Run the journey with Python allocations traced and a ticker watching the loop."""
    stall = 0.0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal stall
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            stall, last = max(stall, now - last), now

    watch = asyncio.create_task(ticker())
    tracemalloc.start()
    try:
        started = time.perf_counter()
        result = await run_journey(plan)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        stop.set()
        await watch
    return Measured(result, seconds, peak, stall)


OVER_LIMIT = [
    ("/big?size=268435456", "a 256 MiB body with its Content-Length"),
    ("/endless", "an endless chunked body"),
    ("/gzip-bomb?size=1073741824", "1 GiB of zeros gzipped"),
    ("/deflate-bomb?size=1073741824", "1 GiB of zeros deflated, chunked"),
    ("/endless-gzip", "a gzip stream that never ends"),
]


@pytest.mark.parametrize(("path", "what"), OVER_LIMIT, ids=[p.split("?")[0].strip("/") for p, _ in OVER_LIMIT])
async def test_body_over_max_body_stops_at_the_limit(hostile: HostileServer, tmp_path: Path, path: str,
                                                     what: str) -> None:
    plan = plan_for(tmp_path, hostile.url, path, site_extra='max_body = "1MiB"')
    m = await run_measured(plan)
    step = m.result.steps[0]
    assert (step.outcome, step.error) == (Outcome.ERROR, "error: body over max_body (1 MiB)"), what
    assert step.http_status == 200
    # Stopped as soon as the limit was passed: at most one buffered read beyond it
    # (none when the Content-Length already said so).
    assert step.bytes == 0 or MiB < step.bytes <= 2 * MiB
    assert m.result.outcome is Outcome.ERROR and m.result.failed_step == "s"
    # The body is held once, and joined once: a few MiB, not the hundreds the body is.
    assert m.peak_bytes < 16 * MiB, f"{what}: peak {m.peak_bytes / MiB:.1f} MiB"
    assert m.seconds < STEP_TIMEOUT
    assert m.max_stall_s < 1.0, f"{what}: the event loop stalled {m.max_stall_s:.2f}s"


async def test_default_max_body_is_10_MiB(hostile: HostileServer, tmp_path: Path) -> None:
    m = await run_measured(plan_for(tmp_path, hostile.url, "/gzip-bomb?size=2147483648"))
    step = m.result.steps[0]
    assert (step.outcome, step.error) == (Outcome.ERROR, "error: body over max_body (10 MiB)")
    assert 10 * MiB < step.bytes <= 11 * MiB
    assert m.peak_bytes < 48 * MiB
    assert m.max_stall_s < 1.0


async def test_a_step_may_raise_or_lower_the_sites_limit(hostile: HostileServer, tmp_path: Path) -> None:
    second = '[[sites.checks.steps]]\nname = "t"\npath = "/big?size=100000"\n'
    plan = plan_for(tmp_path, hostile.url, "/big?size=100000", site_extra='max_body = "64KiB"',
                    step_extra='max_body = "1MB"', more_steps=second)
    result = await run_journey(plan)
    first, then = result.steps
    assert (first.outcome, first.bytes) == (Outcome.OK, 100000)
    assert (then.outcome, then.error) == (Outcome.ERROR, "error: body over max_body (64 KiB)")


async def test_a_body_exactly_at_the_limit_passes(hostile: HostileServer, tmp_path: Path) -> None:
    plan = plan_for(tmp_path, hostile.url, "/gzip-bomb?size=2097152", site_extra='max_body = "2MiB"')
    step = (await run_journey(plan)).steps[0]
    assert (step.outcome, step.bytes) == (Outcome.OK, 2 * MiB)


@pytest.mark.parametrize("path", ["/cut-short", "/cut-chunked"])
async def test_body_cut_short(hostile: HostileServer, tmp_path: Path, path: str) -> None:
    step = (await run_journey(plan_for(tmp_path, hostile.url, path))).steps[0]
    assert (step.outcome, step.error) == (Outcome.ERROR, "error: body cut short")
    # What did arrive is recorded: the status and the bytes before the cut.
    assert (step.http_status, step.bytes) == (200, 5014)


@pytest.mark.parametrize("path", ["/bad-gzip", "/br", "/zstd"])
async def test_undecodable_content_encoding(hostile: HostileServer, tmp_path: Path, path: str) -> None:
    step = (await run_journey(plan_for(tmp_path, hostile.url, path))).steps[0]
    assert (step.outcome, step.error) == (Outcome.ERROR, "error: cannot decode the body's Content-Encoding")


@pytest.mark.parametrize(("path", "error"), [
    ("/huge-header?size=1048576", "error: response status or header line over 8190 bytes"),
    ("/many-headers?size=100000", "error: more than 128 response headers"),
    ("/bad-chunk", "error: malformed HTTP response (400)"),
], ids=["huge-header", "many-headers", "bad-chunk"])
async def test_malformed_or_oversized_headers(hostile: HostileServer, tmp_path: Path, path: str, error: str) -> None:
    m = await run_measured(plan_for(tmp_path, hostile.url, path))
    step = m.result.steps[0]
    assert (step.outcome, step.error) == (Outcome.ERROR, error)
    assert m.peak_bytes < 16 * MiB


@pytest.mark.parametrize(("path", "status"), [
    ("/slow-body?delay=0.2", 200),
    ("/slow-headers?delay=0.05", None),
    ("/silent", None),
], ids=["slow-body", "slow-headers", "silent"])
async def test_slow_answers_are_cut_at_the_step_timeout(hostile: HostileServer, tmp_path: Path, path: str,
                                                        status: int | None) -> None:
    m = await run_measured(plan_for(tmp_path, hostile.url, path))
    step = m.result.steps[0]
    assert step.outcome is Outcome.TIMEOUT
    assert step.error == f"timeout: no complete answer within {STEP_TIMEOUT:g}s (step timeout {STEP_TIMEOUT:g}s)"
    assert step.http_status == status
    if status is not None:
        assert step.bytes > 0  # the trickle that came before the timeout
    assert STEP_TIMEOUT <= m.seconds < STEP_TIMEOUT + MARGIN_S


async def test_invalid_charset_and_bytes_are_judged_not_crashed_on(hostile: HostileServer, tmp_path: Path) -> None:
    expect = 'expect = [ { body = true, contains = "caf" } ]'
    ok = (await run_journey(plan_for(tmp_path, hostile.url, "/bad-charset", step_extra=expect))).steps[0]
    assert (ok.outcome, ok.http_status, ok.bytes) == (Outcome.OK, 200, 21)
    expect = 'expect = [ { json = "name", exists = true } ]'
    bad = (await run_journey(plan_for(tmp_path, hostile.url, "/bad-charset", step_extra=expect))).steps[0]
    assert bad.outcome is Outcome.ASSERTION
    assert "not JSON" in bad.error


async def test_prober_check_reports_a_bomb_as_an_error(hostile: HostileServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, hostile.url, "/gzip-bomb?size=1073741824", site_extra='max_body = "512KiB"')
    done = await run_prober("check", "-c", str(config), "--json")
    assert done.returncode == 1, done.stderr
    (result,) = done.json_lines()
    assert (result["outcome"], result["error"]) == ("error", "error: body over max_body (512 KiB)")
    assert result["steps"][0]["http_status"] == 200
    assert 512 * 1024 < result["steps"][0]["bytes"] <= 2 * MiB
    assert "Traceback" not in done.stderr
