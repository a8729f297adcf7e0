"""Browser steps: a journey through a bank's web pages, in a real Chromium.

A check whose steps are browser steps is a browser check. Each step does at most one
action, then waits, then judges and extracts, as an API step sends a request, then
judges and extracts::

    [[sites.checks.steps]]
    name = "login"
    goto = "/web/login"                                   # a path joined to base_url, or a URL
    fill = { "#username" = "{{ username }}", "#password" = "{{ password }}" }

    [[sites.checks.steps]]
    name = "submit"
    click = "button[type=submit]"
    wait_for = { url = "**/web/accounts" }
    expect = [ { selector = "#balance-acc-001", gt = 0, description = "closing balance" } ]
    extract = { holder = { selector = ".holder" } }

Actions (at most one per step): ``goto``, ``click``, ``fill`` (a table of selector →
value, filled in order), ``press`` (a key, or ``{ selector, key }``), ``select`` (a
table of selector → option value or label), ``check`` / ``uncheck`` (a checkbox).
``wait_for`` then waits for exactly one of ``selector`` (with ``state``), ``url`` (a
glob such as ``**/accounts``, or ``re:`` and a regular expression), ``text`` (visible
somewhere on the page) or ``load_state``. A step without an action or a wait has
expectations. Values are templates, as in API steps; a value using a secret is filled
without ever being written in clear into a trace.

Which model a step is (API or browser) is decided by its keys: a step with any of
:data:`BROWSER_KEYS`, or whose expectations or extractions read the page
(``selector``, ``title``), is a browser step.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, field_validator, model_validator

from prober.config.selectors import check_selector
from prober.config.types import STRICT, Duration, Timeout, exactly_one, valid_regex

ACTIONS = ("goto", "click", "fill", "press", "select", "check", "uncheck")
"""A browser step's action keys: at most one per step."""
BROWSER_KEYS = frozenset({*ACTIONS, "wait_for", "dialog"})
"""Keys that only browser steps have."""
PAGE_SOURCES = frozenset({"selector", "title"})
"""Keys of an expectation or extraction that read the page (never an API answer)."""


def _selector(value: str | None) -> str | None:
    return None if value is None else check_selector(value)


def _selectors(value: dict[str, str] | None) -> dict[str, str] | None:
    for selector in value or {}:
        check_selector(selector)
    if value is not None and not value:
        raise ValueError("needs at least one selector = value")
    return value


class Press(BaseModel):
    """``press = { selector = "#amount", key = "Enter" }``: a key pressed in an element
    (``press = "Enter"`` presses it wherever the focus is)."""

    model_config = STRICT

    key: str = Field(min_length=1)
    selector: str | None = None

    check_selector = field_validator("selector")(_selector)


class WaitFor(BaseModel):
    """What a step waits for after its action: exactly one of ``selector`` (in
    ``state``, default visible), ``url`` (a glob, or ``re:`` + a regular expression, of
    the page's URL), ``text`` (visible text anywhere on the page), ``load_state``."""

    model_config = STRICT

    selector: str | None = None
    state: Literal["visible", "attached", "hidden", "detached"] = "visible"
    url: str | None = None
    text: str | None = None
    load_state: Literal["load", "domcontentloaded", "networkidle"] | None = None

    check_selector = field_validator("selector")(_selector)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("re:"):
            valid_regex(value[3:])
        return value

    @model_validator(mode="after")
    def _shape(self) -> WaitFor:
        exactly_one(self, ("selector", "url", "text", "load_state"), "wait_for")
        if self.state != "visible" and self.selector is None:
            raise ValueError("`state` applies to wait_for.selector only")
        return self


_COMPARATORS = ("equals", "not_equals", "gt", "ge", "lt", "le", "matches", "contains", "exists", "count", "min_count")


class PageAssertion(BaseModel):
    """One expectation on the page: exactly one source, ``selector`` (the text of the
    first element it matches, or its ``attribute``), ``title = true`` or ``url = true``;
    one or more of ``equals``, ``not_equals``, ``contains``, ``matches`` (regex),
    ``gt``/``ge``/``lt``/``le`` (the first number in the text: ``1,523.47 EUR`` is
    1523.47, ``1 523,47 €`` too), and for a selector ``exists`` and ``count`` /
    ``min_count`` (how many elements match). Expectations are retried until they hold
    or the step's time is up (a page renders as its scripts run)."""

    model_config = STRICT

    selector: str | None = None
    title: bool = False
    url: bool = False
    attribute: str | None = None
    equals: str | None = None
    not_equals: str | None = None
    contains: str | None = None
    matches: str | None = None
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    exists: bool | None = None
    count: int | None = Field(default=None, ge=0)
    min_count: int | None = Field(default=None, ge=0)
    description: str | None = None

    check_selector = field_validator("selector")(_selector)
    check_matches = field_validator("matches")(valid_regex)

    @field_validator("gt", "ge", "lt", "le", mode="before")
    @classmethod
    def _int_is_number(cls, value: object) -> object:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _shape(self) -> PageAssertion:
        exactly_one(self, ("selector", "title", "url"), "an expectation")
        if not any(getattr(self, c) is not None for c in _COMPARATORS):
            raise ValueError("an expectation needs at least one of " + ", ".join(_COMPARATORS))
        if self.selector is None:
            wrong = [f for f in ("attribute", "exists", "count", "min_count") if getattr(self, f) is not None]
            if wrong:
                raise ValueError(f"`{wrong[0]}` applies to a `selector` expectation only")
        return self


