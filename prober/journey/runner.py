"""Run one journey: its steps in order, cleanup steps always, one result.

The runner owns the timeouts and the bookkeeping, the steps only say what to send and
what to expect. A step's budget is its own timeout, cut to what is left of the journey's;
``always_run`` (cleanup) steps keep their full step timeout even after the journey's
budget is spent or an earlier step failed, so a frozen test card is always unfrozen.

An internal error (a bug, a ``RecursionError`` on a pathological answer…) ends the step
it happened in with outcome ``error`` and a message naming only the exception's class
and the step; cleanup steps still run, and the other journeys are not affected.

Nothing is retried: a failure is what the prober exists to record, and a mutating step
sent twice could move money twice. ``poll`` steps (read-only by construction) repeat
until the bank reports the expected state.

A step runs in layers, each with one job (as httpx's ``send`` → ``_send_handling_auth``
→ ``_send_handling_redirects`` → ``_send_single_request``)::

    _run_token_step   the cached token, or a token request (one at a time per client)
    _run_step         render the request, attempts (polls), judge the answer, finish the result
    _request_options  aiohttp's options: encoded body, TLS server name, middlewares per hop
    _send_timed       the send itself: timeout, phase timestamps, body read, failure → outcome

Every layer takes the run's :class:`_StepContext` (session, plan, values, redactor, the
step and its budget).
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from dataclasses import dataclass
from time import perf_counter
from typing import Any
from urllib.parse import urlencode

import aiohttp

from prober.journey.checks import Response
from prober.journey.failures import ReportableError, classify, status_outcome
from prober.journey.hops import Hops
from prober.journey.http import BodyReader, PhaseClock, bind_clock, open_session, unbind_clock
from prober.journey.oauth import TokenRequest, refusal, tokens_in
from prober.journey.plan import JourneyPlan, StepPlan
from prober.journey.redirects import Middleware
from prober.journey.signing import signing_middleware
from prober.journey.templating import UndefinedValue, fresh_uuid
from prober.journey.verdict import journey_result
from prober.redact import Redactor
from prober.results import JourneyResult, Outcome, StepResult
from prober.timefmt import utc_date, utc_iso_ns

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

log = logging.getLogger("prober.journey")


class RunInfo:
    """Per-run values for templates: ``{{ run.id }}``, ``{{ run.now }}``…

    ``now`` and ``date`` are formatted only when a template asks for them: most runs
    never do, and formatting two times per run adds up at thousands of runs a second.
    """

    __slots__ = ("id", "uuid", "site", "check", "location", "epoch_ms", "trace_id", "_wall_ns")

    def __init__(self, plan: JourneyPlan, wall_ns: int) -> None:
        self.uuid = fresh_uuid()
        self.id = self.uuid.replace("-", "")
        self.trace_id = ""
        """The W3C trace id of the run's requests (its id), set by :func:`run_journey`
        unless the site turns ``traceparent`` off."""
        self.site = plan.site
        self.check = plan.check
        self.location = plan.location
        self.epoch_ms = wall_ns // 1_000_000
        self._wall_ns = wall_ns

    @property
    def now(self) -> str:
        return utc_iso_ns(self._wall_ns)

    @property
    def date(self) -> str:
        return utc_date(self._wall_ns // 1_000_000_000)


async def run_journey(plan: JourneyPlan) -> JourneyResult:
    """Run every step of ``plan`` once and return the typed result. Never raises, except
    ``CancelledError``: what the bank or the network does becomes an outcome, and so does
    an internal error (outcome ``error``)."""
    wall_ns = time.time_ns()
    started = perf_counter()
    run = RunInfo(plan, wall_ns)
    if plan.traceparent:
        run.trace_id = run.id
    values: dict[str, Any] = {**plan.values, "run": run}
    redact = Redactor(plan.secrets)
    results: list[StepResult] = []
    try:
        await _run_steps(plan, values, redact, run, results)
    except Exception as exc:  # noqa: BLE001 - a bug outside any step (opening the session…)
        _log_internal(f"check {plan.site}/{plan.check}", exc, redact)
        results.append(StepResult(name="", outcome=Outcome.ERROR, error=_internal(exc, ""), started_at_ns=wall_ns))
    duration_ms = (perf_counter() - started) * 1000.0
    return journey_result(plan, results, wall_ns, duration_ms, run.id, trace_id=run.trace_id)


def _internal(exc: BaseException, step: str) -> str:
    """The error string of an internal error: the class and where, never its message
    (which may quote a value from the answer)."""
    where = f" in step {step}" if step else ""
    return f"error: internal {type(exc).__name__}{where}"


def _log_internal(where: str, exc: BaseException, redact: Redactor) -> None:
    """Log an unexpected exception by class; its traceback (which quotes the exception's
    text, possibly a URL or a value) only at debug level, and redacted."""
    log.warning("%s raised %s", where, type(exc).__name__)
    if log.isEnabledFor(logging.DEBUG):
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-20))
        log.debug("traceback of %s:\n%s", where, redact(trace))


class _StepContext:
    """What a step works with: the run's session, plan, values, redactor and run values,
    and the step being run with its time budget.

    One per run, re-aimed at each step by :meth:`aim` rather than made anew: the step
    functions take it instead of the same eight arguments, at no allocation per step.
    """

    __slots__ = ("session", "plan", "values", "redact", "run", "step", "budget", "cut_by_journey")

    step: StepPlan
    budget: float
    """Seconds the step may take: its timeout, cut to what is left of the journey's."""
    cut_by_journey: bool
    """Whether ``budget`` is what is left of the journey's rather than the step's own timeout."""

    def __init__(
        self, session: aiohttp.ClientSession, plan: JourneyPlan, values: dict[str, Any], redact: Redactor,
        run: RunInfo,
    ) -> None:
        self.session = session
        self.plan = plan
        self.values = values
        self.redact = redact
        self.run = run

    def aim(self, step: StepPlan, budget: float, cut_by_journey: bool) -> None:
        """Point the context at the next step."""
        self.step = step
        self.budget = budget
        self.cut_by_journey = cut_by_journey

    def skipped(self, exc: UndefinedValue) -> StepResult:
        """The step cannot run: a template names a value no earlier step extracted."""
        return _not_run(self.step, f"skipped: needs a value no earlier step extracted ({exc})")


