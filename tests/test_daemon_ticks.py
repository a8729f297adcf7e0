"""The scheduler's timing on its own (a journey runner that only records its runs):
runs stay on their epoch-anchored grid, one tick job per interval, reloads, misfires.

The grid, reloads and misfires are the scheduler's own logic: they run on a clock the
test moves by hand (tests/clock.py), in milliseconds, and exactly. What is about real
time, the system clock's APScheduler jobs and uvloop's timers, runs on the real clock.
"""

from __future__ import annotations

import asyncio
import time
from itertools import pairwise
from typing import Generic, TypeVar

import pytest

from prober.daemon.clock import SystemClock
from prober.daemon.scheduler import JourneyScheduler, phase_of, run_jitter, tick_lead, tick_of
from prober.journey.plan import JourneyPlan
from prober.results import JourneyResult, Outcome
from tests.clock import ManualClock

pytestmark = pytest.mark.exclusive  # the scheduler's ticks on time


def plan(check: str, interval: float) -> JourneyPlan:
    return JourneyPlan(site="bank", check=check, kind="accounts", location="here", interval=interval,
                       timeout=interval, mutating=False, steps=(), ssl_context=False, values={}, secrets=())


ClockT = TypeVar("ClockT", ManualClock, SystemClock)


class Runs(Generic[ClockT]):
    """A journey runner that records when each run was planned and how it ended; a run
    takes ``hold`` seconds of ``clock``'s time."""

    def __init__(self, clock: ClockT, hold: float = 0.0) -> None:
        self.clock: ClockT = clock
        self.hold = hold
        self.planned: dict[str, list[float]] = {}
        self.results: list[JourneyResult] = []

    def on_start(self, p: JourneyPlan, lag_ms: float) -> None:
        self.planned.setdefault(p.check, []).append(self.clock.time() - lag_ms / 1000.0)

    async def run(self, p: JourneyPlan) -> JourneyResult:
        if isinstance(self.clock, ManualClock):
            await self.clock.sleep(self.hold)
        else:
            await asyncio.sleep(self.hold)
        return JourneyResult(site=p.site, check=p.check, kind=p.kind, location=p.location, outcome=Outcome.OK,
                             started_at_ns=time.time_ns(), duration_ms=self.hold * 1000.0)


def scheduler_for(runs: Runs, plans: list[JourneyPlan]) -> JourneyScheduler:
    scheduler = JourneyScheduler(runs.results.append, runner=runs.run, clock=runs.clock)
    scheduler.on_start = runs.on_start
    scheduler.apply({p.key: (p, p) for p in plans}, {"bank": len(plans)})
    return scheduler


def off_grid(p: JourneyPlan, planned: float) -> float:
    """How far a planned run is past its check's grid point (phase past a multiple of
    the interval): within the run's random delay when the grid is kept. (A run a hair
    before its grid point, by the rounding of epoch seconds, is that hair below 0.)"""
    off = (planned - phase_of(p.site, p.check, p.interval, 1.0, p.location)) % p.interval
    return off - p.interval if off > p.interval - 1e-6 else off


EXACT = 1e-6
"""Seconds of rounding in epoch times (a float holds ~1e-7 s at 1.7e9 s)."""


async def test_runs_stay_on_the_grid_of_their_phase() -> None:
    """Every run is planned at phase + k × interval plus at most the random delay: the
    delays do not add up run after run (the spread of the first runs is kept for good),
    no period is skipped and none is planned twice."""
    plans = [plan(f"c{i}", 0.5) for i in range(6)]
    runs = Runs(ManualClock())
    scheduler = scheduler_for(runs, plans)
    await scheduler.start()
    await runs.clock.advance(60.0)
    scheduler.stop_scheduling()
    await scheduler.drain(1.0)
    jitter = run_jitter(0.5)
    for p in plans:
        planned = runs.planned[p.check]
        assert len(planned) in (119, 120), (p.check, len(planned))  # one a period, from the first after start
        for at in planned:
            assert -EXACT <= off_grid(p, at) <= jitter + EXACT, (p.check, off_grid(p, at))
        gaps = [b - a for a, b in pairwise(planned)]
        assert all(0.5 - jitter - EXACT <= g <= 0.5 + jitter + EXACT for g in gaps), (p.check, gaps)
    assert scheduler.missed == 0 and scheduler.overlaps == 0


async def test_one_tick_job_per_interval_and_reload_keeps_runs_in_flight() -> None:
    """A reload removes, changes and adds checks: a run in flight of a removed check
    still delivers its result, the removed check never runs again, a changed interval
    moves the check to the other interval's job, and a job whose interval has no check
    left is removed."""
    runs = Runs(ManualClock(), hold=0.45)
    old = [plan("removed", 0.5), plan("changed", 0.5), plan("kept", 0.7)]
    scheduler = scheduler_for(runs, old)
    await scheduler.start()
    assert sorted(runs.clock.jobs) == ["tick/0.5", "tick/0.7"]
    while "removed" not in {key[1] for key in scheduler.running}:
        await runs.clock.advance(0.01)
    new = [plan("changed", 0.3), plan("kept", 0.7), plan("added", 0.3)]
    added, removed, changed = scheduler.apply({p.key: (p, p) for p in new}, {"bank": 3})
    assert (added, removed, changed) == ([("bank", "added")], [("bank", "removed")], [("bank", "changed")])
    assert sorted(runs.clock.jobs) == ["tick/0.3", "tick/0.7"]
    reloaded = runs.clock.time()
    await runs.clock.advance(10.0)
    scheduler.stop_scheduling()
    await runs.clock.advance(1.0)  # the runs in flight end
    await scheduler.drain(1.0)
    assert runs.clock.jobs == {}
    removed_results = [r for r in runs.results if r.check == "removed"]
    assert removed_results and removed_results[-1].outcome is Outcome.OK  # the run in flight finished
    assert all(at < reloaded for at in runs.planned["removed"])
    changed_runs = [at for at in runs.planned["changed"] if at > reloaded + 0.5]
    # A run holds 0.45 s, over the 0.3 s interval: every other run overlaps the previous
    # one and is skipped, so one run every 0.6 s.
    assert len(changed_runs) >= 15 and all(off_grid(new[0], at) <= run_jitter(0.3) + EXACT for at in changed_runs)
    assert len(runs.planned["added"]) >= 15 and scheduler.overlaps >= 30


