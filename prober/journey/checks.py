"""Assertions and extractions on a response, compiled once at load.

A failed assertion returns a message saying which one failed, expected versus actual.
Values quoted in a message are redacted first and cut to length after (:func:`shorten`),
so that neither a secret nor a response body ends up whole, or in part, in an error
string.

A body is parsed as JSON only when it nests at most :data:`MAX_JSON_DEPTH` levels deep;
deeper bodies fail the JSON assertion or extraction with a message saying so, instead of
exhausting the parser's recursion.
"""

from __future__ import annotations

import datetime
import json as jsonlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from multidict import CIMultiDictProxy

from prober.config.model import Assertion, Extract
from prober.journey.jsonpath import JsonPath, SimplePath, compile_path
from prober.journey.templating import Renderer, compile_value

_MAX_SHOWN = 60
_REDACTED_WINDOW = 4 * _MAX_SHOWN
"""How much of a value is redacted before the cut (redacting a whole body costs its size)."""
MAX_JSON_DEPTH = 100
"""Deepest nesting of arrays and objects accepted in a JSON body."""
_NOTHING = object()
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_SQUARE = bytes.maketrans(b"{}", b"[]")
_QUOTED = re.compile(rb'"[^"]*"')

Redact = Callable[[str], str]


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays and objects in ``body`` nest more than ``limit`` levels deep.

    Without recursion, and at C speed: brackets inside JSON strings are dropped, then each
    pass over the rest removes the innermost level (``[]``), so a body of depth *d* is
    gone after *d* passes. Bodies with at most ``limit`` opening brackets (nearly all)
    are answered by two counts.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    # Escapes pair up from the left, so removing \\ before \" leaves every real quote.
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Only brackets and quotes are left; two adjacent quotes have nothing structural
    # between them (an empty string, or two strings joined), so they go first, cheaply.
    structure = unescaped.translate(_SQUARE, _NOT_STRUCTURE).replace(b'""', b"")
    brackets = _QUOTED.sub(b"", structure).replace(b'"', b"")
    rest = brackets
    for _ in range(limit):
        rest = rest.replace(b"[]", b"")
        if not rest:
            return False
    # Deeper than the limit, or unbalanced: walk to tell which.
    depth = 0
    for byte in brackets:
        depth += 1 if byte == 0x5B else -1
        if depth > limit:
            return True
    return False


class Response:
    """What assertions and extractions see of an answer. The body is decoded and parsed
    at most once, and only when some assertion or extraction needs it."""

    __slots__ = ("status", "headers", "body", "cookies", "_text", "_json")

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes, cookies: dict[str, str]) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.cookies = cookies
        self._text: str | None = None
        self._json: Any = _NOTHING

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.body.decode("utf-8", errors="replace")
        return self._text

    def json(self) -> Any:
        """The parsed body; raises ``ValueError`` when it is not JSON."""
        if self._json is _NOTHING:
            if json_too_deep(self.body):
                self._json = ValueError(f"response body is JSON nested deeper than {MAX_JSON_DEPTH} levels")
            else:
                try:
                    self._json = jsonlib.loads(self.body)
                except (ValueError, UnicodeDecodeError, RecursionError):
                    self._json = ValueError("response body is not JSON")
        if isinstance(self._json, ValueError):
            raise self._json
        return self._json


def _one_line(value: Any) -> str:
    text = value if isinstance(value, str) else jsonlib.dumps(value, ensure_ascii=False, default=str)
    return text.replace("\n", " ")


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def shorten(value: Any, redact: Redact) -> str:
    """``value`` as one line for a message: redacted first, then cut to 60 characters.

    Only the start of a long value is redacted (the part that can be shown); the
    redactor masks a secret cut at that boundary as a fragment. Line breaks become
    spaces after redaction, so that a secret holding one is still recognised.
    """
    text = value if isinstance(value, str) else jsonlib.dumps(value, ensure_ascii=False, default=str)
    return _cut(redact(text[:_REDACTED_WINDOW]).replace("\n", " "))


def json_type(value: Any) -> str:
    """The JSON type name of a value (``string``, ``number``, ``boolean``, ``null``,
    ``array``, ``object``); TOML's dates and times, which JSON lacks, by their TOML name."""
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, datetime.datetime):
        return "date-time"
    return type(value).__name__  # datetime.date, datetime.time: "date", "time"


