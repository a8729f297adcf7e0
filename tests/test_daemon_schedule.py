"""The scheduler against the simulated bank: a hanging capability delays only its check."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from pathlib import Path

import pytest

from prober.daemon.scheduler import OVERLAP_ERROR, first_run, percentile, phase_of
from prober.results import Outcome
from prober.simbank import BankServer, Fault
from tests.daemon_helpers import Recorder, check, config_text, peak_while_running, service_for

pytestmark = pytest.mark.exclusive  # schedule lag bounds and no overlap at 300 ms intervals

RUN_FOR = 4.0


async def test_hanging_check_does_not_delay_the_others(bank: BankServer, tmp_path: Path) -> None:
    bank.faults.set("accounts", Fault(mode="hang"))
    text = config_text(
        bank.url,
        [
            check("login", interval="300ms"),
            check("payments", interval="300ms"),
            # list hangs until the journey timeout (400 ms), cleanup hangs 600 ms more:
            # each run lasts ~1 s, twice the interval.
            check("accounts-cleanup", name="hanging", interval="500ms", timeout="400ms", cleanup_timeout="600ms"),
        ],
        daemon={"state_dir": str(tmp_path / "state")},
    )
    recorder = Recorder()
    service = service_for(tmp_path, text, recorder)
    await service.start()
    await asyncio.sleep(RUN_FOR)
    await service.stop(grace=3.0)

    # The healthy checks kept their schedule: ~RUN_FOR / 0.3 runs each, all passing, on time.
    for name in ("login", "payments"):
        runs = recorder.of(name)
        assert len(runs) >= int(RUN_FOR / 0.3) - 3, (name, len(runs))
        assert all(r.outcome is Outcome.OK for r in runs), [(r.outcome, r.error) for r in runs]
    p50, p99 = service.scheduler.lag_percentiles()
    assert p99 < 200.0, (p50, p99)

    # The hanging check: cut at its timeout, cleanup cut at its own, runs never overlap.
    hanging = recorder.of("hanging")
    executed = [r for r in hanging if r.outcome is not Outcome.SKIPPED]
    skipped = [r for r in hanging if r.outcome is Outcome.SKIPPED]
    assert executed, "the hanging check never ran"
    for r in executed:
        assert r.outcome is Outcome.TIMEOUT, (r.outcome, r.error)
        assert r.failed_step == "list"
        assert 900 <= r.duration_ms < 1500, r.duration_ms
        assert [s.outcome for s in r.steps] == [Outcome.OK, Outcome.TIMEOUT, Outcome.TIMEOUT]
    assert skipped and all(r.error == OVERLAP_ERROR for r in skipped)
    assert service.scheduler.overlaps == len(skipped)
    spans = sorted((r.started_at_ns, r.started_at_ns + r.duration_ms * 1e6) for r in executed)
    for (_, end), (start, _) in pairwise(spans):
        assert start >= end - 5e6, "two runs of the same check overlapped"
    # The bank saw exactly two /accounts requests per executed run: nothing stacked.
    assert bank.state.requests_by_path.get("GET /accounts", 0) == 2 * len(executed)


async def test_global_concurrency_limit(bank: BankServer, tmp_path: Path) -> None:
    bank.faults.set("payments", Fault(mode="slow", delay_ms=200))
    text = config_text(
        bank.url,
        [check("payments", name=f"p{i}", interval="500ms") for i in range(8)],
        daemon={"max_concurrency": 2, "state_dir": str(tmp_path / "state")},
    )
    service = service_for(tmp_path, text, Recorder())
    assert await peak_while_running(service, 2.0, lambda: service.scheduler.active) == 2
    # 8 checks × ~200 ms each every 500 ms need 3.2 slot-seconds per second and there
    # are 2 slots: runs queue, and the wait shows as schedule lag.
    assert max(service.scheduler.lags) > 100.0


def test_first_runs_are_spread_and_stable() -> None:
    phases = [phase_of("simbank", f"c{i}", 60.0, 1.0) for i in range(200)]
    assert all(0 <= p < 60.0 for p in phases)
    assert max(phases) - min(phases) > 50.0  # spread over the interval
    assert phase_of("simbank", "c1", 60.0, 1.0) == phases[1]  # same on every start
    assert all(phase_of("s", f"c{i}", 60.0, 0.0) == 0.0 for i in range(5))
    start = first_run(1000.0, 60.0, 12.5)
    assert 1000.0 < start <= 1060.0 and (start - 12.5) % 60.0 == 0.0


def test_percentile() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([], 99) == 0.0
