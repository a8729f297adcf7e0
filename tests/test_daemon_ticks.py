"""The scheduler's timing on its own (a journey runner that only records its runs):
runs stay on their epoch-anchored grid, one APScheduler job per interval, reloads,
misfires."""

from __future__ import annotations

import asyncio
import time

from prober.daemon.scheduler import JourneyScheduler, phase_of, run_jitter, tick_lead, tick_of
from prober.journey.plan import JourneyPlan
from prober.results import JourneyResult, Outcome


def plan(check: str, interval: float) -> JourneyPlan:
    return JourneyPlan(site="bank", check=check, kind="accounts", location="here", interval=interval,
                       timeout=interval, mutating=False, steps=(), ssl_context=False, values={}, secrets=())


class Runs:
    """A journey runner that records when each run was planned and how it ended."""

    def __init__(self, hold: float = 0.0) -> None:
        self.hold = hold
        self.planned: dict[str, list[float]] = {}
        self.results: list[JourneyResult] = []

    def on_start(self, p: JourneyPlan, lag_ms: float) -> None:
        self.planned.setdefault(p.check, []).append(time.time() - lag_ms / 1000.0)

    async def run(self, p: JourneyPlan) -> JourneyResult:
        await asyncio.sleep(self.hold)
        return JourneyResult(site=p.site, check=p.check, kind=p.kind, location=p.location, outcome=Outcome.OK,
                             started_at_ns=time.time_ns(), duration_ms=self.hold * 1000.0)


def scheduler_for(runs: Runs, plans: list[JourneyPlan]) -> JourneyScheduler:
    scheduler = JourneyScheduler(runs.results.append, runner=runs.run)
    scheduler.on_start = runs.on_start
    scheduler.apply({p.key: (p, p) for p in plans}, {"bank": len(plans)})
    return scheduler


def off_grid(p: JourneyPlan, planned: float) -> float:
    """How far a planned run is past its check's grid point (phase past a multiple of
    the interval): within the run's random delay when the grid is kept."""
    return (planned - phase_of(p.site, p.check, p.interval, 1.0, p.location)) % p.interval


async def test_runs_stay_on_the_grid_of_their_phase() -> None:
    """Every run is planned at phase + k × interval plus at most the random delay: the
    delays do not add up run after run (the spread of the first runs is kept for good),
    no period is skipped and none is planned twice."""
    plans = [plan(f"c{i}", 0.5) for i in range(6)]
    runs = Runs()
    scheduler = scheduler_for(runs, plans)
    await scheduler.start()
    await asyncio.sleep(4.2)
    scheduler.stop_scheduling()
    await scheduler.drain(1.0)
    jitter = run_jitter(0.5)
    for p in plans:
        planned = runs.planned[p.check]
        assert len(planned) >= 6, (p.check, planned)
        for at in planned:
            assert -0.002 <= off_grid(p, at) <= jitter + 0.002, (p.check, off_grid(p, at))
        gaps = [b - a for a, b in zip(planned, planned[1:])]
        assert all(0.5 - jitter - 0.01 <= g <= 0.5 + jitter + 0.01 for g in gaps), (p.check, gaps)
    assert scheduler.missed == 0 and scheduler.overlaps == 0


async def test_one_apscheduler_job_per_interval_and_reload_keeps_runs_in_flight() -> None:
    """A reload removes, changes and adds checks: a run in flight of a removed check
    still delivers its result, the removed check never runs again, a changed interval
    moves the check to the other interval's job, and a job whose interval has no check
    left is removed."""
    runs = Runs(hold=0.45)
    old = [plan("removed", 0.5), plan("changed", 0.5), plan("kept", 0.7)]
    scheduler = scheduler_for(runs, old)
    await scheduler.start()
    assert len(scheduler._scheduler.get_jobs()) == 2  # 0.5 s and 0.7 s
    while "removed" not in {key[1] for key in scheduler.running}:
        await asyncio.sleep(0.01)
    new = [plan("changed", 0.3), plan("kept", 0.7), plan("added", 0.3)]
    added, removed, changed = scheduler.apply({p.key: (p, p) for p in new}, {"bank": 3})
    assert (added, removed, changed) == ([("bank", "added")], [("bank", "removed")], [("bank", "changed")])
    assert sorted(job.id for job in scheduler._scheduler.get_jobs()) == ["tick/0.3", "tick/0.7"]
    reloaded = time.time()
    await asyncio.sleep(2.5)
    scheduler.stop_scheduling()
    await scheduler.drain(2.0)
    removed_results = [r for r in runs.results if r.check == "removed"]
    assert removed_results and removed_results[-1].outcome is Outcome.OK  # the run in flight finished
    assert all(at < reloaded for at in runs.planned["removed"])
    changed_runs = [at for at in runs.planned["changed"] if at > reloaded + 0.5]
    assert changed_runs and all(off_grid(new[0], at) <= run_jitter(0.3) + 0.002 for at in changed_runs)
    assert runs.planned["added"]


async def test_a_blocked_loop_misses_runs_then_runs_on_time() -> None:
    """Runs later than their grace (the interval, at least 1 s) are dropped and counted
    as missed, not stacked; the next ones run on their grid again."""
    plans = [plan(f"c{i}", 0.3) for i in range(4)]
    runs = Runs()
    scheduler = scheduler_for(runs, plans)
    await scheduler.start()
    await asyncio.sleep(0.8)
    time.sleep(1.8)  # the event loop is blocked (a stuck callback, a suspended machine)
    unblocked = time.time()
    await asyncio.sleep(1.5)
    scheduler.stop_scheduling()
    await scheduler.drain(1.0)
    assert scheduler.missed > 0
    for p in plans:
        after = [at for at in runs.planned[p.check] if at > unblocked + 0.3]
        assert len(after) >= 2 and all(off_grid(p, at) <= run_jitter(0.3) + 0.002 for at in after)
    assert scheduler.overlaps == 0



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
        runs = Runs()
        scheduler = scheduler_for(runs, plans)
        scheduler.on_start = lambda p, _lag_ms: starts.append((p, time.time()))
        await scheduler.start()
        await asyncio.sleep(3.0)
        scheduler.stop_scheduling()
        await scheduler.drain(1.0)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
    assert len(starts) >= 400
    # Past its grid point by the random delay and the loop's latency; an early start
    # would show as almost a whole interval past the previous grid point.
    early = sorted(off_grid(p, at) for p, at in starts if off_grid(p, at) > 0.1)
    assert early == [], (len(early), early[:5])