def _typed(value: Any, redact: Redact) -> str:
    """``value`` for a message that compares values of different types: a string in
    quotes, every value followed by its type (``"true" (string)``, ``true (boolean)``);
    null is its own type."""
    if value is None:
        return "null"
    kind = json_type(value)
    shown = shorten(value, redact)
    return f'"{shown}" ({kind})' if kind == "string" else f"{shown} ({kind})"


def _pair(expected: Any, actual: Any, redact: Redact) -> tuple[str, str]:
    """Both sides of a comparison as shown: with their types when these differ."""
    if json_type(expected) == json_type(actual):
        return shorten(expected, redact), shorten(actual, redact)
    return _typed(expected, redact), _typed(actual, redact)


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) is not isinstance(expected, bool):
        return False  # JSON's true is not 1, as Python's True is
    if actual == expected:
        return True
    a, e = _as_number(actual), _as_number(expected)
    return a is not None and e is not None and a == e


@dataclass(slots=True, frozen=True)
class CompiledAssertion:
    """An :class:`~prober.config.model.Assertion` ready to run."""

    label: str
    spec: Assertion
    json_expr: JsonPath | None
    pattern: re.Pattern[str] | None
    expected: Renderer
    """Renders ``equals``, ``not_equals`` and ``contains``, which may be templates."""

    @classmethod
    def build(cls, spec: Assertion) -> CompiledAssertion:
        if spec.json_path is not None:
            label = f"json {spec.json_path}"
        elif spec.header is not None:
            label = f"header {spec.header}"
        else:
            label = "body"
        return cls(
            label=spec.description or label,
            spec=spec,
            json_expr=compile_path(spec.json_path) if spec.json_path is not None else None,
            pattern=re.compile(spec.matches) if spec.matches is not None else None,
            expected=compile_value([spec.equals, spec.not_equals, spec.contains]),
        )

    def _actual(self, response: Response) -> Any:
        if self.json_expr is not None:
            return self.json_expr.search(response.json())
        if self.spec.header is not None:
            return response.headers.get(self.spec.header)
        return response.text

    def check(self, response: Response, values: Mapping[str, Any], redact: Redact) -> str | None:
        """``None`` when the assertion holds, else what went wrong, every value quoted
        passed through ``redact`` before it is cut to length."""
        try:
            actual = self._actual(response)
        except ValueError as exc:
            return f"{self.label}: {exc}"
        # JMESPath gives None for a null and for nothing alike; a plain path tells them apart.
        null = actual is None and isinstance(self.json_expr, SimplePath) and self.json_expr.holds_null(response.json())
        return self._compare(actual, *self.expected(values), redact=redact, null=null)

    def _compare(
        self, actual: Any, equals: Any, not_equals: Any, contains: Any, *, redact: Redact, null: bool = False
    ) -> str | None:
        spec, label = self.spec, self.label
        if spec.exists is not None:
            if (actual is not None) != spec.exists:
                expected = "present" if spec.exists else "absent"
                return f"{label}: expected {expected}, got {'nothing' if actual is None else shorten(actual, redact)}"
            if not spec.exists:
                return None
        if actual is None:
            if null and equals is not None:
                return f"{label}: expected {_typed(equals, redact)}, got null"
            return f"{label}: expected a value, got nothing"
        problem = _equality_problem(actual, equals, not_equals, redact)
        if problem is not None:
            return f"{label}: {problem}"
        return self._shape_problem(actual, contains, redact)

    def _shape_problem(self, actual: Any, contains: Any, redact: Redact) -> str | None:
        """The bounds, pattern, member and length the expectation asks of a present value."""
        spec, label = self.spec, self.label

        def shown(value: Any) -> str:
            return shorten(value, redact)

        bounds = ((">", spec.gt), (">=", spec.ge), ("<", spec.lt), ("<=", spec.le))
        if any(bound is not None for _, bound in bounds) and (problem := _bounds_problem(bounds, actual)):
            return f"{label}: {problem}, got {shown(actual)}"
        if self.pattern is not None and not self.pattern.search(
            actual if isinstance(actual, str) else _cut(_one_line(actual))
        ):
            return f"{label}: expected to match /{self.pattern.pattern}/, got {shown(actual)}"
        if contains is not None and not _contains(actual, contains):
            # A member of an array or object is compared, not the container: its type
            # is no news. A string or scalar holds only a string of the same type.
            expected_text, actual_text = (
                (shown(contains), shown(actual)) if isinstance(actual, list | dict) else _pair(contains, actual, redact)
            )
            return f"{label}: expected to contain {expected_text}, got {actual_text}"
        if spec.length is not None or spec.min_length is not None:
            if not hasattr(actual, "__len__"):
                return f"{label}: expected something with a length, got {shown(actual)}"
            problem = _length_problem(spec.length, spec.min_length, len(actual))
            return f"{label}: {problem}" if problem else None
        return None