class PageExtract(BaseModel):
    """A value taken from the page for later steps: exactly one of ``selector`` (the
    text of the first element, or its ``attribute``), ``title = true``, ``url = true``;
    ``regex`` keeps its first group (or the whole match). ``secret`` as in API steps."""

    model_config = STRICT

    selector: str | None = None
    title: bool = False
    url: bool = False
    attribute: str | None = None
    regex: str | None = None
    secret: bool | None = None

    check_selector = field_validator("selector")(_selector)
    check_regex = field_validator("regex")(valid_regex)

    @model_validator(mode="after")
    def _shape(self) -> PageExtract:
        exactly_one(self, ("selector", "title", "url"), "an extraction")
        if self.attribute is not None and self.selector is None:
            raise ValueError("`attribute` applies to a `selector` extraction only")
        return self


class BrowserStep(BaseModel):
    """One step of a browser journey: an action, a wait, expectations, extractions."""

    model_config = STRICT

    name: str
    goto: str | None = None
    click: str | None = None
    fill: dict[str, str] | None = None
    press: str | Press | None = None
    select: dict[str, str] | None = None
    check: str | None = None
    uncheck: str | None = None
    wait_for: WaitFor | None = None
    expect: list[PageAssertion] = Field(default_factory=list)
    extract: dict[str, PageExtract] = Field(default_factory=dict)
    dialog: Literal["accept", "dismiss"] | None = None
    """A dialog (alert, confirm, prompt) this step expects and how to answer it; without
    it a dialog fails the step (outcome ``error``)."""
    timeout: Timeout | None = None
    """Cap for this step; defaults to the site's ``timeout``."""
    max_duration: Duration | None = None
    """Latency budget: a slower step fails with outcome ``slow``."""
    always_run: bool = False
    """Cleanup step: runs even when an earlier step failed or the journey timed out."""
    _group: str | None = PrivateAttr(default=None)
    """The step group this step was included from, if any (for messages)."""

    check_click = field_validator("click", "check", "uncheck")(_selector)
    check_fill = field_validator("fill", "select")(_selectors)

    @field_validator("press", mode="before")
    @classmethod
    def _press(cls, value: object) -> object:
        if isinstance(value, str) and not value:
            raise ValueError("press needs a key, e.g. \"Enter\"")
        return value

    @field_validator("goto")
    @classmethod
    def _goto(cls, value: str | None) -> str | None:
        if value is not None and "{{" not in value and "://" in value:
            scheme = value.split("://", 1)[0]
            if scheme not in ("http", "https"):
                raise ValueError(f"goto: only http:// and https:// pages can be opened, not {scheme}://")
        return value

    @model_validator(mode="after")
    def _shape(self) -> BrowserStep:
        actions = [a for a in ACTIONS if getattr(self, a) is not None]
        if len(actions) > 1:
            raise ValueError(f"step {self.name!r}: one action per step, got {', '.join(actions)}")
        if not actions and self.wait_for is None and not self.expect and not self.extract:
            raise ValueError(f"step {self.name!r} needs an action ({', '.join(ACTIONS)}), `wait_for` or `expect`")
        return self

    @property
    def group(self) -> str | None:
        return self._group

    @property
    def action(self) -> str | None:
        """The action key this step uses, if any."""
        return next((a for a in ACTIONS if getattr(self, a) is not None), None)


def is_browser_step(value: Any) -> bool:
    """Whether a raw step table (or a model) is a browser step (see the module's docstring)."""
    if isinstance(value, BrowserStep):
        return True
    if not isinstance(value, dict):
        return False
    if BROWSER_KEYS & value.keys():
        return True
    for key in ("expect", "extract"):
        items = value.get(key)
        items = items.values() if isinstance(items, dict) else items if isinstance(items, list) else ()
        if any(isinstance(item, dict) and PAGE_SOURCES & item.keys() for item in items):
            return True
    return False
