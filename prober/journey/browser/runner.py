"""Run one browser journey: a fresh context, its steps in order, cleanup steps always.

The same contract as the API runner (:func:`prober.journey.runner.run_journey`): one
typed :class:`~prober.results.JourneyResult`, never an exception but cancellation, the
journey's timeout for its steps (each capped at its own ``timeout``), ``always_run``
steps with their own full timeout even after a failure or when the journey's time is
spent. A cleanup step that follows a page which stopped answering, crashed or went to
another origin gets a new page of the same context (same cookies, same session).

How each step's end maps onto the outcomes (README, "Browser checks"):

=============================================== ==========================================
what happened                                    outcome and error
=============================================== ==========================================
the main document answered 4xx/5xx               ``http_status`` (``auth`` for 401/403),
                                                 ``HTTP 503 (page https://…/path)``
no answer (refused, reset, DNS, TLS)             ``connect``, ``dns``, ``tls``
an expectation still false when time is up       ``assertion`` (expected versus got)
an element to act on or wait for never appeared  ``assertion``, ``#id: no element …``
(the page loaded and answers)
the page did not finish loading in time          ``timeout``
the page stopped answering (a script that never  ``timeout``, ``the page stopped
ends)                                            responding``
an uncaught page error, and the step failed      ``error``, ``uncaught page error: …``
a dialog the step does not expect                ``error`` (the dialog is dismissed)
a popup, a download                              ``error`` (closed, cancelled)
the page went to another origin                  ``error`` (later steps are skipped)
the page crashed                                 ``error``
right, but over ``max_duration``                 ``slow``
=============================================== ==========================================
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

from prober.journey.browser.engine import BrowserEngine, BrowserUnavailable
from prober.journey.browser.evidence import EvidenceStore, place, scrub_trace
from prober.journey.browser.judge import check_until, take_values
from prober.journey.browser.metrics import VITALS_SCRIPT, read_page
from prober.journey.browser.observe import PageWatch, StepEvents
from prober.journey.browser.plan import BrowserJourney, BrowserStepPlan, origin_of
from prober.journey.checks import _SECRET_NAME
from prober.journey.failures import status_outcome
from prober.journey.plan import JourneyPlan
from prober.journey.runner import RunInfo, _log_internal
from prober.journey.verdict import journey_result, not_run
from prober.redact import Redactor
from prober.results import JourneyResult, Outcome, PageMetrics, StepResult
from prober.timefmt import utc_iso_ns

if TYPE_CHECKING:  # Playwright is imported when a browser check runs, not before
    from playwright.async_api import Page

log = logging.getLogger("prober.journey.browser")

DIAGNOSE_TIMEOUT = 0.5
"""Seconds the page gets, after a step timed out, to say whether it still answers."""
JUDGE_MARGIN = 0.25
"""Seconds before the end of a step when its expectations are judged one last time."""
EVIDENCE_TIMEOUT = 5.0
"""Seconds the screenshot and the trace of a failed run may take."""
_NET_ERRORS = (
    ("ERR_NAME_NOT_RESOLVED", Outcome.DNS), ("ERR_NAME_RESOLUTION_FAILED", Outcome.DNS),
    ("ERR_CERT_", Outcome.TLS), ("ERR_SSL_", Outcome.TLS), ("ERR_BAD_SSL", Outcome.TLS),
    ("ERR_TIMED_OUT", Outcome.TIMEOUT), ("ERR_CONNECTION_TIMED_OUT", Outcome.TIMEOUT),
    ("ERR_CONNECTION_", Outcome.CONNECT), ("ERR_ADDRESS_UNREACHABLE", Outcome.CONNECT),
    ("ERR_EMPTY_RESPONSE", Outcome.CONNECT), ("ERR_INTERNET_DISCONNECTED", Outcome.CONNECT),
)
_STORAGE_SCRIPT = """() => { const out = [];
  for (const store of [localStorage, sessionStorage]) for (let i = 0; i < store.length; i++) {
    const k = store.key(i); out.push([k, store.getItem(k)]); }
  return out; }"""


@dataclass(slots=True)
class _Page:
    """The page a run drives, with its watcher and what is known of its document."""

    page: Any
    watch: PageWatch
    origin: float = 0.0
    """``performance.timeOrigin`` of the document last read: a change means a new document."""
    usable: bool = True
    """False once it stopped answering, crashed or left the journey's origins."""


