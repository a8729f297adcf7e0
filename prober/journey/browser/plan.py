"""Browser checks compiled once, at load: templates, patterns, origins, masks.

A browser check's :class:`~prober.journey.plan.JourneyPlan` has no HTTP steps; its
``browser`` field holds a :class:`BrowserJourney` instead, which the browser runner
(:mod:`prober.journey.browser.runner`) plays. Problems are reported with their field
paths, like those of API checks: a template naming a value no earlier step extracts, a
TLS setting Chromium cannot take.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from prober.config.browser import BrowserStep, PageAssertion, PageExtract, WaitFor
from prober.config.model import Check, Site
from prober.journey.checks import _SECRET_NAME
from prober.journey.templating import Renderer, compile_value, names_in, unknown_name_problems

PASSWORD_FIELDS = "input[type=password]"
"""Always masked in screenshots, whatever was typed in them."""


@dataclass(slots=True, frozen=True)
class PageCheck:
    """A compiled :class:`~prober.config.browser.PageAssertion`."""

    label: str
    spec: PageAssertion
    expected: Renderer
    """Renders ``[equals, not_equals, contains]`` (templates)."""
    pattern: re.Pattern[str] | None


@dataclass(slots=True, frozen=True)
class PageValue:
    """A compiled :class:`~prober.config.browser.PageExtract`."""

    name: str
    spec: PageExtract
    pattern: re.Pattern[str] | None
    secret: bool


@dataclass(slots=True, frozen=True)
class Field:
    """One element an action fills or selects: its selector, and the value's template."""

    selector: str
    value: Renderer
    secret: bool
    """The template uses a secret: masked in screenshots, scrubbed from traces."""


@dataclass(slots=True, frozen=True)
class BrowserStepPlan:
    """A browser step ready to run."""

    name: str
    action: str | None
    """``goto``, ``click``, ``fill``, ``press``, ``select``, ``check``, ``uncheck`` or None."""
    url: Renderer | None
    """``goto``: the URL (a path is joined to the site's ``base_url``)."""
    selector: str | None
    """``click``, ``check``, ``uncheck``, ``press`` with a selector: the element."""
    fields: tuple[Field, ...]
    """``fill`` and ``select``: each element and its value, in order."""
    key: Renderer | None
    """``press``: the key."""
    wait: WaitFor | None
    wait_text: Renderer | None
    expectations: tuple[PageCheck, ...]
    extracts: tuple[PageValue, ...]
    dialog: str | None
    timeout: float
    max_duration: float | None
    always_run: bool


@dataclass(frozen=True, slots=True)
class BrowserSource:
    """What a browser check's plan is compiled from: its site (with that one check), the
    check, and the location it runs from. The browser process receives this (a pickle;
    compiled templates are not) and compiles the same plan the prober did."""

    site: Site
    check: Check
    location: str


