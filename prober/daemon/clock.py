"""The scheduler's time: the wall clock it plans runs by, and its timers.

:class:`~prober.daemon.scheduler.JourneyScheduler` reads the time and sets every timer
through one :class:`Clock`, given to its constructor. :class:`SystemClock`, the default,
is the real thing: ``time.time()``, the running event loop's timers, and APScheduler's
interval jobs for the per-interval ticks. A test of the scheduler's own logic (the grid,
reloads, misfires) passes a clock it moves by hand instead, and a minute of schedule
then takes milliseconds (``tests/clock.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from apscheduler.events import EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

__all__ = ["Clock", "SystemClock", "Timer"]


class Timer(Protocol):
    """A timer that may be cancelled (``asyncio.TimerHandle`` is one)."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Time and timers, in wall-clock seconds since the epoch."""

    def time(self) -> float:
        """Now."""
        ...

    def call_at(self, when: float, callback: Callable[..., object], *args: object) -> Timer:
        """Call ``callback(*args)`` on the event loop at ``when``."""
        ...

    def every(self, name: str, interval: float, first: float, callback: Callable[[], object], *,
              grace: float, on_missed: Callable[[], None]) -> Timer:
        """Call ``callback()`` at ``first`` and every ``interval`` after it. A call that
        comes more than ``grace`` seconds late (the event loop was blocked, the machine
        suspended) is not made: ``on_missed()`` is, instead. Late calls are coalesced:
        at most one for the periods that went by. ``name`` identifies the job."""
        ...

    def close(self) -> None:
        """No more calls of any ``every`` job."""
        ...


class SystemClock:
    """The system's wall clock, the running loop's timers, APScheduler's interval jobs
    (``AsyncIOScheduler``, ``IntervalTrigger``, ``coalesce=True``, ``max_instances=1``,
    started with the first job)."""

    def __init__(self) -> None:
        self._scheduler: AsyncIOScheduler | None = None  # started with the first job
        self._missed: dict[str, Callable[[], None]] = {}

    def time(self) -> float:
        return time.time()

    def call_at(self, when: float, callback: Callable[..., object], *args: object) -> asyncio.TimerHandle:
        loop = asyncio.get_running_loop()
        return loop.call_at(loop.time() + (when - time.time()), callback, *args)

    def every(self, name: str, interval: float, first: float, callback: Callable[[], object], *,
              grace: float, on_missed: Callable[[], None]) -> _Job:
        scheduler = self._started()

        async def tick() -> None:  # a coroutine: APScheduler's asyncio executor runs it on the loop
            callback()

        job = scheduler.add_job(
            tick,
            IntervalTrigger(seconds=interval, start_date=datetime.fromtimestamp(first, UTC),
                            timezone=UTC),
            id=name,
            name=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=grace,
            replace_existing=True,
        )
        self._missed[name] = on_missed
        return _Job(self, job.id)

    @property
    def jobs(self) -> list[str]:
        """The names of the ``every`` jobs (one APScheduler job each)."""
        return [job.id for job in self._scheduler.get_jobs()] if self._scheduler is not None else []

    def close(self) -> None:
        if self._scheduler is not None:
            self._scheduler.remove_all_jobs()
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        self._missed.clear()

    def _started(self) -> AsyncIOScheduler:
        if self._scheduler is None:
            self._scheduler = AsyncIOScheduler(timezone=UTC)
            self._scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
            self._scheduler.start()
        return self._scheduler

    def _on_missed(self, event: JobEvent) -> None:
        on_missed = self._missed.get(event.job_id)
        if on_missed is not None:
            on_missed()

    def _remove(self, name: str) -> None:
        self._missed.pop(name, None)
        if self._scheduler is not None and (job := self._scheduler.get_job(name)) is not None:
            job.remove()


class _Job:
    """An ``every`` job of the system clock; :meth:`cancel` removes it."""

    __slots__ = ("_clock", "_name")

    def __init__(self, clock: SystemClock, name: str) -> None:
        self._clock = clock
        self._name = name

    def cancel(self) -> None:
        self._clock._remove(self._name)