async def _run_steps(
    plan: JourneyPlan, values: dict[str, Any], redact: Redactor, run: RunInfo, results: list[StepResult]
) -> None:
    """Run the steps of ``plan``, appending each one's result to ``results``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + plan.timeout
    failure: StepResult | None = None
    async with open_session(plan.ssl_context) as session:
        ctx = _StepContext(session, plan, values, redact, run)
        for step in plan.steps:
            if failure is not None and not step.always_run:
                results.append(_not_run(step, f"skipped: step {failure.name} failed"))
                continue
            left = deadline - loop.time()
            if step.always_run:
                budget, cut_by_journey = step.timeout, False
            else:
                budget, cut_by_journey = min(step.timeout, max(left, 0.0)), left < step.timeout
            if budget <= 0:
                result = _not_run(step, f"timeout: journey budget of {plan.timeout:g}s spent", Outcome.TIMEOUT)
            else:
                step_started = time.time_ns()
                ctx.aim(step, budget, cut_by_journey)
                try:
                    result = await (_run_token_step(ctx) if step.oauth is not None else _run_step(ctx))
                except Exception as exc:  # noqa: BLE001 - a bug becomes this step's outcome
                    _log_internal(f"check {plan.site}/{plan.check} step {step.name}", exc, redact)
                    result = _not_run(step, _internal(exc, step.name), Outcome.ERROR, started_at_ns=step_started)
            results.append(result)
            if result.outcome is Outcome.AUTH:
                _forget_tokens(plan, values)
            if failure is None and result.outcome not in (Outcome.OK, Outcome.SKIPPED):
                failure = result


def _forget_tokens(plan: JourneyPlan, values: dict[str, Any]) -> None:
    """After a refusal, the journey's cached access tokens are not trusted any more: a
    bank may revoke one before it expires. The next run asks for new ones."""
    for step in plan.steps:
        if step.oauth is not None:
            try:
                step.oauth.cache.forget(step.oauth.client(values))
            except UndefinedValue:
                continue


def _not_run(
    step: StepPlan, reason: str, outcome: Outcome = Outcome.SKIPPED, started_at_ns: int | None = None
) -> StepResult:
    return StepResult(name=step.name, outcome=outcome, error=reason, always_run=step.always_run,
                      started_at_ns=time.time_ns() if started_at_ns is None else started_at_ns)


@dataclass(slots=True)
class _Request:
    """A step's request as rendered from its templates, before aiohttp sees it."""

    method: str
    url: str
    query: dict[str, str]
    headers: dict[str, str]
    body_kind: str | None
    body: Any
    token: TokenRequest | None = None


