"""Syntax of the selectors browser steps use, checked when the configuration is loaded.

Browser steps name elements the way Playwright does: a CSS selector by default
(``#username``, ``button[type=submit]``), or a selector engine named by a prefix:
``css=``, ``text=``, ``xpath=`` (or a selector starting with ``//`` or ``..``), ``role=``
(``role=button[name="Sign in"]``), ``id=``, ``data-testid=``, ``data-test-id=``,
``data-test=``; a selector in quotes is a text selector; ``A >> B`` looks for B inside
A. What can be checked without a browser is checked here, so that ``prober validate``
names the field instead of a run failing later:

* CSS is parsed with soupsieve (the CSS selector engine of Beautiful Soup). Playwright's
  own pseudo-classes (``:has-text()``, ``:text()``, ``:visible``, ``:nth-match()``…)
  are taken out before parsing: soupsieve does not know them. The plainest selectors
  (type, ``#id`` and ``.class`` selectors joined by combinators: ``#sign-in``,
  ``td.balance``, ``form > button``) are recognised by :data:`PLAIN_CSS`, a subset of
  CSS's own grammar that soupsieve accepts whole, so that checking them imports neither
  soupsieve nor Beautiful Soup (about a tenth of ``prober validate``'s start);
* XPath is parsed with the same rules Chromium applies (balanced brackets and quotes,
  no empty step), enough to catch a typo;
* ``role=`` must name an ARIA role (letters) and its attributes must be bracketed;
* an unknown engine (``foo=bar``) is refused as Playwright refuses it.

The browser's own engine has the last word at run time (a selector it refuses fails the
step with outcome ``error``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

ENGINES = frozenset({"css", "text", "xpath", "role", "id", "data-testid", "data-test-id", "data-test", "nth",
                     "visible", "internal:text", "internal:role"})
"""The prefixes a selector part may start with (Playwright's built-in engines)."""
_USER_ENGINES = ("css", "text", "xpath", "role", "id", "data-testid", "data-test-id", "data-test")
_ENGINE = re.compile(r"^\s*([a-zA-Z_0-9\-+:*]+)=")
_PLAYWRIGHT_PSEUDO = re.compile(
    r":(?:has-text|text|text-is|text-matches|nth-match|right-of|left-of|above|below|near)\("
    r"|:visible\b"
)
_ROLE = re.compile(r"^([a-z]+)((?:\[[^\]]*\])*)$")
_ROLE_ATTRIBUTE = re.compile(
    r'^\[\s*[a-z\-]+\s*(?:=\s*(?:"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[^\]\s]+)\s*[is]?)?\s*\]$'
)

_CSS_SPACE = "[ \t\n\r\f]"
"""CSS's white space (not Python's ``\\s``, which has more)."""
_CSS_IDENT = r"-?[A-Za-z_][A-Za-z0-9_-]*"
_CSS_COMPOUND = rf"(?:(?:{_CSS_IDENT}|\*)(?:[#.]{_CSS_IDENT})*|(?:[#.]{_CSS_IDENT})+)"
PLAIN_CSS = re.compile(
    rf"{_CSS_SPACE}*{_CSS_COMPOUND}(?:{_CSS_SPACE}*[>+~]{_CSS_SPACE}*{_CSS_COMPOUND}|{_CSS_SPACE}+{_CSS_COMPOUND})*"
    rf"{_CSS_SPACE}*"
)
"""Selectors valid without a parser: ASCII type (or ``*``), ``#id`` and ``.class``
selectors joined by descendant, ``>``, ``+`` or ``~`` combinators. Whatever it does not
match whole goes to soupsieve, which has the last word (and the error message)."""


class SelectorError(ValueError):
    """A selector that cannot be right; the message says where."""


def check_selector(selector: str) -> str:
    """``selector`` when its syntax is right; raises :class:`SelectorError` otherwise."""
    if not selector.strip():
        raise SelectorError("empty selector")
    for part in _split_chain(selector):
        _check_part(part.strip(), selector)
    return selector


class _UnclosedQuote(Exception):
    """A quoted string of a selector that never ends."""


def _unquoted(text: str, start: int = 0) -> Iterator[tuple[int, str]]:
    """The characters of ``text`` from ``start`` that are outside quoted strings, with
    their index (the quotes themselves left out, a backslash escaping inside quotes);
    :class:`_UnclosedQuote` at the end when a quote is still open."""
    quote, i = "", start
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        else:
            yield i, char
        i += 1
    if quote:
        raise _UnclosedQuote


def _split_chain(selector: str) -> list[str]:
    """The parts of ``A >> B >> C``, not splitting inside quotes or brackets."""
    parts: list[str] = []
    depth, start = 0, 0
    try:
        for i, char in _unquoted(selector):
            if i < start:  # the second '>' of a separator
                continue
            if char in "([":
                depth += 1
            elif char in ")]":
                depth -= 1
            elif depth == 0 and selector.startswith(">>", i):
                parts.append(selector[start:i])
                start = i + 2
    except _UnclosedQuote:
        raise SelectorError(f"invalid selector {selector!r}: unclosed quote") from None
    parts.append(selector[start:])
    for part in parts:
        if not part.strip():
            raise SelectorError(f"invalid selector {selector!r}: empty part around '>>'")
    return parts


def _check_part(part: str, whole: str) -> None:
    engine, body = _engine_of(part)
    where = f"invalid selector {whole!r}"
    if engine not in ENGINES:
        raise SelectorError(f"{where}: unknown selector engine {engine!r} (use {', '.join(_USER_ENGINES)})")
    if not body.strip() and engine not in ("visible",):
        raise SelectorError(f"{where}: nothing after '{engine}='")
    if engine == "css":
        _check_css(body, where)
    elif engine == "xpath":
        _check_xpath(body, where)
    elif engine == "role":
        match = _ROLE.match(body.strip())
        if match is None:
            raise SelectorError(
                f"{where}: role= takes an ARIA role and [attributes], e.g. role=button[name=\"Sign in\"]")
        for attribute in re.findall(r"\[[^\]]*\]", match.group(2)):
            if not _ROLE_ATTRIBUTE.match(attribute):
                raise SelectorError(f"{where}: bad role attribute {attribute}")


def _engine_of(part: str) -> tuple[str, str]:
    """``(engine, body)`` of one part of a chain, as Playwright decides it."""
    match = _ENGINE.match(part)
    if match is not None:
        return match.group(1), part[match.end():]
    if part.startswith(("//", "..")):
        return "xpath", part
    if part.startswith(("\"", "'")):
        return "text", part
    return "css", part


def _check_css(body: str, where: str) -> None:
    text = body
    # Playwright's own pseudo-classes: drop them, and their argument, before parsing.
    while (match := _PLAYWRIGHT_PSEUDO.search(text)) is not None:
        end = match.end()
        if match.group(0).endswith("("):
            end = _closing(text, end - 1, where)
        text = text[: match.start()] + text[end:]
    if not text.strip() or text.strip() in (",",):
        return
    if text.rstrip().endswith(",") or text.lstrip().startswith(","):
        raise SelectorError(f"{where}: empty selector in a list")
    if PLAIN_CSS.fullmatch(text):
        return
    import soupsieve  # imports Beautiful Soup: only for the selectors PLAIN_CSS leaves over

    try:
        soupsieve.compile(text)
    except soupsieve.SelectorSyntaxError as exc:
        reason = str(exc).splitlines()[0]
        raise SelectorError(f"{where}: {reason}") from None
    except (ValueError, TypeError) as exc:
        raise SelectorError(f"{where}: {exc}") from None


def _closing(text: str, open_at: int, where: str) -> int:
    """The index after the parenthesis that closes the one at ``open_at``."""
    depth = 0
    try:
        for i, char in _unquoted(text, open_at):
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    return i + 1
    except _UnclosedQuote:
        pass
    raise SelectorError(f"{where}: unclosed '('")


def _check_xpath(body: str, where: str) -> None:
    depth = {"(": 0, "[": 0}
    closing = {")": "(", "]": "["}
    quote = ""
    for char in body:
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in depth:
            depth[char] += 1
        elif char in closing:
            depth[closing[char]] -= 1
            if depth[closing[char]] < 0:
                raise SelectorError(f"{where}: unbalanced '{char}' in XPath")
    if quote:
        raise SelectorError(f"{where}: unclosed quote in XPath")
    if any(depth.values()):
        raise SelectorError(f"{where}: unclosed bracket in XPath")
    if re.search(r"(?<!/)///|\[\s*\]|^\s*$", body) or body.rstrip().endswith("/") and body.strip() not in ("/",):
        raise SelectorError(f"{where}: empty step in XPath")
