"""Daily uptime per site × capability: the status page's history bars.

:class:`DailyHistory` is a result consumer. For each site × kind it counts, per UTC day,
the runs that were counted (skipped runs are not) and the ones that failed; a day's
uptime is ``1 - failures / runs``, the same figure as ``mean("success")`` per day in
InfluxDB. It is small and bounded: at most ``days`` days per series (older days are
dropped) and at most :data:`MAX_SERIES` series. It is kept in
``<state_dir>/uptime.json`` (replaced atomically), loaded at start and saved every
:data:`SAVE_INTERVAL` seconds and at close, in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from prober.incidents.store import StateStore
from prober.results import JourneyResult, Outcome
from prober.waiting import cancel_and_wait

log = logging.getLogger("prober.statuspage")

SAVE_INTERVAL = 60.0
MAX_SERIES = 5000
"""Site × kind series kept at most (a configuration has far fewer)."""


@dataclass(frozen=True, slots=True)
class DayUptime:
    """One day of one site × capability (``runs == 0``: no data that day)."""

    day: date
    runs: int = 0
    failures: int = 0

    @property
    def uptime(self) -> float | None:
        """Fraction of counted runs that succeeded, or None without runs."""
        return None if self.runs <= 0 else max(0.0, 1.0 - self.failures / self.runs)


def utc_day(epoch_ns: int) -> date:
    return datetime.fromtimestamp(epoch_ns / 1e9, tz=UTC).date()


def day_range(days: int, today: date) -> list[date]:
    """The last ``days`` days up to ``today``, oldest first."""
    return [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


Counts = dict[tuple[str, str], dict[date, list[int]]]
"""``(site, kind) → day → [runs, failures]``."""


class DailyHistory:
    """Result consumer: runs and failures per UTC day per site × kind (see the module)."""

    def __init__(self, state_dir: str | Path, days: int = 90, *, clock: Any = time.time_ns) -> None:
        self.days = days
        self.clock = clock
        self.store = StateStore(state_dir, "uptime.json", what="uptime history",
                                empty="the daily uptime bars start empty")
        self.counts: Counts = {}
        self._dirty = False
        self._task: asyncio.Task[None] | None = None

    # ── the consumer interface ─────────────────────────────────────────────────────
    def consume(self, result: JourneyResult) -> None:
        if result.outcome is Outcome.SKIPPED:
            return
        key = (result.site, result.kind)
        series = self.counts.get(key)
        if series is None:
            if len(self.counts) >= MAX_SERIES:
                return
            series = self.counts[key] = {}
        day = utc_day(result.started_at_ns)
        entry = series.get(day)
        if entry is None:
            entry = series[day] = [0, 0]
            self._prune(series)
        entry[0] += 1
        if result.outcome is not Outcome.OK:
            entry[1] += 1
        self._dirty = True

    async def start(self) -> None:
        self.restore(await asyncio.to_thread(self.store.load))
        self._task = asyncio.get_running_loop().create_task(self._save_loop(), name="uptime history saver")

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self._save()

    # ── reading ────────────────────────────────────────────────────────────────────
    def daily(self, days: int | None = None) -> dict[tuple[str, str], list[DayUptime]]:
        """Every series as the last ``days`` days (default: all kept), oldest first."""
        span = day_range(days or self.days, utc_day(self.clock()))
        return {key: [DayUptime(d, *series[d]) if d in series else DayUptime(d) for d in span]
                for key, series in self.counts.items()}

    @staticmethod
    def series_of(counts: dict[date, tuple[int, int]], *, days: int, today: date) -> list[DayUptime]:
        """``days`` days up to ``today`` from ``day → (runs, failures)`` (other sources, tests)."""
        return [DayUptime(d, *counts[d]) if d in counts else DayUptime(d) for d in day_range(days, today)]

    # ── persistence ────────────────────────────────────────────────────────────────
    def to_json(self) -> dict[str, Any]:
        return {
            f"{site}\x1f{kind}": {d.isoformat(): list(v) for d, v in series.items()}
            for (site, kind), series in self.counts.items()
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Load what :meth:`to_json` saved; anything malformed is skipped."""
        for text, series in list(data.items())[:MAX_SERIES]:
            site, sep, kind = str(text).partition("\x1f")
            if not sep or not isinstance(series, dict):
                continue
            days: dict[date, list[int]] = {}
            for day, value in series.items():
                try:
                    runs, failures = (int(x) for x in value)
                    days[date.fromisoformat(day)] = [max(runs, 0), min(max(failures, 0), max(runs, 0))]
                except (TypeError, ValueError):
                    continue
            self._prune(days)
            self.counts[(site, kind)] = days

    def _prune(self, series: dict[date, list[int]]) -> None:
        oldest = utc_day(self.clock()) - timedelta(days=self.days - 1)
        for day in [d for d in series if d < oldest]:
            del series[day]

    async def _save(self) -> None:
        if not self._dirty:
            return
        snapshot = self.to_json()
        self._dirty = False
        try:
            await asyncio.to_thread(self.store.save, snapshot)
        except OSError as exc:
            self._dirty = True
            log.error("cannot save the uptime history to %s: %s", self.store.path, exc)

    async def _save_loop(self) -> None:
        while True:
            await asyncio.sleep(SAVE_INTERVAL)
            await self._save()
