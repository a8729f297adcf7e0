"""Scheduling journeys with APScheduler: one job per site × check.

* Each check is an APScheduler job (``AsyncIOScheduler``, ``IntervalTrigger``) with
  ``max_instances=1`` and ``coalesce=True``. Its first run is spread over the interval
  (``[daemon] jitter``) by a hash of ``site/check``, anchored on the epoch: a restart, a
  reload or a second prober keeps the same phase. Every run also gets a small random
  delay (5% of the interval, at most 1 s).
* The job itself only starts a task for the journey and returns, so APScheduler never
  waits for a bank. Each site has its own pool of concurrency slots
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
  the run time APScheduler planned (jitter included); the recent lags give p50/p99.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timezone

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from prober.daemon.lockout import LockoutTracker
from prober.daemon.slots import SitePool
from prober.journey.plan import JourneyPlan
from prober.results import JourneyResult, Outcome
from prober.journey.runner import run_journey

log = logging.getLogger("prober.daemon.scheduler")

Emit = Callable[[JourneyResult], None]
Key = tuple[str, str]

LAG_WINDOW = 10_000
"""How many recent lags the p50/p99 are computed over."""

OVERLAP_ERROR = "skipped: previous run still going"


def waiting_error(site: str, limit: int) -> str:
    """The reason of a run skipped because the previous one still waits for a slot."""
    return f"skipped: previous run still waiting for a slot (site {site} runs at most {limit} journeys at once)"


def phase_of(site: str, check: str, interval: float, jitter: float) -> float:
    """Deterministic offset in ``[0, interval * jitter)`` of a check's runs."""
    digest = hashlib.blake2b(f"{site}/{check}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * interval * jitter


def first_run(now: float, interval: float, phase: float) -> float:
    """The first time after ``now`` that is ``phase`` past a multiple of ``interval``."""
    return math.floor((now - phase) / interval + 1) * interval + phase


def run_jitter(interval: float) -> float:
    """The random delay each run may get: 5% of the interval, at most 1 s."""
    return min(interval * 0.05, 1.0)


def skipped_result(plan: JourneyPlan, reason: str) -> JourneyResult:
    """A run that was not made (overlap, back-off, shutdown)."""
    return JourneyResult(
        site=plan.site, check=plan.check, kind=plan.kind, location=plan.location,
        outcome=Outcome.SKIPPED, started_at_ns=time.time_ns(), duration_ms=0.0, error=reason, tags=plan.tags,
    )


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100.0 * len(ordered)) - 1))]


@dataclass(slots=True)
class _Entry:
    plan: JourneyPlan
    fingerprint: Hashable


