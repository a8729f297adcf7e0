"""The plain-CSS shortcut of selector checking (prober.config.selectors.PLAIN_CSS) accepts
only what soupsieve accepts, and everything else is still judged by soupsieve.

The shortcut exists so that `prober validate` of a configuration whose browser steps use
plain selectors (``#id``, ``td.balance``) imports neither soupsieve nor Beautiful Soup; it
must never let through a selector soupsieve would refuse.
"""

from __future__ import annotations

import itertools

import pytest
import soupsieve

from prober.config.selectors import PLAIN_CSS, SelectorError, check_selector

ALPHABET = "a_-0#.*>+~ \t\n\r\f\v\x85\xa0"
"""Letters, digits and the characters CSS's plain selectors are made of, with white space
CSS accepts (space, tab, newline, CR, FF) and some it does not (vertical tab, NEL, NBSP)."""


def test_every_selector_the_shortcut_accepts_is_one_soupsieve_compiles() -> None:
    accepted = 0
    for length in range(1, 5):
        for chars in itertools.product(ALPHABET, repeat=length):
            text = "".join(chars)
            if PLAIN_CSS.fullmatch(text):
                accepted += 1
                soupsieve.compile(text)  # raises on a selector the shortcut should not have taken
    assert accepted > 5000  # the shortcut covers a real part of the space, not a handful


@pytest.mark.parametrize("selector", [
    "#sign-in", "td.balance", "form > button", "#creditor-name", "ul li + li", "h1 ~ p", "*", "*.x",
    "DIV#main.wide", "-x", "_y", "a\r\nb", " #a ",
])
def test_plain_selectors_take_the_shortcut_and_are_valid(selector: str) -> None:
    assert PLAIN_CSS.fullmatch(selector)
    soupsieve.compile(selector)
    assert check_selector(selector) == selector


@pytest.mark.parametrize(("selector", "reason"), [
    ("#1a", "Malformed id selector at position 0"),
    ("td.", "Malformed class selector at position 2"),
    ("#a..b", "Malformed class selector at position 2"),
    ("a > > b", "The combinator '>' at position 4, must have a selector before it"),
    ("a\vb", "Invalid character '\\x0b' position 1"),
    ("button[type=submit", "Malformed attribute selector"),
])
def test_selectors_outside_the_shortcut_get_soupsieves_message(selector: str, reason: str) -> None:
    assert not PLAIN_CSS.fullmatch(selector)
    with pytest.raises(SelectorError) as caught:
        check_selector(selector)
    assert str(caught.value).startswith(f"invalid selector {selector!r}: {reason}")


@pytest.mark.parametrize("selector", ["section:has(> h1)", "li:nth-child(2)", "input[name=\"user\"]", "a, b",
                                      "div:has-text(\"Total\") > span"])
def test_valid_selectors_outside_the_shortcut_still_pass(selector: str) -> None:
    assert check_selector(selector) == selector
