"""A clock the test moves by hand, for the scheduler's logic (:class:`prober.daemon.clock.Clock`).

Its timers fire only in :meth:`ManualClock.advance`, in time order, each at its own time;
between two timers the event loop runs every task that is ready (a run started by a
timer gets its slot, calls the journey runner, delivers its result). :meth:`block`
moves time on without firing anything, as a blocked event loop or a suspended machine
would: the timers that came due fire late at the next ``advance``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

SETTLE_ROUNDS = 20
"""Event loop iterations run between two timers: enough for a run's task to start, take
its slot, finish a journey that does not wait on the clock, and deliver its result."""


class _Timer:
    __slots__ = ("when", "callback", "args", "cancelled")

    def __init__(self, when: float, callback: Callable[..., object], args: tuple[object, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class _Every:
    """An ``every`` job: re-armed on each call, coalesced and missed as APScheduler does."""

    def __init__(self, clock: ManualClock, name: str, interval: float, first: float,
                 callback: Callable[[], object], grace: float, on_missed: Callable[[], None]) -> None:
        self.clock, self.name, self.interval, self.first = clock, name, interval, first
        self.callback, self.grace, self.on_missed = callback, grace, on_missed
        self.index = 0
        """The run time the timer is set for: ``first + index × interval``."""
        self.timer = clock.call_at(first, self._due)

    def at(self, index: int) -> float:
        return self.first + index * self.interval

    def _due(self) -> None:
        now = self.clock.time()
        while self.at(self.index + 1) <= now:  # coalesced: only the latest run time counts
            self.index += 1
        if now - self.at(self.index) > self.grace:
            self.on_missed()
        else:
            self.callback()
        self.index += 1
        self.timer = self.clock.call_at(self.at(self.index), self._due)

    def cancel(self) -> None:
        self.timer.cancel()
        self.clock.jobs.pop(self.name, None)


class ManualClock:
    """Wall-clock time that moves only when the test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now
        self.jobs: dict[str, _Every] = {}
        """The ``every`` jobs, by name."""
        self._timers: list[tuple[float, int, _Timer]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[..., object], *args: object) -> _Timer:
        timer = _Timer(when, callback, args)
        heapq.heappush(self._timers, (when, next(self._order), timer))
        return timer

    def every(self, name: str, interval: float, first: float, callback: Callable[[], object], *,
              grace: float, on_missed: Callable[[], None]) -> _Every:
        job = self.jobs[name] = _Every(self, name, interval, first, callback, grace, on_missed)
        return job

    def close(self) -> None:
        for job in list(self.jobs.values()):
            job.cancel()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time (a journey that takes time)."""
        done = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        self.call_at(self.now + seconds, wake)
        await done

    def block(self, seconds: float) -> None:
        """Time passes and nothing runs: the timers due meanwhile fire late, at the next advance."""
        self.now += seconds

    async def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``, firing each timer due at its own time."""
        end = self.now + seconds
        await _settle()
        while self._timers and self._timers[0][0] <= end:
            when, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self.now = max(self.now, when)
            timer.callback(*timer.args)
            await _settle()
        self.now = end
        await _settle()


async def _settle() -> None:
    for _ in range(SETTLE_ROUNDS):
        await asyncio.sleep(0)
