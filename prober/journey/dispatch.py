"""One runner for every plan: API journeys over HTTP, browser journeys in Chromium.

The scheduler and ``prober check`` hand every plan to a :class:`JourneyRunner`. A plan
with a ``browser`` journey goes to the browser runner, built on first use (Playwright
is imported, and Chromium launched, only by a prober that has browser checks); every
other plan to :func:`prober.journey.runner.run_journey`. :meth:`JourneyRunner.close`
closes the browser at shutdown.
"""

from __future__ import annotations

from pathlib import Path

from prober.journey.browser.engine import BrowserEngine, BrowserSettings
from prober.journey.browser.evidence import EvidenceStore
from prober.journey.browser.runner import BrowserRunner
from prober.journey.plan import JourneyPlan
from prober.journey.runner import run_journey
from prober.results import JourneyResult


class JourneyRunner:
    """Runs any plan; owns the process's browser, if any browser check ever runs."""

    def __init__(self, settings: BrowserSettings, evidence: EvidenceStore | None = None) -> None:
        self.settings = settings
        self.evidence = evidence
        self.browser: BrowserRunner | None = None

    @classmethod
    def for_state_dir(cls, state_dir: str | Path, chromium: str, concurrency: int, evidence_runs: int,
                      evidence_max_bytes: int) -> JourneyRunner:
        """A runner keeping its evidence under ``state_dir/evidence`` and its traces in
        flight under ``state_dir/browser-traces`` (both private to the prober's user)."""
        root = Path(state_dir)
        return cls(
            BrowserSettings(executable=chromium, max_concurrency=concurrency, traces_dir=root / "browser-traces"),
            EvidenceStore(root / "evidence", evidence_runs, evidence_max_bytes),
        )

    async def __call__(self, plan: JourneyPlan) -> JourneyResult:
        if plan.browser is None:
            return await run_journey(plan)
        if self.browser is None:
            self.browser = BrowserRunner(BrowserEngine(self.settings), self.evidence)
        return await self.browser.run(plan)

    async def close(self) -> None:
        """Close the browser (if one was launched) and its driver."""
        if self.browser is not None:
            await self.browser.engine.close()