class BrowserRunner:
    """Plays browser journeys on one :class:`BrowserEngine`, keeping evidence of failures."""

    def __init__(self, engine: BrowserEngine, evidence: EvidenceStore | None = None, trace: bool = True) -> None:
        self.engine = engine
        self.evidence = evidence
        self.trace = trace and evidence is not None and evidence.runs > 0
        self.runs = 0
        self.longest_s = 60.0
        """The longest journey timeout seen: recorded resources older than twice this are swept."""

    async def run(self, plan: JourneyPlan) -> JourneyResult:
        """Run the browser journey of ``plan`` once (never raises but ``CancelledError``)."""
        journey = plan.browser
        assert journey is not None
        wall_ns = time.time_ns()
        if not await self.engine.acquire(plan.timeout):
            return not_run(plan, f"skipped: no browser free within the journey timeout of {plan.timeout:g}s "
                                 f"([daemon] max_browser_concurrency = {self.engine.settings.max_concurrency})",
                           started_at_ns=wall_ns)
        try:
            return await self._run(plan, journey)
        finally:
            self.engine.release()

    async def _run(self, plan: JourneyPlan, journey: BrowserJourney) -> JourneyResult:
        wall_ns = time.time_ns()
        started = perf_counter()
        run = RunInfo(plan, wall_ns)
        values: dict[str, Any] = {**plan.values, "run": run}
        redact = Redactor(plan.secrets)
        results: list[StepResult] = []
        evidence: tuple[str, ...] = ()
        self.runs += 1
        self.longest_s = max(self.longest_s, plan.timeout)
        try:
            async with self.engine.context(**_context_options(journey)) as context:
                await context.add_init_script(VITALS_SCRIPT)
                if self.trace:
                    await context.tracing.start(name=f"run-{run.id}", snapshots=True, screenshots=False,
                                                sources=False)
                driven = await self._open_page(context, journey, redact)
                driven = await self._steps(plan, journey, context, driven, values, redact, results)
                failed = any(r.outcome not in (Outcome.OK, Outcome.SKIPPED) for r in results)
                if failed and self.evidence is not None and self.evidence.runs > 0:
                    evidence = await self._keep_evidence(plan, run, context, driven, redact, wall_ns)
                elif self.trace:
                    await self._drop_trace(context, run.id)
        except BrowserUnavailable as exc:
            results.append(StepResult(name="", outcome=Outcome.ERROR, error=redact(f"error: {exc}"),
                                      started_at_ns=wall_ns))
        except Exception as exc:  # noqa: BLE001 - a bug, or a browser that died under the run
            _log_internal(f"browser check {plan.site}/{plan.check}", exc, redact)
            results.append(StepResult(name="", outcome=Outcome.ERROR,
                                      error=f"error: internal {type(exc).__name__} in the browser",
                                      started_at_ns=wall_ns))
        return journey_result(plan, results, wall_ns, (perf_counter() - started) * 1000.0, run.id, evidence=evidence)

    async def _open_page(self, context: Any, journey: BrowserJourney, redact: Redactor) -> _Page:
        page = await context.new_page()
        return _Page(page, PageWatch(page, journey.origins, redact))

    async def _steps(
        self, plan: JourneyPlan, journey: BrowserJourney, context: Any, driven: _Page, values: dict[str, Any],
        redact: Redactor, results: list[StepResult],
    ) -> _Page:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + plan.timeout
        failure: StepResult | None = None
        for step in journey.steps:
            if failure is not None and not step.always_run:
                results.append(_not_run(step, f"skipped: step {failure.name} failed"))
                continue
            left = deadline - loop.time()
            budget = step.timeout if step.always_run else min(step.timeout, max(left, 0.0))
            if budget <= 0:
                results.append(_not_run(step, f"timeout: journey budget of {plan.timeout:g}s spent", Outcome.TIMEOUT))
                failure = failure or results[-1]
                continue
            if not driven.usable:
                driven = await self._replace_page(context, journey, driven, redact)
            cut_by_journey = not step.always_run and left < step.timeout
            try:
                result = await self._step(driven, step, values, redact, budget, plan, cut_by_journey)
            except Exception as exc:  # noqa: BLE001 - a bug becomes this step's outcome
                _log_internal(f"browser check {plan.site}/{plan.check} step {step.name}", exc, redact)
                driven.usable = False
                result = _not_run(step, f"error: internal {type(exc).__name__} in step {step.name}", Outcome.ERROR)
            results.append(result)
            if failure is None and result.outcome not in (Outcome.OK, Outcome.SKIPPED):
                failure = result
        return driven

    async def _replace_page(self, context: Any, journey: BrowserJourney, old: _Page, redact: Redactor) -> _Page:
        """A new page of the same context for cleanup steps, the old one closed without waiting for it."""
        try:
            await asyncio.wait_for(old.page.close(run_before_unload=False), 2.0)
        except Exception:  # noqa: BLE001 - a page that cannot close is dropped with the context
            pass
        return await self._open_page(context, journey, redact)

    async def _step(
        self, driven: _Page, step: BrowserStepPlan, values: dict[str, Any], redact: Redactor, budget: float,
        plan: JourneyPlan, cut_by_journey: bool,
    ) -> StepResult:
        page, watch = driven.page, driven.watch
        watch.begin(step.dialog)
        loop = asyncio.get_running_loop()
        wall_ns = time.time_ns()
        started = perf_counter()
        deadline = loop.time() + budget
        stage = "action"
        outcome, error = Outcome.OK, ""
        taken: dict[str, str] = {}
        try:
            async with asyncio.timeout(budget):
                await _act(page, step, values, budget)
                stage = "wait"
                if step.wait is not None:
                    await _wait(page, step, values, max(deadline - loop.time(), 0.001))
                stage = "expect"
                outcome, error, taken = await _expect(page, step, values, redact, budget, deadline)
        except TimeoutError:
            outcome, error = await _diagnose(driven, step, stage, budget, plan, cut_by_journey, timed_out=True)
        except Exception as exc:  # noqa: BLE001 - Playwright's errors become outcomes
            if type(exc).__name__ == "TimeoutError":  # Playwright's own timeout of an action or a wait
                outcome, error = await _diagnose(driven, step, stage, budget, plan, cut_by_journey, timed_out=False)
            else:
                outcome, error = _classify(exc)
        duration_ms = (perf_counter() - started) * 1000.0
        events = watch.events
        reading = await read_page(page) if driven.usable and not events.crashed else None
        navigated = reading is not None and reading.origin != driven.origin
        if reading is not None:
            driven.origin = reading.origin
        outcome, error = _verdict(outcome, error, events, step, driven)
        if outcome is Outcome.OK:
            for name, value in taken.items():
                if any(extract.name == name and extract.secret for extract in step.extracts):
                    redact.add(value)
            values.update(taken)
            if step.max_duration is not None and duration_ms > step.max_duration * 1000.0:
                outcome = Outcome.SLOW
                error = f"slow: {duration_ms:.0f} ms over the {step.max_duration * 1000.0:.0f} ms budget"
        metrics = reading.metrics if navigated and reading is not None else PageMetrics()
        metrics = PageMetrics(
            dcl_ms=metrics.dcl_ms, load_ms=metrics.load_ms, fcp_ms=metrics.fcp_ms, lcp_ms=metrics.lcp_ms,
            cls=metrics.cls, console_errors=events.console_errors, page_errors=events.page_errors,
            failed_requests=events.failed_requests,
        )
        return StepResult(
            name=step.name, outcome=outcome, duration_ms=duration_ms,
            phases=reading.phases if navigated and reading is not None else None,
            http_status=events.document_status or (reading.status if navigated and reading is not None else None),
            bytes=reading.bytes if navigated and reading is not None else 0,
            error=redact(error), always_run=step.always_run, attempts=1, started_at_ns=wall_ns, page=metrics,
        )

    # -- evidence ----------------------------------------------------------------
    async def _keep_evidence(
        self, plan: JourneyPlan, run: RunInfo, context: Any, driven: _Page, redact: Redactor, wall_ns: int
    ) -> tuple[str, ...]:
        store = self.evidence
        assert store is not None
        folder = store.directory(plan.site, plan.check)
        stem = f"{utc_iso_ns(wall_ns).replace(':', '').replace('-', '')}-{run.id[:8]}"
        kept: list[str] = []
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            await self._learn_run_secrets(context, driven, redact)
            if driven.usable:
                shot = await self._screenshot(driven.page, plan, folder / f".{stem}.png")
                if shot is not None:
                    final = folder / f"{stem}.png"
                    place(shot, final)
                    kept.append(str(final))
            if self.trace:
                raw = folder / f".{stem}.raw.zip"
                try:
                    await asyncio.wait_for(context.tracing.stop(path=str(raw)), EVIDENCE_TIMEOUT)
                    tmp = folder / f".{stem}.trace.zip"
                    await asyncio.to_thread(scrub_trace, raw, tmp, redact)
                    final = folder / f"{stem}.trace.zip"
                    place(tmp, final)
                    kept.append(str(final))
                finally:
                    raw.unlink(missing_ok=True)
                    self._forget_trace_files(run.id)
            await asyncio.to_thread(store.prune, plan.site, plan.check)
        except Exception as exc:  # noqa: BLE001 - evidence is best effort: the result stands
            log.warning("cannot keep the evidence of %s/%s: %s", plan.site, plan.check, type(exc).__name__)
        return tuple(kept)

    async def _screenshot(self, page: Any, plan: JourneyPlan, path: Path) -> Path | None:
        journey = plan.browser
        assert journey is not None
        try:
            masks = [page.locator(selector) for selector in journey.masks]
            await page.screenshot(path=str(path), mask=masks, timeout=EVIDENCE_TIMEOUT * 1000, animations="disabled")
            return path
        except Exception:  # noqa: BLE001 - a page that cannot be pictured (stuck, closed)
            path.unlink(missing_ok=True)
            return None

    async def _learn_run_secrets(self, context: Any, driven: _Page, redact: Redactor) -> None:
        """The run's cookies, and tokens in the page's storage, are secrets of its evidence."""
        try:
            for cookie in await asyncio.wait_for(context.cookies(), 2.0):
                redact.add(str(cookie.get("value", "")))
        except Exception:  # noqa: BLE001 - no cookies to learn from a context that does not answer
            pass
        if not driven.usable:
            return
        try:
            entries = await asyncio.wait_for(driven.page.evaluate(_STORAGE_SCRIPT), 1.0)
        except Exception:  # noqa: BLE001 - a page that does not answer keeps its storage to itself
            return
        for key, value in entries or []:
            text = str(value or "")
            if _SECRET_NAME.search(str(key)) or (len(text) >= 16 and not any(c.isspace() for c in text)):
                redact.add(text)

    async def _drop_trace(self, context: Any, run_id: str) -> None:
        try:
            await asyncio.wait_for(context.tracing.stop(), EVIDENCE_TIMEOUT)
        except Exception:  # noqa: BLE001 - the context goes anyway
            pass
        self._forget_trace_files(run_id)

    def _forget_trace_files(self, run_id: str) -> None:
        """Remove what Playwright recorded of a run (in clear) from its traces directory."""
        traces = self.engine.settings.traces_dir
        if traces is None:
            return
        for path in traces.glob(f"run-{run_id}*"):
            path.unlink(missing_ok=True)
        sweep_resources(traces, keep_s=self.longest_s * 2)


