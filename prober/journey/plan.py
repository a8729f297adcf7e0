"""Compile the configuration into journey plans, once, at load.

Everything that does not change from run to run is done here: templates compiled, JSON
paths and regexes compiled, URLs joined, SSL contexts built (loading a CA bundle costs
milliseconds), idempotency needs decided. Rules that need the whole tree are checked
here too, each problem reported with its field path: duplicate names, and templates that
use a value no earlier step extracts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prober.config.errors import ConfigError
from prober.config.model import Check, Config, Site, Step, needs_idempotency_key
from prober.config.signing import SigningConfig
from prober.journey.browser.plan import BrowserJourney, BrowserSource, compile_browser_check
from prober.journey.checks import CompiledAssertion, CompiledExtract
from prober.journey.oauth import OAuthPlan, template_names
from prober.journey.signing import KeyFileError, Signer, build_signer
from prober.journey.templating import (
    Renderer,
    TemplateError,
    compile_value,
    fresh_per_use,
    unknown_name_problems,
)
from prober.journey.tokens import TokenCache
from prober.results import Kind

if TYPE_CHECKING:
    import ssl

RUN_NAMES = frozenset({"run", "uuid"})
"""Names every template may use: per-run values and a fresh-uuid function."""


@dataclass(slots=True, frozen=True)
class StepPlan:
    """A step ready to run."""

    name: str
    index: int
    method: str
    url: Renderer
    query: Renderer
    headers: Renderer
    body_kind: str | None
    body: Renderer | None
    statuses: frozenset[int] | None
    assertions: tuple[CompiledAssertion, ...]
    extracts: tuple[CompiledExtract, ...]
    max_duration: float | None
    timeout: float
    max_body: int
    """Largest response body read, in bytes after decompression."""
    always_run: bool
    follow_redirects: bool
    poll_attempts: int
    poll_interval: float
    idempotency_header: str | None
    """Set when the step must carry an idempotency key (mutating check, unsafe method)."""
    server_name: str | None = None
    """``[sites.tls] server_name``: the name sent as SNI and matched against the
    certificate of https requests, instead of the URL's host."""
    signer: Signer | None = None
    """Signs each request of the step just before it is sent (site or step ``signing``)."""
    oauth: OAuthPlan | None = None
    """Set for a token step (``oauth``): the runner asks it for the request."""
    token_request: bool = False
    """An OAuth2 token request (``oauth``, or a ``form`` with a ``grant_type``): the
    tokens of its answer are secret as soon as it arrives."""
    fresh_headers: Renderer | None = None
    """The headers whose templates give a new value at each use (``{{ uuid() }}``):
    rendered again for each request sent after the first, every poll attempt and
    redirect hop, so that an ``X-Request-ID`` is unique per request. None: none such."""

    def accepts(self, status: int) -> bool:
        return 200 <= status < 300 if self.statuses is None else status in self.statuses