def _render(step: StepPlan, values: dict[str, Any], run: RunInfo) -> _Request:
    headers = dict(step.headers(values))
    if step.idempotency_header and not any(k.lower() == step.idempotency_header.lower() for k in headers):
        headers[step.idempotency_header] = f"{run.id}-{step.index}"
    return _Request(
        method=step.method,
        url=step.url(values),
        query=step.query(values),
        headers=headers,
        body_kind=step.body_kind,
        body=step.body(values) if step.body is not None else None,
    )


async def _run_token_step(ctx: _StepContext) -> StepResult:
    """A token step: the cached access token when it is still good, else a token
    request, one at a time per client (a refresh token is never sent twice)."""
    step, values, redact = ctx.step, ctx.values, ctx.redact
    oauth = step.oauth
    assert oauth is not None
    try:
        client = oauth.client(values)
    except UndefinedValue as exc:
        return ctx.skipped(exc)
    lock, waiting_since = oauth.cache.lock(client), perf_counter()
    try:
        async with asyncio.timeout(ctx.budget):  # another journey's token request is bounded too
            await lock.acquire()
    except TimeoutError:
        return _not_run(step, f"timeout: another run of this client's token request took over {ctx.budget:g}s",
                        Outcome.TIMEOUT)
    try:
        ctx.budget -= perf_counter() - waiting_since
        if (token := oauth.cached(client)) is not None:
            redact.add(token)
            values[oauth.into] = token
            return StepResult(name=step.name, outcome=Outcome.OK, reused=True, always_run=step.always_run,
                              started_at_ns=time.time_ns())
        try:
            token_request = oauth.request(client, values)
        except ReportableError as exc:
            return StepResult(name=step.name, outcome=Outcome.ERROR, error=redact(f"error: {exc}"),
                              always_run=step.always_run, started_at_ns=time.time_ns())
        for secret in token_request.secrets:
            redact.add(secret)
        try:
            headers = {**step.headers(values), **token_request.headers}  # site and step headers too
        except UndefinedValue as exc:
            return ctx.skipped(exc)
        request = _Request("POST", token_request.url, {}, headers, "form", token_request.form, token_request)
        return await _run_step(ctx, request)
    finally:
        lock.release()


async def _run_step(ctx: _StepContext, request: _Request | None = None) -> StepResult:
    """The step: its request rendered (unless given), sent once or polled until its
    expectations hold, judged, and its result completed (attempts, timing, redaction)."""
    step, budget = ctx.step, ctx.budget
    if request is None:
        try:
            request = _render(step, ctx.values, ctx.run)
        except UndefinedValue as exc:
            return ctx.skipped(exc)
    wall_ns = time.time_ns()
    started = perf_counter()
    step_deadline = started + budget
    attempts = 0
    while True:
        attempts += 1
        if attempts > 1 and step.fresh_headers is not None:
            request.headers.update(step.fresh_headers(ctx.values))  # a new X-Request-ID per attempt
        options = _request_options(ctx, request)
        attempt, response = await _send_timed(ctx, request, options, max(step_deadline - perf_counter(), 0.0))
        if response is not None:
            _judge(ctx, response, attempt)
        polling_again = (
            attempt.outcome is Outcome.ASSERTION
            and attempts < step.poll_attempts
            and perf_counter() + step.poll_interval < step_deadline
        )
        if not polling_again:
            break
        await asyncio.sleep(step.poll_interval)
    if request.token is not None and response is not None:
        _settle_token(ctx, request.token, response, attempt)
    error = attempt.error
    if attempt.outcome is Outcome.TIMEOUT:
        scope = f"journey timeout {ctx.plan.timeout:g}s" if ctx.cut_by_journey else f"step timeout {budget:g}s"
        error = f"timeout: no complete answer within {budget:.3g}s ({scope})"
    return StepResult(
        name=step.name,
        outcome=attempt.outcome,
        duration_ms=(perf_counter() - started) * 1000.0 if attempts > 1 else attempt.duration_ms,
        phases=attempt.phases,
        http_status=attempt.http_status,
        bytes=attempt.bytes,
        error=ctx.redact(error),
        always_run=step.always_run,
        attempts=attempts,
        started_at_ns=wall_ns,
        certificate=attempt.certificate,
    )