@dataclass(slots=True, frozen=True)
class BrowserJourney:
    """What a browser check needs besides the common plan: its steps and the context's settings."""

    base_url: str
    origins: frozenset[str]
    """Origins the journey's pages may be on: the site's and those of absolute ``goto``
    URLs. A navigation of the page to any other ends the step (outcome ``error``)."""
    ignore_https_errors: bool
    client_certificate: tuple[str, str | None] | None
    """``(cert_file, key_file)`` of ``[sites.tls]``, presented to the site's origin."""
    masks: tuple[str, ...]
    """Selectors masked in screenshots: password fields and every field filled with a secret."""
    steps: tuple[BrowserStepPlan, ...]
    source: BrowserSource | None = None
    """What the plan was compiled from, for the browser process to compile it again."""


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def compile_browser_check(
    site: Site, check: Check, known: set[str], where: str, problems: list[str]
) -> BrowserJourney | None:
    """The :class:`BrowserJourney` of a browser check, or None (and ``problems``)."""
    start = len(problems)
    if site.tls.ca_file:
        problems.append(f"{where}: browser checks cannot use [sites.tls] ca_file: Chromium trusts the system's "
                        "certificate store (add the CA there), or set verify = false for a test bank")
    secret_names = set(site.secrets)
    extracted: set[str] = set()
    seen: set[str] = set()
    steps: list[BrowserStepPlan] = []
    origins = {origin_of(site.base_url)}
    masks = [PASSWORD_FIELDS]
    for step in check.browser_steps:
        step_where = f"{where}.steps[{step.name}]"
        if step.group is not None:
            step_where += f" (from step_groups.{step.group})"
        if step.name in seen:
            problems.append(f"{step_where}.name: duplicate step name {step.name!r}")
        seen.add(step.name)
        _check_names(step, known | extracted, step_where, problems)
        for name in step.extract:
            if name in known:
                problems.append(f"{step_where}.extract.{name}: {name!r} is already a site var or secret")
        secret_names |= {n for n, e in step.extract.items() if _is_secret(n, e)}
        extracted |= set(step.extract)
        if step.goto is not None and "{{" not in step.goto and "://" in step.goto:
            origins.add(origin_of(step.goto))
        if len(problems) == start:
            plan = _compile_step(site, step, secret_names)
            masks.extend(f.selector for f in plan.fields if f.secret)
            steps.append(plan)
    if len(problems) != start:
        return None
    cert = (site.tls.cert_file, site.tls.key_file) if site.tls.cert_file else None
    return BrowserJourney(
        base_url=site.base_url, origins=frozenset(origins), ignore_https_errors=not site.tls.verify,
        client_certificate=cert, masks=tuple(dict.fromkeys(masks)), steps=tuple(steps),
    )


def _is_secret(name: str, spec: PageExtract) -> bool:
    return spec.secret if spec.secret is not None else bool(_SECRET_NAME.search(name))


def _check_names(step: BrowserStep, known: set[str], where: str, problems: list[str]) -> None:
    fields: dict[str, Any] = {
        "goto": step.goto, "fill": step.fill, "select": step.select,
        "press": step.press if isinstance(step.press, str) else step.press.key if step.press else None,
        "wait_for": step.wait_for.text if step.wait_for else None,
        "expect": [[a.equals, a.not_equals, a.contains] for a in step.expect],
    }
    problems.extend(unknown_name_problems(fields, known, where))


def _compile_step(site: Site, step: BrowserStep, secret_names: set[str]) -> BrowserStepPlan:
    fields = tuple(
        Field(selector, compile_value(value), bool(names_in(value) & secret_names))
        for selector, value in (step.fill or step.select or {}).items()
    )
    selector = step.click or step.check or step.uncheck
    key = None
    if isinstance(step.press, str):
        key = compile_value(step.press)
    elif step.press is not None:
        key, selector = compile_value(step.press.key), step.press.selector
    url = None
    if step.goto is not None:
        target = step.goto if "://" in step.goto else urljoin(site.base_url.rstrip("/") + "/", step.goto.lstrip("/"))
        url = compile_value(target)
    return BrowserStepPlan(
        name=step.name,
        action=step.action,
        url=url,
        selector=selector,
        fields=fields,
        key=key,
        wait=step.wait_for,
        wait_text=compile_value(step.wait_for.text) if step.wait_for and step.wait_for.text else None,
        expectations=tuple(_compile_assertion(a) for a in step.expect),
        extracts=tuple(PageValue(n, e, re.compile(e.regex) if e.regex else None, _is_secret(n, e))
                       for n, e in step.extract.items()),
        dialog=step.dialog,
        timeout=step.timeout or site.timeout,
        max_duration=step.max_duration,
        always_run=step.always_run,
    )


def _compile_assertion(spec: PageAssertion) -> PageCheck:
    if spec.selector is not None:
        label = f"{spec.selector} {spec.attribute}" if spec.attribute else spec.selector
    else:
        label = "title" if spec.title else "url"
    return PageCheck(
        label=spec.description or label,
        spec=spec,
        expected=compile_value([spec.equals, spec.not_equals, spec.contains]),
        pattern=re.compile(spec.matches) if spec.matches is not None else None,
    )