@dataclass(slots=True, frozen=True)
class JourneyPlan:
    """A check of a site, ready to run as many times as the schedule asks."""

    site: str
    check: str
    kind: Kind
    location: str
    interval: float
    timeout: float
    mutating: bool
    steps: tuple[StepPlan, ...]
    ssl_context: ssl.SSLContext | bool
    values: dict[str, Any]
    secrets: tuple[str, ...]
    max_duration: float | None = None
    """The journey's latency budget (seconds): over it, a run whose steps all passed is ``slow``."""
    tags: tuple[tuple[str, str], ...] = ()
    """The check's own tags, sorted by name."""
    traceparent: bool = True
    """Every request carries a W3C ``traceparent`` (:mod:`prober.journey.tracecontext`)."""
    browser: BrowserJourney | None = None
    """A browser check's journey (its ``steps`` are then empty): run by the browser
    runner (:mod:`prober.journey.browser`), not by HTTP."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.site, self.check)


def build_ssl_context(site: Site) -> ssl.SSLContext | bool:
    """The TLS setting of a site's connections, used for every ``https://`` request the
    site's steps make, whatever the scheme of its ``base_url`` (a step's own ``url`` may
    be https on an http site). ``True`` is aiohttp's shared verifying context (nothing to
    load per site); ``False`` turns verification off (``verify = false``)."""
    tls = site.tls
    if not (tls.ca_file or tls.cert_file):
        return tls.verify
    import ssl  # only for sites with their own CA or client certificate (``validate`` need not load it)

    context = ssl.create_default_context(cafile=tls.ca_file)
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


def compile_config(config: Config, origin: dict[int, str] | None = None) -> list[JourneyPlan]:
    """Plans for every enabled check; raises :class:`ConfigError` listing every problem.

    ``origin`` maps a site's index to the file it came from, for messages.
    """
    problems: list[str] = []
    plans: list[JourneyPlan] = []
    tokens: TokenCache | None = None  # one per compiled config, shared by its token steps
    seen_sites: set[str] = set()
    for si, site in enumerate(config.sites):
        where = f"{(origin or {}).get(si, '<config>')}: sites[{site.name}]"
        if site.name in seen_sites:
            problems.append(f"{where}.name: duplicate site name {site.name!r}")
        seen_sites.add(site.name)
        overlap = set(site.vars) & set(site.secrets)
        for name in sorted(overlap):
            problems.append(f"{where}: {name!r} is defined in both vars and secrets")
        try:
            context = build_ssl_context(site)
        except OSError as exc:  # ssl.SSLError included
            problems.append(f"{where}.tls: cannot load certificate or key: {getattr(exc, 'strerror', None) or exc}")
            context = False
        site_signer = _build_signer(site.signing, f"{where}.signing", problems)
        tokens = tokens or TokenCache(config.daemon.state_dir)
        seen_checks: set[str] = set()
        for check in site.checks:
            check_where = f"{where}.checks[{check.name}]"
            if check.name in seen_checks:
                problems.append(f"{check_where}.name: duplicate check name {check.name!r} in site {site.name!r}")
            seen_checks.add(check.name)
            if check.is_browser:
                plan = _compile_browser(config, site, check, check_where, problems)
            else:
                plan = _compile_check(config, site, check, context, check_where, problems, site_signer, tokens)
            if plan is not None and check.enabled:
                plans.append(plan)
    if problems:
        raise ConfigError(problems)
    return plans


def _build_signer(config: SigningConfig | None, where: str, problems: list[str]) -> Signer | None:
    """The signer of a ``signing`` section; a key or certificate that does not load is a
    problem naming the field and the file."""
    if config is None:
        return None
    try:
        return build_signer(config)
    except KeyFileError as exc:
        problems.append(f"{where}.{exc.field}: {exc}")
        return None


def _compile_check(
    config: Config, site: Site, check: Check, context: ssl.SSLContext | bool, where: str, problems: list[str],
    site_signer: Signer | None = None, tokens: TokenCache | None = None,
) -> JourneyPlan | None:
    static = set(site.vars) | set(site.secrets) | RUN_NAMES
    extracted: set[str] = set()
    step_names: set[str] = set()
    steps: list[StepPlan] = []
    start = len(problems)
    for index, step in enumerate(check.api_steps):
        step_where = f"{where}.steps[{step.name}]"
        if step.group is not None:
            step_where += f" (from step_groups.{step.group})"
        if step.name in step_names:
            problems.append(f"{step_where}.name: duplicate step name {step.name!r}")
        step_names.add(step.name)
        _check_references(step, site.headers, static | extracted, step_where, problems)
        for name in step.extract:
            if name in static:
                problems.append(f"{step_where}.extract.{name}: {name!r} is already a site var or secret")
        extracted |= set(step.extract)
        oauth = _build_oauth(site, step, static | extracted, tokens, step_where, problems)
        if step.oauth is not None:
            extracted.add(step.oauth.into)
        if step.signing:
            signer = _build_signer(step.signing, f"{step_where}.signing", problems)
        else:  # token endpoints are outside the signed API unless a step says otherwise
            signer = site_signer if step.sign and step.oauth is None else None
        if len(problems) == start:
            steps.append(_compile_step(site, check, step, index, signer, oauth))
    if len(problems) != start:
        return None
    values: dict[str, Any] = dict(site.vars)
    values.update({k: v.get_secret_value() for k, v in site.secrets.items()})
    return JourneyPlan(
        site=site.name,
        check=check.name,
        kind=check.kind,
        location=config.location_of(site),
        interval=check.interval,
        timeout=check.timeout,
        mutating=check.is_mutating,
        steps=tuple(steps),
        ssl_context=context,
        values=values,
        secrets=tuple(v.get_secret_value() for v in site.secrets.values()),
        max_duration=check.max_duration,
        tags=tuple(sorted(check.tags.items())),
        traceparent=site.traceparent,
    )


def _compile_browser(config: Config, site: Site, check: Check, where: str, problems: list[str]) -> JourneyPlan | None:
    """The plan of a browser check (:mod:`prober.journey.browser.plan` compiles its steps)."""
    source = BrowserSource(site.model_copy(update={"checks": [check]}), check, config.location_of(site))
    return compile_browser_plan(source, where, problems)


def compile_browser_plan(source: BrowserSource, where: str, problems: list[str]) -> JourneyPlan | None:
    """The plan of the browser check ``source`` names, or None (and ``problems``); the
    browser process compiles the prober's plans again from their sources with it."""
    site, check = source.site, source.check
    journey = compile_browser_check(site, check, set(site.vars) | set(site.secrets) | RUN_NAMES, where, problems)
    if journey is None:
        return None
    values: dict[str, Any] = dict(site.vars)
    values.update({k: v.get_secret_value() for k, v in site.secrets.items()})
    return JourneyPlan(
        site=site.name, check=check.name, kind=check.kind, location=source.location,
        interval=check.interval, timeout=check.timeout, mutating=check.is_mutating, steps=(), ssl_context=False,
        values=values, secrets=tuple(v.get_secret_value() for v in site.secrets.values()),
        max_duration=check.max_duration, tags=tuple(sorted(check.tags.items())),
        browser=dataclasses.replace(journey, source=source),
    )