async def test_a_blocked_loop_misses_runs_then_runs_on_time() -> None:
    """Runs later than their grace (the interval, at least 1 s) are dropped and counted
    as missed, not stacked; the next ones run on their grid again."""
    plans = [plan(f"c{i}", 0.3) for i in range(4)]
    runs = Runs(ManualClock())
    scheduler = scheduler_for(runs, plans)
    await scheduler.start()
    await runs.clock.advance(0.8)
    before = {p.check: len(runs.planned.get(p.check, [])) for p in plans}
    runs.clock.block(1.8)  # the event loop is blocked (a stuck callback, a suspended machine)
    unblocked = runs.clock.time()
    await runs.clock.advance(1.8)  # five periods after the first one: four runs at least, whatever their random delay
    scheduler.stop_scheduling()
    await scheduler.drain(1.0)
    assert scheduler.missed > 0
    for p in plans:
        after = [at for at in runs.planned[p.check] if at > unblocked + 0.3]
        assert len(after) >= 4 and all(off_grid(p, at) <= run_jitter(0.3) + EXACT for at in after)
        # Nothing planned in the blocked 1.8 s started late: a run is late by its lag only.
        assert all(at >= unblocked - 1.0 for at in runs.planned[p.check][before[p.check]:])
    assert scheduler.overlaps == 0


async def test_the_system_clock_runs_one_apscheduler_job_per_interval() -> None:
    """On the real clock, each interval is one APScheduler job that calls its tick on the
    grid; removing the last check of an interval removes its job, stopping removes all."""
    clock = SystemClock()
    runs = Runs(clock)
    scheduler = scheduler_for(runs, [plan("a", 0.2), plan("b", 0.2), plan("c", 0.3)])
    ticks: list[tuple[float, float]] = []
    tick = scheduler._tick

    def counted_tick(interval: float) -> None:
        ticks.append((interval, time.time()))
        tick(interval)

    scheduler._tick = counted_tick  # type: ignore[method-assign]  # counted
    await scheduler.start()
    assert sorted(clock.jobs) == ["tick/0.2", "tick/0.3"]
    await asyncio.sleep(0.7)
    scheduler.apply({p.key: (p, p) for p in [plan("a", 0.2), plan("b", 0.2)]}, {"bank": 2})
    assert clock.jobs == ["tick/0.2"]
    scheduler.stop_scheduling()
    await scheduler.drain(1.0)
    assert clock.jobs == []
    for interval in (0.2, 0.3):
        times = [at for i, at in ticks if i == interval]
        assert len(times) >= 2, (interval, ticks)
        # A tick comes `lead` before a multiple of its interval; APScheduler wakes a little
        # late, a loaded machine more so, but not every time: a tick planted off its grid
        # would be off by the same amount every time.
        assert min((at + tick_lead(interval)) % interval for at in times) < 0.05, (interval, times)
    assert {p for p in runs.planned} == {"a", "b", "c"}


def test_a_tick_plans_its_own_period_early_or_late() -> None:
    """The tick of a period is ``lead`` before it; a tick woken a hair early or late by
    less than the interval still finds its own tick time (``_tick`` adds half a lead)."""
    interval = 2.0
    lead = tick_lead(interval)
    tick = 1_000_000 * interval - lead
    for offset in (-lead / 4, -1e-6, 0.0, 0.3, interval - lead):
        assert tick_of(tick + offset + lead / 2, interval) == tick, offset


def test_no_run_starts_before_its_planned_time_on_uvloop() -> None:
    """uvloop's timers have millisecond resolution and may fire up to a millisecond early:
    a run fired early waits for its planned time instead of starting in the period before
    (where, with a small random delay, it would count twice in that period)."""
    import uvloop

    starts: list[tuple[JourneyPlan, float]] = []
    plans = [plan(f"c{i}", 0.2) for i in range(40)]

    async def main() -> None:
        runs = Runs(SystemClock())
        scheduler = scheduler_for(runs, plans)
        # A start's time less its lag is when it was planned; a late start (a loop stalled
        # by a loaded machine) is then no longer confused with an early one, while an early
        # one, whose lag is 0, still shows where it started.
        scheduler.on_start = lambda p, lag_ms: starts.append((p, time.time() - lag_ms / 1000.0))
        await scheduler.start()
        await asyncio.sleep(3.0)
        scheduler.stop_scheduling()
        await scheduler.drain(1.0)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
    assert len(starts) >= 400
    # Past its grid point by the random delay; an early start would show as almost a
    # whole interval past the previous grid point.
    early = sorted(off_grid(p, at) for p, at in starts if off_grid(p, at) > 0.1)
    assert early == [], (len(early), early[:5])