class _Attempt:
    """What one attempt of a step gave, judged in place (outcome and error) before the
    step's :class:`~prober.results.StepResult` is built from it, once."""

    __slots__ = ("outcome", "error", "duration_ms", "phases", "http_status", "bytes", "certificate")

    def __init__(self, outcome: Outcome, error: str, clock: PhaseClock, status: int | None, received: int) -> None:
        self.outcome = outcome
        self.error = error
        self.duration_ms = (clock.end - clock.start) * 1000.0
        self.phases = clock.phases()
        self.http_status = status
        self.bytes = received
        self.certificate = clock.certificate

    def fail(self, outcome: Outcome, error: str) -> None:
        self.outcome = outcome
        self.error = error


def _request_options(ctx: _StepContext, request: _Request) -> dict[str, Any]:
    """aiohttp's options for ``request``: query, headers, the encoded body, the TLS
    server name, and the middlewares each hop goes through."""
    step = ctx.step
    options: dict[str, Any] = {
        "params": request.query or None,
        "headers": request.headers,
        "allow_redirects": step.follow_redirects,
    }
    if request.body_kind == "json":
        options["json"] = request.body
    elif request.body_kind == "form":
        options["data"] = _form_body(request.body, request.headers)
    elif request.body_kind is not None:
        options["data"] = request.body
    if step.server_name and request.url.startswith("https://"):
        options["server_hostname"] = step.server_name
    if middlewares := _middlewares(ctx, request):
        options["middlewares"] = middlewares
    return options


def _middlewares(ctx: _StepContext, request: _Request) -> tuple[Middleware, ...]:
    """What each hop of ``request`` goes through, in order: its ``traceparent`` (a new
    span per hop), a fresh ``uuid()`` header per redirect hop and the guard against
    re-sending a secret to another origin (one :class:`~prober.journey.hops.Hops`), then
    the signature (computed last, on the hop as it is sent)."""
    step = ctx.step
    trace_id = ctx.run.trace_id
    middlewares: tuple[Middleware, ...] = ()
    if step.follow_redirects:
        middlewares = (Hops(trace_id, step.fresh_headers, ctx.values, lambda: _secrets_in(request, ctx.redact)),)
    elif trace_id:
        middlewares = (Hops(trace_id, None, ctx.values, None),)
    if step.signer is not None:
        middlewares += (signing_middleware(step.signer),)
    return middlewares


async def _send_timed(
    ctx: _StepContext, request: _Request, options: dict[str, Any], budget: float
) -> tuple[_Attempt, Response | None]:
    """Send ``request`` within ``budget`` seconds and read its answer, timing each phase;
    a failure becomes the outcome it stands for (:func:`~prober.journey.failures.classify`)."""
    step = ctx.step
    clock = PhaseClock()
    token = bind_clock(clock)
    reader = BodyReader(step.max_body)
    status: int | None = None
    clock.start = perf_counter()
    try:
        async with asyncio.timeout(budget):
            async with ctx.session.request(request.method, request.url, **options) as resp:
                clock.headers = perf_counter()  # the last hop's headers are in
                status = resp.status
                body = await reader.read(resp)
                clock.end = perf_counter()
                cookies = {name: morsel.value for name, morsel in resp.cookies.items()}
                response = Response(resp.status, resp.headers, body, cookies)
    except Exception as exc:  # noqa: BLE001 - every failure becomes an outcome
        clock.end = perf_counter()
        outcome, error = classify(exc)
        if outcome is Outcome.ERROR and not isinstance(exc, aiohttp.ClientError | ReportableError):
            _log_internal(f"step {step.name}", exc, ctx.redact)
        # Headers may have come before the failure (a body cut short, too large, too slow):
        # the status and the bytes that did arrive are part of what happened.
        return _Attempt(outcome, error, clock, status, reader.received), None
    finally:
        unbind_clock(token)
    return _Attempt(Outcome.OK, "", clock, response.status, reader.received), response


