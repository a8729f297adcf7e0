"""Scheduling journeys with APScheduler: one tick job per interval, one timer per run.

* Time and timers come from the scheduler's :class:`~prober.daemon.clock.Clock`: by
  default the system's (wall clock, the event loop's timers, APScheduler); tests of the
  scheduler's logic pass one they move by hand.
* APScheduler (``AsyncIOScheduler``, ``IntervalTrigger``, ``coalesce=True``,
  ``max_instances=1``) runs one *tick* job per distinct interval, not one job per check:
  its per-run machinery (trigger arithmetic, job store update, events, executor task)
  is then paid once per interval class and period, not once per check run. Each tick
  fires ``lead`` (a quarter of the interval, at most 1 s) before the period it plans
  and puts every check of that interval on the event loop's timer (``loop.call_at``)
  at its own time in the period.
* A check runs at ``phase`` past every multiple of its interval, the phase spread over
  the interval (``[daemon] jitter``) by a hash of ``location/site/check``, anchored on
  the epoch: a restart, a reload or a change in how the sites are split among probers
  keeps the same phase, and probers in two locations do not hit a bank at the same
  instant. Every run also
  gets a small random delay (5% of the interval, at most 1 s).
* A run later than its misfire grace (the interval, at least 1 s: event loop blocked,
  machine suspended) is dropped and counted in :attr:`JourneyScheduler.missed`; the
  next one runs on time. A tick that APScheduler reports missed counts the runs of its
  period as missed.
* A run only starts a task for the journey and returns, so the scheduler never waits
  for a bank. Each site has its own pool of concurrency slots
  (:mod:`prober.daemon.slots`), sized from the configuration, and nothing else is
  shared: the journeys of a hanging bank hold only their own site's slots, each until
  its journey timeout, and never delay another site's checks.
* A run that is due while the previous run of the same check is still going (a slow
  cleanup step can outlast the interval) is not stacked: it is recorded as a result with
  outcome ``skipped`` and error ``skipped: previous run still going``, and counted in
  :attr:`JourneyScheduler.overlaps`. When the previous run is still waiting for a slot
  of its site (a site whose ``max_concurrency`` is below its number of checks), the
  error says so and names the limit.
* A run of a site that is backing off (:mod:`prober.daemon.lockout`) is recorded as
  ``skipped`` with the reason, and the bank is not contacted.
* Schedule lag = actual start of the journey (after waiting for a concurrency slot) −
  the run time planned (random delay included); the recent lags give p50/p99.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from prober.daemon.clock import Clock, SystemClock, Timer
from prober.daemon.histogram import LAG_BUCKETS, Histogram
from prober.daemon.lockout import LockoutTracker
from prober.daemon.slots import SitePool
from prober.journey.plan import JourneyPlan
from prober.journey.runner import run_journey
from prober.journey.verdict import not_run
from prober.results import JourneyResult, Outcome

log = logging.getLogger("prober.daemon.scheduler")

Emit = Callable[[JourneyResult], None]
Key = tuple[str, str]

LAG_WINDOW = 10_000
"""How many recent lags the p50/p99 are computed over."""

OVERLAP_ERROR = "skipped: previous run still going"


def waiting_error(site: str, limit: int) -> str:
    """The reason of a run skipped because the previous one still waits for a slot."""
    return f"skipped: previous run still waiting for a slot (site {site} runs at most {limit} journeys at once)"


def phase_of(site: str, check: str, interval: float, jitter: float, location: str = "") -> float:
    """Deterministic offset in ``[0, interval * jitter)`` of a check's runs from ``location``."""
    digest = hashlib.blake2b(f"{location}/{site}/{check}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * interval * jitter


def first_run(now: float, interval: float, phase: float) -> float:
    """The first time after ``now`` that is ``phase`` past a multiple of ``interval``."""
    return math.floor((now - phase) / interval + 1) * interval + phase


def tick_lead(interval: float) -> float:
    """How long before its period the tick of an interval plans the period's runs."""
    return min(interval / 4, 1.0)


def tick_of(now: float, interval: float) -> float:
    """The latest tick time at or before ``now``: ``lead`` before a multiple of ``interval``."""
    lead = tick_lead(interval)
    return math.floor((now + lead) / interval) * interval - lead


def run_jitter(interval: float) -> float:
    """The random delay each run may get: 5% of the interval, at most 1 s."""
    return min(interval * 0.05, 1.0)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100.0 * len(ordered)) - 1))]


@dataclass(slots=True, eq=False)
class _Entry:
    plan: JourneyPlan
    fingerprint: Hashable
    phase: float = 0.0
    due: float = -math.inf
    """The latest run put on the timer (epoch seconds, random delay excluded)."""
    handle: Timer | None = None


