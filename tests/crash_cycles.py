"""``prober run`` killed with SIGKILL at random moments: which completed runs InfluxDB lacks.

Shared by ``tests/test_writer_sigkill.py`` and ``benchmarks/sigkill_loss.py``. One ``login``
check every 100 ms against the simulated bank: each run is one token request, so the
bank's request counter, polled every 5 ms, gives the time each run was answered. After
the kills and a restart that replays the spool, the ``check`` points in InfluxDB are
matched to those times (runs are sequential, so both lists are in the same order);
an answered run without a point is lost, and its *age* is how long before the kill
the bank answered it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from prober.simbank import BankServer
from tests.daemon_helpers import ProberProcess, check, config_text, wait_for

CHECK = "login-crash"


def crash_config(bank_url: str, influx_url: str, database: str, flush_interval: str = "2s") -> str:
    """One login check every 100 ms; ``flush_interval`` long on purpose: it must not matter."""
    return config_text(
        bank_url,
        [check("login", name=CHECK, interval="100ms")],
        daemon={"jitter": 0.0, "state_dir": "state", "grace_period": "1s"},
        influxdb={"url": influx_url, "api": "v1", "database": database, "flush_interval": flush_interval,
                  "timeout": "2s", "spool_dir": "spool"},
    )


@dataclass
class AnsweredRuns:
    """Wall-clock times at which the bank answered a token request (by polling its counter)."""

    bank: BankServer
    times: list[float] = field(default_factory=list)
    _task: asyncio.Task | None = None

    def start(self) -> AnsweredRuns:
        self._task = asyncio.create_task(self._poll())
        return self

    async def _poll(self) -> None:
        seen = self.bank.state.requests["login"]
        while True:
            now = self.bank.state.requests["login"]
            if now > seen:
                stamp = time.time()
                self.times.extend([stamp] * (now - seen))
                seen = now
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def run_then_kill(cwd: Path, answered: AnsweredRuns, rng: random.Random, low: float, high: float) -> float:
    """Start ``prober run``, SIGKILL it a random ``low``..``high`` s after its first run; the kill time."""
    prober = await ProberProcess(["run", "-c", "prober.toml"], cwd).start()
    try:
        first = len(answered.times)
        await wait_for(lambda: len(answered.times) > first, timeout=30, what="a first login run")
        await asyncio.sleep(rng.uniform(low, high))
        killed_at = time.time()
        prober.signal(signal.SIGKILL)
        code = await prober.wait(10)
    finally:
        await prober.kill()
    assert code == -signal.SIGKILL, prober.log[-3000:]
    # A request sent just before the kill may reach the bank after it: never completed.
    await asyncio.sleep(0.1)
    answered.times[:] = [t for t in answered.times if t <= killed_at]
    return killed_at


def lost_runs(answered: list[float], stored: list[float], kills: list[float]) -> list[tuple[int, float]]:
    """Every answered run InfluxDB lacks, as ``(kill index, age)``: the kill that followed it
    and how long (s) before that kill the bank answered it.

    ``stored`` are the start times of the ``check`` points; a run starts before the bank
    answers it, and runs are sequential, so matching in order pairs each point with the
    first answer at or after its start.
    """
    missing: list[float] = []
    answered = sorted(t for t in answered if t <= kills[-1])
    j = 0
    for start in sorted(stored):
        while j < len(answered) and answered[j] < start - 0.001:
            missing.append(answered[j])
            j += 1
        j += 1
    missing.extend(answered[j:])
    lost = []
    for at in missing:
        index = next(i for i, kill in enumerate(kills) if kill >= at)
        lost.append((index, kills[index] - at))
    return lost


def stored_starts(query, before: float) -> list[float]:
    """Start times (s) of the crash check's points before ``before``; ``query`` runs InfluxQL."""
    rows = query(f"SELECT \"success\" FROM \"check\" WHERE \"check\" = '{CHECK}' AND time < {int(before * 1e9)}")
    return [row["time"] / 1e9 for row in rows]  # the fixtures ask for epoch=ns
