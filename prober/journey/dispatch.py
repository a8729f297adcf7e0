"""One runner for every plan: API journeys over HTTP, browser journeys in Chromium.

The scheduler and ``prober check`` hand every plan to a :class:`JourneyRunner`. A plan
with a ``browser`` journey goes to the browser process (started on first use: Playwright
is imported, and Chromium launched, only by a prober that has browser checks, and in a
process of its own, :mod:`prober.journey.browser.worker`); every other plan to
:func:`prober.journey.runner.run_journey`. :meth:`JourneyRunner.close` stops the browser
process at shutdown.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prober.journey.browser.process import BrowserProcess
from prober.journey.browser.wire import BrowserProcessSettings
from prober.journey.plan import JourneyPlan
from prober.journey.runner import run_journey
from prober.results import JourneyResult


class JourneyRunner:
    """Runs any plan; owns the browser process, if any browser check ever runs."""

    def __init__(self, settings: BrowserProcessSettings) -> None:
        self.settings = settings
        self.browser: BrowserProcess | None = None

    @classmethod
    def for_state_dir(cls, state_dir: str | Path, chromium: str, concurrency: int, evidence_runs: int,
                      evidence_max_bytes: int) -> JourneyRunner:
        """A runner keeping its evidence under ``state_dir/evidence`` and its traces in
        flight under ``state_dir/browser-traces`` (both private to the prober's user)."""
        root = Path(state_dir)
        return cls(BrowserProcessSettings(
            executable=chromium, max_concurrency=concurrency, traces_dir=root / "browser-traces",
            evidence_dir=root / "evidence", evidence_runs=evidence_runs, evidence_max_bytes=evidence_max_bytes,
            log_level=logging.getLogger("prober").getEffectiveLevel(),
        ))

    async def __call__(self, plan: JourneyPlan) -> JourneyResult:
        if plan.browser is None:
            return await run_journey(plan)
        if self.browser is None:
            self.browser = BrowserProcess(self.settings)
        return await self.browser.run(plan)

    async def close(self) -> None:
        """Stop the browser process (if one was started), its browser and its driver."""
        if self.browser is not None:
            await self.browser.close()