def _check_references(
    step: Step, site_headers: dict[str, str], known: set[str], where: str, problems: list[str]
) -> None:
    fields = {"path": step.path, "url": step.url, "query": step.query, "headers": step.headers,
              "json": step.json_body, "form": step.form, "body": step.body,
              "expect": [[a.equals, a.not_equals, a.contains] for a in step.expect]}
    fields["headers"] = _merge_headers(site_headers, step.headers)
    problems.extend(unknown_name_problems(fields, known, where))


def _build_oauth(
    site: Site, step: Step, known: set[str], tokens: TokenCache | None, where: str, problems: list[str]
) -> OAuthPlan | None:
    """The compiled token step, or None (and problems naming the fields)."""
    if step.oauth is None:
        return None
    try:
        used = template_names(step.oauth)
    except TemplateError as exc:
        problems.append(f"{where}.oauth: invalid template: {exc}")
        return None
    for name in sorted(used - known):
        problems.append(
            f"{where}.oauth: uses {{{{ {name} }}}}, which is not a site var or secret nor extracted by an earlier step"
        )
    try:
        return OAuthPlan.build(site.name, step.oauth, tokens or TokenCache(None))
    except KeyFileError as exc:
        problems.append(f"{where}.oauth.{exc.field}: {exc}")
        return None


def _compile_step(
    site: Site, check: Check, step: Step, index: int, signer: Signer | None = None, oauth: OAuthPlan | None = None
) -> StepPlan:
    url = step.url if step.url is not None else _join(site.base_url, step.path or "")
    if step.json_body is not None:
        body_kind, body = "json", compile_value(step.json_body)
    elif step.form is not None:
        body_kind, body = "form", compile_value(step.form)
    elif step.body is not None:
        body_kind, body = "raw", compile_value(step.body)
    else:
        body_kind, body = None, None
    needs_key = needs_idempotency_key(check, step)
    headers = _merge_headers(site.headers, step.headers)
    fresh = {name: value for name, value in headers.items() if fresh_per_use(value)}
    return StepPlan(
        name=step.name,
        index=index,
        method=step.method,
        url=compile_value(url),
        query=compile_value(step.query),
        headers=compile_value(headers),
        body_kind=body_kind,
        body=body,
        statuses=frozenset(step.status) if step.status else None,
        assertions=tuple(CompiledAssertion.build(a) for a in step.expect),
        extracts=tuple(CompiledExtract.build(n, e, step.is_token_request) for n, e in step.extract.items()),
        max_duration=step.max_duration,
        timeout=step.timeout or site.timeout,
        max_body=step.max_body or site.max_body,
        always_run=step.always_run,
        follow_redirects=step.follow_redirects,
        poll_attempts=step.poll.attempts if step.poll else 1,
        poll_interval=step.poll.interval if step.poll else 0.0,
        idempotency_header=check.idempotency_header if needs_key else None,
        server_name=site.tls.server_name,
        signer=signer,
        oauth=oauth,
        token_request=step.is_token_request,
        fresh_headers=compile_value(fresh) if fresh else None,
    )


def _merge_headers(site: dict[str, str], step: dict[str, str]) -> dict[str, str]:
    """Site headers, overridden by the step's (names compared without case)."""
    overridden = {name.lower() for name in step}
    merged = {k: v for k, v in site.items() if k.lower() not in overridden}
    merged.update(step)
    return merged


def _join(base: str, path: str) -> str:
    if not path:
        return base
    return base.rstrip("/") + "/" + path.lstrip("/")