class JourneyScheduler:
    """Runs each plan on its interval and hands every result to ``emit``.

    ``runner`` replaces the journey runner and ``clock`` the system's time and timers
    (tests, benchmarks).
    """

    def __init__(
        self,
        emit: Emit,
        *,
        jitter: float = 1.0,
        lockout: LockoutTracker | None = None,
        runner: Callable[[JourneyPlan], Awaitable[JourneyResult]] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.emit = emit
        self.jitter = jitter
        self.lockout = lockout
        self._run_journey = runner or run_journey
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.pools: dict[str, SitePool] = {}
        """Concurrency slots of each site (:mod:`prober.daemon.slots`)."""
        self.entries: dict[Key, _Entry] = {}
        self.running: dict[Key, asyncio.Task[None]] = {}
        self._waiting: set[Key] = set()
        self.active = 0
        """Journeys holding a concurrency slot right now."""
        self.waiting_skips = 0
        self.on_start: Callable[[JourneyPlan, float], None] | None = None
        """Called with the plan and the schedule lag (ms) of each run as it starts
        (benchmarks and tests watch the lag of some sites with it)."""
        self.lags: deque[float] = deque(maxlen=LAG_WINDOW)
        self.window_lags: list[float] = []
        """Lags since the last :meth:`take_window` (the self-report interval)."""
        self.lag_histogram = Histogram(LAG_BUCKETS)
        """Every run's lag since start, in seconds (``/metrics``)."""
        self.started_runs = 0
        self.overlaps = 0
        self.missed = 0
        self.lockout_skips = 0
        self._groups: dict[float, dict[Key, _Entry]] = {}
        """Checks by interval: one tick job each (:meth:`Clock.every`)."""
        self._ticks: dict[float, Timer] = {}
        self._started = False
        self._stopped = False

    # -- plans -----------------------------------------------------------------------

    @staticmethod
    def tick_id(interval: float) -> str:
        return f"tick/{interval!r}"

    @property
    def max_concurrency(self) -> int:
        """Journeys that may run at once: the sum of the sites' slots."""
        return sum(pool.limit for pool in self.pools.values())

    def apply(
        self, plans: dict[Key, tuple[JourneyPlan, Hashable]], limits: dict[str, int]
    ) -> tuple[list[Key], list[Key], list[Key]]:
        """Make ``plans`` the scheduled set, with ``limits`` slots per site; returns
        ``(added, removed, changed)``.

        Runs in flight are left alone: they finish with the plan they started with and
        their results are delivered as usual (a site's pool is resized, not replaced).
        """
        for site, limit in limits.items():
            if site in self.pools:
                self.pools[site].resize(limit)
            else:
                self.pools[site] = SitePool(limit)
        for site in [s for s, pool in self.pools.items() if s not in limits and not pool.active and not pool.waiting]:
            del self.pools[site]
        added: list[Key] = []
        removed: list[Key] = []
        changed: list[Key] = []
        for key in list(self.entries):
            if key not in plans:
                removed.append(key)
                del self.entries[key]
                self._unschedule(key)
        for key, (plan, fingerprint) in plans.items():
            old = self.entries.get(key)
            if old is not None and old.fingerprint == fingerprint:
                continue
            (changed if old is not None else added).append(key)
            self.entries[key] = _Entry(plan, fingerprint)
            self._unschedule(key)
            self._schedule(key)
        return added, removed, changed

    def _schedule(self, key: Key) -> None:
        if not self._started or self._stopped:
            return
        entry = self.entries[key]
        interval = entry.plan.interval
        entry.phase = phase_of(entry.plan.site, entry.plan.check, interval, self.jitter, entry.plan.location)
        group = self._groups.get(interval)
        if group is None:
            group = self._groups[interval] = {}
            start = tick_of(self.clock.time(), interval) + interval
            self._ticks[interval] = self.clock.every(
                self.tick_id(interval), interval, start, functools.partial(self._tick, interval),
                # A late tick still plans its period: runs already due start at once,
                # or count as missed past their own grace (see _fire).
                grace=max(1, math.ceil(interval)),
                on_missed=functools.partial(self._missed_tick, interval),
            )
        group[key] = entry
        self._plan(key, entry, first_run(self.clock.time(), interval, entry.phase))

    def _plan(self, key: Key, entry: _Entry, due: float) -> None:
        """Put the run of ``entry`` due at ``due`` on the clock's timer."""
        entry.due = due
        jitter = run_jitter(entry.plan.interval)
        planned = due + random.uniform(0, jitter) if jitter else due
        entry.handle = self.clock.call_at(planned, self._fire, key, entry, planned)

    def _unschedule(self, key: Key) -> None:
        if not self._started or self._stopped:
            return
        for interval, group in list(self._groups.items()):
            entry = group.pop(key, None)
            if entry is None:
                continue
            if entry.handle is not None:
                entry.handle.cancel()
            if not group:
                del self._groups[interval]
                tick = self._ticks.pop(interval, None)
                if tick is not None:
                    tick.cancel()

    def _tick(self, interval: float) -> None:
        """Plan the runs of the period that starts ``lead`` after this tick."""
        group = self._groups.get(interval)
        if not group or self._stopped:
            return
        # Half a lead of margin: a tick woken a hair early still plans its own period.
        tick = tick_of(self.clock.time() + tick_lead(interval) / 2, interval)
        for key, entry in group.items():
            due = first_run(tick, interval, entry.phase)
            if due > entry.due:
                self._plan(key, entry, due)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._started = True
        for key in self.entries:
            self._schedule(key)

    @property
    def scheduling(self) -> bool:
        return self._started and not self._stopped

    def stop_scheduling(self) -> None:
        """No new runs from now on; runs in flight keep going."""
        if self._started and not self._stopped:
            self._stopped = True
            for group in self._groups.values():
                for entry in group.values():
                    if entry.handle is not None:
                        entry.handle.cancel()
            self._groups.clear()
            for tick in self._ticks.values():
                tick.cancel()
            self._ticks.clear()
            self.clock.close()

    async def drain(self, grace: float, force: asyncio.Event | None = None) -> int:
        """Wait up to ``grace`` seconds (or until ``force`` is set) for the runs in flight,
        then cancel the rest (their results are recorded as cancelled). Returns how
        many were cancelled."""
        tasks = set(self.running.values())
        if tasks:
            log.info("waiting up to %gs for %d running journeys", grace, len(tasks))
            waiters: set[asyncio.Future[Any]] = set(tasks)  # the runs, and the event's wait
            forced = asyncio.ensure_future(force.wait()) if force is not None else None
            if forced is not None:
                waiters.add(forced)
            deadline = asyncio.get_running_loop().time() + grace
            try:
                while tasks and not (forced is not None and forced.done()):
                    left = deadline - asyncio.get_running_loop().time()
                    if left <= 0:
                        break
                    await asyncio.wait(waiters, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                    tasks = {t for t in tasks if not t.done()}
                    waiters = set(tasks) | ({forced} if forced is not None else set())
            finally:
                if forced is not None:
                    forced.cancel()
        left_over = [t for t in self.running.values() if not t.done()]
        for task in left_over:
            task.cancel()
        if left_over:
            log.warning("cancelled %d journeys still running after the grace period", len(left_over))
            await asyncio.wait(left_over)
        return len(left_over)

    # -- runs ------------------------------------------------------------------------

    def _missed_tick(self, interval: float) -> None:
        """The tick of ``interval`` came past its grace: its period's runs count as missed."""
        self.missed += len(self._groups.get(interval, ()))

    def _fire(self, key: Key, entry: _Entry, planned: float) -> None:
        if self.entries.get(key) is not entry or self._stopped:
            return  # removed or changed by a reload since it was planned
        early = planned - self.clock.time()
        if early > 0:
            # Timers of millisecond resolution (uvloop's) fire up to a millisecond early;
            # started now, the run would belong to the period before its own.
            handle = self.clock.call_at(planned, self._fire, key, entry, planned)
            if planned >= entry.due:  # (else the entry's handle is a later run's)
                entry.handle = handle
            return
        if planned >= entry.due:
            entry.handle = None  # (an overdue run can fire after a late tick planned the next)
        plan = entry.plan
        if self.clock.time() - planned > max(1, math.ceil(plan.interval)):
            self.missed += 1
            return
        if key in self.running:
            if key in self._waiting:
                self.waiting_skips += 1
                self.emit(not_run(plan, waiting_error(plan.site, self.pools[plan.site].limit)))
            else:
                self.overlaps += 1
                self.emit(not_run(plan, OVERLAP_ERROR))
            return
        if self.lockout is not None:
            reason = self.lockout.refusal(plan.site, plan.check)
            if reason is not None:
                self.lockout_skips += 1
                self.emit(not_run(plan, reason))
                return
        task = asyncio.get_running_loop().create_task(
            self._run(plan, self.pools[plan.site], planned), name=f"journey {plan.site}/{plan.check}",
        )
        self.running[key] = task
        task.add_done_callback(functools.partial(self._done, key))

    def _done(self, key: Key, task: asyncio.Task[None]) -> None:
        if self.running.get(key) is task:
            del self.running[key]

    async def _run(self, plan: JourneyPlan, pool: SitePool, planned: float) -> None:
        try:
            self._waiting.add(plan.key)
            try:
                await pool.acquire()
            finally:
                self._waiting.discard(plan.key)
            lag = max((self.clock.time() - planned) * 1000.0, 0.0)
            self.lags.append(lag)
            self.window_lags.append(lag)
            self.lag_histogram.observe(lag / 1000.0)
            if self.on_start is not None:
                self.on_start(plan, lag)
            self.active += 1
            self.started_runs += 1
            try:
                result = await self._run_journey(plan)
            finally:
                self.active -= 1
                pool.release()
        except asyncio.CancelledError:
            self.emit(not_run(plan, "cancelled: the prober shut down before the run finished"))
            raise
        except Exception as exc:  # a bug, never the bank: the runner classifies those
            log.exception("journey %s/%s raised", plan.site, plan.check)
            result = not_run(plan, f"error: internal {type(exc).__name__}", Outcome.ERROR)
        self.emit(result)

    # -- figures ---------------------------------------------------------------------

    def lag_percentiles(self, window: list[float] | None = None) -> tuple[float, float]:
        values = list(self.lags) if window is None else window
        return percentile(values, 50), percentile(values, 99)

    def take_window(self) -> list[float]:
        window, self.window_lags = self.window_lags, []
        return window