class JourneyScheduler:
    """Runs each plan on its interval and hands every result to ``emit``."""

    def __init__(
        self,
        emit: Emit,
        *,
        jitter: float = 1.0,
        lockout: LockoutTracker | None = None,
        runner: Callable[[JourneyPlan], asyncio.Future[JourneyResult]] | None = None,
    ) -> None:
        self.emit = emit
        self.jitter = jitter
        self.lockout = lockout
        self._run_journey = runner or run_journey
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
        self.started_runs = 0
        self.overlaps = 0
        self.missed = 0
        self.lockout_skips = 0
        self._planned: dict[str, datetime] = {}
        self._scheduler: AsyncIOScheduler | None = None
        self._stopped = False

    # -- plans -----------------------------------------------------------------------

    @staticmethod
    def job_id(key: Key) -> str:
        return f"{key[0]}/{key[1]}"

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
        added, removed, changed = [], [], []
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
        if self._scheduler is None or self._stopped:
            return
        plan = self.entries[key].plan
        start = first_run(time.time(), plan.interval, phase_of(plan.site, plan.check, plan.interval, self.jitter))
        trigger = IntervalTrigger(
            seconds=plan.interval,
            start_date=datetime.fromtimestamp(start, timezone.utc),
            timezone=timezone.utc,
            jitter=run_jitter(plan.interval) or None,
        )
        self._scheduler.add_job(
            self._fire,
            trigger,
            args=[key],
            id=self.job_id(key),
            name=self.job_id(key),
            max_instances=1,
            coalesce=True,
            # A run later than this (event loop blocked, machine suspended) is dropped
            # and counted in `missed`; the next one runs on time.
            misfire_grace_time=max(1, math.ceil(plan.interval)),
            replace_existing=True,
        )

    def _unschedule(self, key: Key) -> None:
        if self._scheduler is None or self._stopped:
            return
        job = self._scheduler.get_job(self.job_id(key))
        if job is not None:
            job.remove()

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone=timezone.utc)
        scheduler.add_listener(self._on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        self._scheduler = scheduler
        scheduler.start()
        for key in self.entries:
            self._schedule(key)

    @property
    def scheduling(self) -> bool:
        return self._scheduler is not None and not self._stopped

    def stop_scheduling(self) -> None:
        """No new runs from now on; runs in flight keep going."""
        if self._scheduler is not None and not self._stopped:
            self._stopped = True
            self._scheduler.remove_all_jobs()
            self._scheduler.shutdown(wait=False)

    async def drain(self, grace: float, force: asyncio.Event | None = None) -> int:
        """Wait up to ``grace`` seconds (or until ``force`` is set) for the runs in flight,
        then cancel the rest (their results are recorded as cancelled). Returns how
        many were cancelled."""
        tasks = set(self.running.values())
        if tasks:
            log.info("waiting up to %gs for %d running journeys", grace, len(tasks))
            waiters = set(tasks)
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

    def _on_event(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_SUBMITTED:
            times = getattr(event, "scheduled_run_times", None)
            if times:
                self._planned[event.job_id] = times[-1]
        elif event.code == EVENT_JOB_MISSED:
            self.missed += 1

    async def _fire(self, key: Key) -> None:
        planned = self._planned.pop(self.job_id(key), None)
        entry = self.entries.get(key)
        if entry is None or self._stopped:
            return
        plan = entry.plan
        if key in self.running:
            if key in self._waiting:
                self.waiting_skips += 1
                self.emit(skipped_result(plan, waiting_error(plan.site, self.pools[plan.site].limit)))
            else:
                self.overlaps += 1
                self.emit(skipped_result(plan, OVERLAP_ERROR))
            return
        if self.lockout is not None:
            reason = self.lockout.refusal(plan.site, plan.check)
            if reason is not None:
                self.lockout_skips += 1
                self.emit(skipped_result(plan, reason))
                return
        task = asyncio.get_running_loop().create_task(
            self._run(plan, self.pools[plan.site], planned.timestamp() if planned is not None else None),
            name=f"journey {self.job_id(key)}",
        )
        self.running[key] = task
        task.add_done_callback(lambda t, key=key: self._done(key, t))

    def _done(self, key: Key, task: asyncio.Task[None]) -> None:
        if self.running.get(key) is task:
            del self.running[key]

    async def _run(self, plan: JourneyPlan, pool: SitePool, planned: float | None) -> None:
        try:
            self._waiting.add(plan.key)
            try:
                await pool.acquire()
            finally:
                self._waiting.discard(plan.key)
            if planned is not None:
                lag = max((time.time() - planned) * 1000.0, 0.0)
                self.lags.append(lag)
                self.window_lags.append(lag)
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
            self.emit(skipped_result(plan, "cancelled: the prober shut down before the run finished"))
            raise
        except Exception as exc:  # a bug, never the bank: the runner classifies those
            log.exception("journey %s/%s raised", plan.site, plan.check)
            result = skipped_result(plan, f"error: internal {type(exc).__name__}")
            result.outcome = Outcome.ERROR
        self.emit(result)

    # -- figures ---------------------------------------------------------------------

    def lag_percentiles(self, window: list[float] | None = None) -> tuple[float, float]:
        values = list(self.lags) if window is None else window
        return percentile(values, 50), percentile(values, 99)

    def take_window(self) -> list[float]:
        window, self.window_lags = self.window_lags, []
        return window
