"""Expectations and extractions on a page, retried while the page renders.

A page is not an answer that arrives once: its scripts fill it in. Expectations are
therefore tried again (every 50 ms, then up to every 250 ms) until all of them hold or
the step's time is up, when the last failure is the step's (outcome ``assertion``).
Texts are read as the customer sees them (``innerText`` of the first matching element,
which must be visible, whitespace collapsed); numbers
from the first number in the text (:func:`parse_number`). Every value quoted in a
message is redacted, then cut to 60 characters, as for API steps.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from prober.journey.browser.plan import PageCheck, PageValue
from prober.journey.checks import shorten
from prober.redact import Redactor

_NUMBER = re.compile(r"[-+\u2212]?\d[\d\s.,'\u2019\u00a0\u202f]*")
_GROUPING = re.compile(r"[\s'\u2019\u00a0\u202f]")
_OPS = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}
FIRST_POLL, LAST_POLL = 0.05, 0.25


def parse_number(text: str) -> float | None:
    """The first number in ``text``: ``1,523.47 EUR`` → 1523.47, ``1 523,47 €`` → 1523.47,
    ``-0.00`` → -0.0. Of ``.`` and ``,``, the last one is the decimal separator unless
    exactly three digits follow it and it is the only one of its kind (``1,523``)."""
    match = _NUMBER.search(text)
    if match is None:
        return None
    raw = _GROUPING.sub("", match.group(0).rstrip(".,")).replace("\u2212", "-")
    last = max(raw.rfind("."), raw.rfind(","))
    if last >= 0:
        tail = raw[last + 1:]
        separator = raw[last]
        grouping_only = len(tail) == 3 and raw.count(separator) == 1 and ("." if separator == "," else ",") not in raw
        if grouping_only or raw.count(separator) > 1:
            raw = raw.replace(".", "").replace(",", "")
        else:
            raw = raw[:last].replace(".", "").replace(",", "") + "." + tail
    try:
        return float(raw)
    except ValueError:
        return None


def normalise(text: str) -> str:
    return " ".join(text.split())


async def _read(page: Any, spec: Any) -> tuple[str | None, int | None, str]:
    """``(text, count, what)`` of an expectation's or extraction's source; ``text`` is
    None when there is no element to read."""
    if spec.selector is None:
        if spec.title:
            return normalise(await page.title()), None, "title"
        return page.url, None, "url"
    locator = page.locator(spec.selector)
    count = await locator.count()
    if count == 0:
        return None, 0, "no element matches"
    first = locator.first
    if not await first.is_visible():
        return None, count, "not visible (the first element it matches)"
    if spec.attribute is not None:
        value = await first.get_attribute(spec.attribute, timeout=1000)
        return value, count, f"no attribute {spec.attribute}"
    return normalise(await first.inner_text(timeout=1000)), count, ""


async def check_page(page: Any, check: PageCheck, values: Mapping[str, Any], redact: Redactor) -> str | None:
    """None when ``check`` holds now, else what is wrong (values redacted and cut)."""
    spec, label = check.spec, check.label
    text, count, missing = await _read(page, spec)
    if spec.exists is not None:
        if (bool(count)) != spec.exists:
            return f"{label}: expected {'present' if spec.exists else 'absent'}, got {count} element(s)"
        if not spec.exists:
            return None
    if spec.count is not None and count != spec.count:
        return f"{label}: expected {spec.count} element(s), got {count}"
    if spec.min_count is not None and (count or 0) < spec.min_count:
        return f"{label}: expected at least {spec.min_count} element(s), got {count}"
    equals, not_equals, contains = check.expected(values)
    compares = (equals, not_equals, contains, spec.matches, spec.gt, spec.ge, spec.lt, spec.le)
    if all(c is None for c in compares):
        return None
    if text is None:
        return f"{label}: {missing}"
    return _text_problem(check, text, equals, not_equals, contains, redact)


def _text_problem(
    check: PageCheck, text: str, equals: str | None, not_equals: str | None, contains: str | None, redact: Redactor,
) -> str | None:
    """None when the element's ``text`` compares as ``check`` says, else what is wrong."""
    spec, label = check.spec, check.label
    shown = shorten(text, redact)
    if equals is not None and text != equals:
        return f"{label}: expected {shorten(equals, redact)!r}, got {shown!r}"
    if not_equals is not None and text == not_equals:
        return f"{label}: expected anything but {shorten(not_equals, redact)!r}, got it"
    if contains is not None and contains not in text:
        return f"{label}: expected to contain {shorten(contains, redact)!r}, got {shown!r}"
    if check.pattern is not None and not check.pattern.search(text):
        return f"{label}: expected to match /{check.pattern.pattern}/, got {shown!r}"
    bounds = ((">", spec.gt), (">=", spec.ge), ("<", spec.lt), ("<=", spec.le))
    if any(bound is not None for _, bound in bounds):
        number = parse_number(text)
        if number is None:
            return f"{label}: expected a number, got {shown!r}"
        for op, bound in bounds:
            if bound is not None and not _OPS[op](number, bound):
                return f"{label}: expected {op} {bound:g}, got {shown!r}"
    return None


async def check_until(
    page: Any, checks: tuple[PageCheck, ...], values: Mapping[str, Any], redact: Redactor, deadline: float
) -> str | None:
    """Try every expectation until all hold (None) or ``deadline`` (loop time) passes
    (the last problem). A page that navigates meanwhile is read again at the next try."""
    loop = asyncio.get_running_loop()
    delay = FIRST_POLL
    while True:
        problem = None
        for check in checks:
            try:
                problem = await check_page(page, check, values, redact)
            except Exception as exc:  # noqa: BLE001 - read during a navigation: try again
                if type(exc).__name__ not in ("Error", "TimeoutError"):
                    raise
                problem = f"{check.label}: the page changed while it was read"
            if problem is not None:
                break
        if problem is None:
            return None
        if loop.time() + delay >= deadline:
            return problem
        await asyncio.sleep(delay)
        delay = min(delay * 2, LAST_POLL)


async def take_values(page: Any, extracts: tuple[PageValue, ...]) -> tuple[dict[str, str], str]:
    """The values of ``extracts``; and the first one that could not be taken, as a message."""
    taken: dict[str, str] = {}
    for extract in extracts:
        text, _count, missing = await _read(page, extract.spec)
        if text is not None and extract.pattern is not None:
            match = extract.pattern.search(text)
            text = (match.group(1) if match.re.groups else match.group(0)) if match else None
            missing = f"regex /{extract.pattern.pattern}/ found nothing"
        if text is None:
            return taken, f"extract {extract.name}: {missing}"
        taken[extract.name] = text
    return taken, ""