def sweep_resources(traces: Path, keep_s: float) -> None:
    """Remove the recorded resources (response bodies…) older than any run in flight."""
    resources = traces / "resources"
    cutoff = time.time() - keep_s
    try:
        entries = list(resources.iterdir())
    except OSError:
        return
    for path in entries:
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            continue


def _context_options(journey: BrowserJourney) -> dict[str, Any]:
    options: dict[str, Any] = {
        "viewport": {"width": 1280, "height": 800},
        "accept_downloads": False,
        "ignore_https_errors": journey.ignore_https_errors,
        "service_workers": "block",
    }
    if journey.client_certificate is not None:
        cert, key = journey.client_certificate
        options["client_certificates"] = [{"origin": origin_of(journey.base_url), "certPath": cert,
                                           **({"keyPath": key} if key else {})}]
    return options


async def _act(page: Any, step: BrowserStepPlan, values: dict[str, Any], budget: float) -> None:
    """The step's action, each Playwright call bounded by the step's budget."""
    ms = budget * 1000.0
    action = step.action
    if action is None:
        return
    if action == "goto":
        assert step.url is not None
        await page.goto(step.url(values), timeout=ms, wait_until="load")
    elif action == "click":
        await page.locator(step.selector).first.click(timeout=ms)
    elif action in ("check", "uncheck"):
        locator = page.locator(step.selector).first
        await (locator.check(timeout=ms) if action == "check" else locator.uncheck(timeout=ms))
    elif action == "fill":
        for field in step.fields:
            await page.locator(field.selector).first.fill(str(field.value(values)), timeout=ms)
    elif action == "select":
        for field in step.fields:
            await page.locator(field.selector).first.select_option(str(field.value(values)), timeout=ms)
    elif action == "press":
        assert step.key is not None
        key = str(step.key(values))
        if step.selector is not None:
            await page.locator(step.selector).first.press(key, timeout=ms)
        else:
            await page.keyboard.press(key)


