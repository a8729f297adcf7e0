"""Writer test helpers: sample results with increasing timestamps, fast writer settings, a
steady stream of submissions."""

from __future__ import annotations

import asyncio
import itertools
import time

from prober.results import JourneyResult, Outcome, Phases, StepResult
from prober.writer import ResultWriter, WriterSettings

result_clock = itertools.count(time.time_ns() // 1_000_000 * 1_000_000, 1_000_000)
"""Timestamps a millisecond apart from now: each result made here is its own point."""


def make_result(site: str, ok: bool = True, steps: int = 3) -> JourneyResult:
    t = next(result_clock)
    outcome = Outcome.OK if ok else Outcome.HTTP_STATUS
    return JourneyResult(
        site=site, check="accounts daily", kind="accounts", location="par", outcome=outcome,
        started_at_ns=t, duration_ms=12.0, failed_step="" if ok else "s1", error="" if ok else "HTTP 503",
        steps=(*[
            StepResult(f"s{j}", Outcome.OK if ok or j != 1 else Outcome.HTTP_STATUS, 4.0,
                       Phases(0.5, 0.5, 1.0, 1.5, 0.5), 200 if ok or j != 1 else 503, 100, started_at_ns=t + j)
            for j in range(steps)
        ], StepResult("never", Outcome.SKIPPED)),
    )


FAST = WriterSettings(flush_interval=0.05, batch_size=40, backoff_base=0.05, backoff_max=0.3)


async def stream(writer: ResultWriter, site: str, seconds: float, every: float = 0.01) -> int:
    """Submit a result every ``every`` seconds for ``seconds``; how many were submitted."""
    n = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        writer.submit(make_result(site))
        n += 1
        await asyncio.sleep(every)
    return n
