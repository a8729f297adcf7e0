"""A journey's result from its steps' results, the same for API and browser journeys.

The journey's outcome is that of its first failed step (a step skipped because an
earlier one failed does not count; a journey of skipped steps is ``skipped``); a journey
whose every step passed but which took longer than its ``max_duration`` is ``slow``,
with no step to blame. A run that was never made (no free browser, a dead browser
process, an overlap, the prober shutting down) is a result too: :func:`not_run`.
"""

from __future__ import annotations

import logging
import time

from prober.journey.plan import JourneyPlan
from prober.results import JourneyResult, Outcome, StepResult

runs_log = logging.getLogger("prober.journey")
"""One debug line per run: names and the outcome (the error is in the result's outputs)."""


def journey_result(
    plan: JourneyPlan, results: list[StepResult], wall_ns: int, duration_ms: float, run_id: str, *,
    trace_id: str = "", evidence: tuple[str, ...] = (),
) -> JourneyResult:
    """The result of a run of ``plan`` whose steps ended as ``results`` (a result without
    a name is a failure outside any step: it sets the outcome but is not a step)."""
    failure = next((r for r in results if r.outcome not in (Outcome.OK, Outcome.SKIPPED)), None)
    if failure is None:
        failure = next((r for r in results if r.outcome is not Outcome.OK), None)
    outcome, failed_step, error = (failure.outcome, failure.name, failure.error) if failure else (Outcome.OK, "", "")
    if failure is None and plan.max_duration is not None and duration_ms > plan.max_duration * 1000.0:
        outcome = Outcome.SLOW
        error = f"slow: journey took {duration_ms:.0f} ms, over its {plan.max_duration * 1000.0:.0f} ms budget"
    result = JourneyResult(
        site=plan.site, check=plan.check, kind=plan.kind, location=plan.location, outcome=outcome,
        started_at_ns=wall_ns, duration_ms=duration_ms, steps=tuple(r for r in results if r.name),
        failed_step=failed_step, error=error, run_id=run_id, tags=plan.tags, trace_id=trace_id, evidence=evidence,
    )
    if runs_log.isEnabledFor(logging.DEBUG):
        runs_log.debug("run %s of %s/%s: %s%s in %.1f ms, %d steps%s", run_id, plan.site, plan.check, outcome.value,
                       f" at step {failed_step}" if failed_step else "", duration_ms, len(result.steps),
                       " (browser)" if plan.browser is not None else "")
    return result


def not_run(plan: JourneyPlan, error: str, outcome: Outcome = Outcome.SKIPPED, started_at_ns: int | None = None,
            ) -> JourneyResult:
    """A run of ``plan`` that was not made, or ended outside any step (``error`` says
    why): no steps, no duration, started at ``started_at_ns`` (default: now)."""
    started = time.time_ns() if started_at_ns is None else started_at_ns
    return JourneyResult(site=plan.site, check=plan.check, kind=plan.kind, location=plan.location, outcome=outcome,
                         started_at_ns=started, duration_ms=0.0, error=error, tags=plan.tags)