async def _wait(page: Any, step: BrowserStepPlan, values: dict[str, Any], left: float) -> None:
    wait = step.wait
    assert wait is not None
    ms = left * 1000.0
    if wait.selector is not None:
        await page.locator(wait.selector).first.wait_for(state=wait.state, timeout=ms)
    elif wait.url is not None:
        import re

        target: Any = re.compile(wait.url[3:]) if wait.url.startswith("re:") else wait.url
        await page.wait_for_url(target, timeout=ms, wait_until="load")
    elif step.wait_text is not None:
        await page.get_by_text(str(step.wait_text(values))).first.wait_for(state="visible", timeout=ms)
    elif wait.load_state is not None:
        await page.wait_for_load_state(wait.load_state, timeout=ms)


async def _expect(
    page: Page, step: BrowserStepPlan, values: dict[str, Any], redact: Redactor, budget: float, deadline: float,
) -> tuple[Outcome, str, dict[str, str]]:
    """The step's expectations, then the values it takes: ``assertion`` when either fails."""
    if step.expectations:
        # Judged a little before the step's end, so that a wrong page is told apart from
        # a page that never answered.
        margin = min(JUDGE_MARGIN, budget / 10)
        problem = await check_until(page, step.expectations, values, redact, deadline - margin)
        if problem is not None:
            return Outcome.ASSERTION, f"assertion failed: {problem}", {}
    if not step.extracts:
        return Outcome.OK, "", {}
    taken, missing = await take_values(page, step.extracts)
    return (Outcome.ASSERTION, missing, taken) if missing else (Outcome.OK, "", taken)