def _equality_problem(actual: Any, equals: Any, not_equals: Any, redact: Redact) -> str | None:
    """``expected …, got …`` when ``actual`` is not ``equals`` or is ``not_equals``, else None."""
    if equals is not None and not _equal(actual, equals):
        expected_text, actual_text = _pair(equals, actual, redact)
        return f"expected {expected_text}, got {actual_text}"
    if not_equals is not None and _equal(actual, not_equals):
        if json_type(not_equals) == json_type(actual):
            return f"expected anything but {shorten(not_equals, redact)}, got it"
        expected_text, actual_text = _pair(not_equals, actual, redact)
        return f"expected anything but {expected_text}, got {actual_text}"
    return None


def _bounds_problem(bounds: tuple[tuple[str, float | None], ...], actual: Any) -> str | None:
    """``expected …`` when ``actual`` is not a number or is out of ``bounds``, else None."""
    number = _as_number(actual)
    if number is None:
        return "expected a number"
    for op, bound in bounds:
        if bound is not None and not _OPS[op](number, bound):
            return f"expected {op} {bound:g}"
    return None


def _length_problem(length: int | None, min_length: int | None, size: int) -> str | None:
    """``expected length …, got N`` when ``size`` is not the length asked, else None."""
    if length is not None and size != length:
        return f"expected length {length}, got {size}"
    if min_length is not None and size < min_length:
        return f"expected length >= {min_length}, got {size}"
    return None


_OPS = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(expected, str) and expected in actual
    if isinstance(actual, list | dict):
        return expected in actual
    return False


@dataclass(slots=True, frozen=True)
class CompiledExtract:
    """An :class:`~prober.config.model.Extract` ready to run."""

    name: str
    spec: Extract
    json_expr: JsonPath | None
    pattern: re.Pattern[str] | None
    secret: bool

    @classmethod
    def build(cls, name: str, spec: Extract, from_token_answer: bool = False) -> CompiledExtract:
        """``from_token_answer``: the step is a token request, whose answer holds
        credentials: its values are secret unless ``secret = false`` says otherwise."""
        default = from_token_answer or bool(_SECRET_NAME.search(name))
        secret = spec.secret if spec.secret is not None else default
        return cls(
            name=name,
            spec=spec,
            json_expr=compile_path(spec.json_path) if spec.json_path is not None else None,
            pattern=re.compile(spec.regex) if spec.regex is not None else None,
            secret=secret or spec.cookie is not None,
        )

    def take(self, response: Response) -> Any:
        """The value, or raises ``LookupError`` saying where it was not found."""
        spec = self.spec
        if self.json_expr is not None:
            try:
                value = self.json_expr.search(response.json())
            except ValueError as exc:
                raise LookupError(f"extract {self.name}: {exc}") from None
            where = f"JSON path {spec.json_path}"
        elif spec.header is not None:
            value, where = response.headers.get(spec.header), f"header {spec.header}"
        elif spec.cookie is not None:
            value, where = response.cookies.get(spec.cookie), f"cookie {spec.cookie}"
        else:
            assert self.pattern is not None
            match = self.pattern.search(response.text)
            value = (match.group(1) if match.re.groups else match.group(0)) if match else None
            where = f"regex /{spec.regex}/"
        if value is None:
            raise LookupError(f"extract {self.name}: {where} found nothing")
        return value


_SECRET_NAME = re.compile(r"token|secret|password|passwd|session|key|cookie|auth", re.IGNORECASE)