def _form_body(form: dict[str, Any], headers: dict[str, str]) -> bytes:
    """The bytes aiohttp's ``FormData`` sends for a flat form (``urlencode``, UTF-8), built
    directly: going through ``FormData`` cost about as much again per request. Sets the
    form's content type unless the step gives one."""
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = FORM_CONTENT_TYPE
    return urlencode(form, doseq=True).encode()


def _secrets_in(request: _Request, redact: Redactor) -> tuple[tuple[str, ...], bool]:
    """The headers of ``request`` that hold a secret, and whether its body holds one:
    what must not follow a redirect to another origin beyond what aiohttp already drops
    (see :mod:`prober.journey.redirects`)."""
    headers = tuple(name for name, value in request.headers.items() if redact.holds(value))
    body = request.body is not None and any(redact.holds(text) for text in _scalars(request.body))
    return headers, body


def _settle_token(ctx: _StepContext, request: TokenRequest, response: Response, attempt: _Attempt) -> None:
    """The end of a token request: the access token of an accepted answer goes into the
    step's value (the step fails when the answer holds none), a refresh token the bank
    rotated is kept whatever the step's verdict, a refusal names its RFC 6749 code."""
    oauth = ctx.step.oauth
    assert oauth is not None
    token = None
    if attempt.outcome is Outcome.OK:
        try:
            token = oauth.accept(request, response)
        except LookupError as exc:
            attempt.fail(Outcome.ASSERTION, f"assertion failed: {exc}")
    elif (code := refusal(response)) is not None:
        attempt.fail(Outcome.AUTH, f"{attempt.error}: {code}")
        return
    try:
        oauth.keep_rotated(request, response)
    except ReportableError as exc:
        attempt.fail(Outcome.ERROR, f"error: {exc}")
        return
    if token is not None:
        ctx.values[oauth.into] = token


def _judge(ctx: _StepContext, response: Response, attempt: _Attempt) -> None:
    """Status, then content, then extraction, then the latency budget: ``attempt`` judged.

    Every secret the answer holds is known to the redactor before an assertion's
    message could quote it: the tokens of a token request's answer as it arrives,
    values extracted as secret before the assertions run, and the tokens of any other
    answer shaped like a token answer (a JSON login) before a failure is described.
    """
    step, values, redact = ctx.step, ctx.values, ctx.redact
    if step.token_request:
        _learn_tokens(response, redact)
    if not step.accepts(response.status):
        expected = "2xx" if step.statuses is None else "/".join(str(s) for s in sorted(step.statuses))
        attempt.fail(status_outcome(response.status), f"HTTP {response.status} (expected {expected})")
        return
    taken: dict[str, Any] = {}
    missing = ""
    for extract in step.extracts:
        try:
            value = extract.take(response)
        except LookupError as exc:
            missing = missing or str(exc)
            continue
        if extract.secret:
            for text in _scalars(value):
                redact.add(text)
        taken[extract.name] = value
    for assertion in step.assertions:
        if (problem := assertion.check(response, values, redact)) is not None:
            if not step.token_request and _learn_tokens(response, redact):
                problem = assertion.check(response, values, redact) or problem
            attempt.fail(Outcome.ASSERTION, f"assertion failed: {problem}")
            return
    if missing:
        attempt.fail(Outcome.ASSERTION, missing)
        return
    values.update(taken)
    if step.max_duration is not None and attempt.duration_ms > step.max_duration * 1000.0:
        attempt.fail(Outcome.SLOW,
                     f"slow: {attempt.duration_ms:.0f} ms over the {step.max_duration * 1000.0:.0f} ms budget")


def _learn_tokens(response: Response, redact: Redactor) -> bool:
    """Make the tokens of a token answer known to the redactor; whether it held any."""
    found = tokens_in(response)
    for token in found:
        redact.add(token)
    return bool(found)


def _scalars(value: Any) -> list[str]:
    """A value as the strings it may be quoted as: itself when a string, each of its
    scalars when an object or an array (a secret extracted from JSON, a request body)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int | float):
        return [str(value)]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return [text for item in items for text in _scalars(item)]