async def _diagnose(
    driven: _Page, step: BrowserStepPlan, stage: str, budget: float, plan: JourneyPlan, cut_by_journey: bool,
    *, timed_out: bool,
) -> tuple[Outcome, str]:
    """Why a step ran out of time: a page stuck in a script, still loading, or loaded and
    answering but without what the step needed (the last is ``assertion``)."""
    scope = f"journey timeout {plan.timeout:g}s" if cut_by_journey else f"step timeout {budget:g}s"
    try:
        state = await asyncio.wait_for(driven.page.evaluate("document.readyState"), DIAGNOSE_TIMEOUT)
    except Exception:  # noqa: BLE001 - no answer at all
        driven.usable = False
        return (
            Outcome.TIMEOUT,
            f"timeout: the page stopped responding (a script that never ends?) within {budget:.3g}s ({scope})",
        )
    if state != "complete" or step.action == "goto" or (step.wait is not None and step.wait.load_state):
        return Outcome.TIMEOUT, (f"timeout: the page did not finish loading within {budget:.3g}s "
                                 f"({scope}; it is {state})")
    wait = step.wait
    if stage == "wait" and wait is not None and wait.url is not None:
        return Outcome.TIMEOUT, f"timeout: the page did not reach {wait.url} within {budget:.3g}s ({scope})"
    if stage == "action" and step.action in ("click", "fill", "select", "check", "uncheck", "press"):
        target = step.selector or (step.fields[0].selector if step.fields else "the page")
        return Outcome.ASSERTION, f"assertion failed: {target}: no element to {step.action} within {budget:.3g}s"
    if stage == "wait" and wait is not None:
        what = wait.selector or f"text {wait.text!r}"
        awaited = wait.state if wait.selector else "visible"
        return Outcome.ASSERTION, f"assertion failed: {what}: not {awaited} within {budget:.3g}s"
    return Outcome.TIMEOUT, f"timeout: the step did not complete within {budget:.3g}s ({scope})"


def _classify(exc: BaseException) -> tuple[Outcome, str]:
    """A Playwright error as an outcome: network errors of the page's own request as
    ``connect``/``dns``/``tls``, anything else ``error`` with its first line."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    for marker, outcome in _NET_ERRORS:
        if marker in message:
            code = message[message.find("net::"):].split()[0] if "net::" in message else marker
            return outcome, f"{outcome.value}: {code}"
    if "crash" in message.lower():
        return Outcome.ERROR, "error: the page crashed"
    if "closed" in message.lower():
        return Outcome.ERROR, "error: the page or the browser went away"
    return Outcome.ERROR, f"error: {message.removeprefix('Error: ')[:200]}"


def _verdict(
    outcome: Outcome, error: str, events: StepEvents, step: BrowserStepPlan, driven: _Page
) -> tuple[Outcome, str]:
    """The step's outcome once what happened on the page is known (see the module's table)."""
    if events.crashed:
        driven.usable = False
        return Outcome.ERROR, "error: the page crashed"
    if events.foreign_origin:
        driven.usable = False
        return Outcome.ERROR, f"error: the page went to another origin ({events.foreign_origin})"
    if events.document_failure and outcome is not Outcome.OK:
        for marker, net_outcome in _NET_ERRORS:
            if marker in events.document_failure:
                return net_outcome, f"{net_outcome.value}: {events.document_failure.split()[0]}"
    if events.document_status is not None and events.document_status >= 400:
        status = events.document_status
        return status_outcome(status), f"HTTP {status} (page: {step.name})"
    if events.dialogs:
        return Outcome.ERROR, f"error: unexpected dialog ({events.dialogs[0]}), dismissed"
    if events.popups:
        return Outcome.ERROR, f"error: the page opened a popup ({events.popups[0]}); popups are closed, not followed"
    if events.downloads:
        return Outcome.ERROR, f"error: the page started a download ({events.downloads[0]}); downloads are cancelled"
    if outcome not in (Outcome.OK, Outcome.SLOW) and events.page_errors and outcome is not Outcome.TIMEOUT:
        return Outcome.ERROR, f"error: uncaught page error: {events.last_page_error}"
    return outcome, error


def _not_run(step: BrowserStepPlan, reason: str, outcome: Outcome = Outcome.SKIPPED) -> StepResult:
    return StepResult(name=step.name, outcome=outcome, error=reason, always_run=step.always_run,
                      started_at_ns=time.time_ns())


