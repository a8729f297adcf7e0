"""Assertion messages name the JSON types of both sides when they differ.

"expected true, got true" said nothing: the bank answered the string "true" where the
check expects the boolean. When the types agree the messages stay as short as before.
No servers: assertions are pure logic over a response.
"""

from __future__ import annotations

import json

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from prober.config.model import Assertion
from prober.journey.checks import CompiledAssertion, Response
from prober.redact import Redactor

BODY = {
    "flag": "true", "on": True, "count": "1", "one": 1, "nothing": None, "word": "null", "items": ["1", 2],
    "obj": {"a": 1}, "text": "abc5", "name": "Current account", "secret": "tok-0123456789abcdef",
}


def message(spec: dict, body: dict = BODY, redact: Redactor | None = None) -> str | None:
    response = Response(200, CIMultiDictProxy(CIMultiDict()), json.dumps(body).encode(), {})
    assertion = CompiledAssertion.build(Assertion.model_validate(spec))
    return assertion.check(response, {}, redact or Redactor())


@pytest.mark.parametrize(("spec", "expected"), [
    ({"json": "flag", "equals": True}, 'json flag: expected true (boolean), got "true" (string)'),
    ({"json": "on", "equals": "true"}, 'json on: expected "true" (string), got true (boolean)'),
    ({"json": "one", "not_equals": "1"}, 'json one: expected anything but "1" (string), got 1 (number)'),
    ({"json": "count", "not_equals": 1}, 'json count: expected anything but 1 (number), got "1" (string)'),
    ({"json": "count", "equals": 2}, 'json count: expected 2 (number), got "1" (string)'),
    ({"json": "nothing", "equals": "null"}, 'json nothing: expected "null" (string), got null'),
    ({"json": "word", "equals": False}, 'json word: expected false (boolean), got "null" (string)'),
    ({"json": "obj", "equals": "{'a': 1}"}, 'json obj: expected "{\'a\': 1}" (string), got {"a": 1} (object)'),
    ({"json": "items", "equals": "1"}, 'json items: expected "1" (string), got ["1", 2] (array)'),
    ({"json": "one", "contains": "1"}, 'json one: expected to contain "1" (string), got 1 (number)'),
    ({"json": "text", "contains": 5}, 'json text: expected to contain 5 (number), got "abc5" (string)'),
    ({"json": "on", "equals": 1}, 'json on: expected 1 (number), got true (boolean)'),
])
def test_differing_types_are_named(spec: dict, expected: str) -> None:
    assert message(spec) == expected


@pytest.mark.parametrize(("spec", "expected"), [
    ({"json": "name", "equals": "Savings"}, "json name: expected Savings, got Current account"),
    ({"json": "on", "equals": False}, "json on: expected false, got true"),
    ({"json": "one", "equals": 2}, "json one: expected 2, got 1"),
    ({"json": "one", "equals": 1.5}, "json one: expected 1.5, got 1"),
    ({"json": "name", "not_equals": "Current account"}, "json name: expected anything but Current account, got it"),
    ({"json": "items", "contains": 7}, 'json items: expected to contain 7, got ["1", 2]'),
    ({"json": "name", "contains": "IBAN"}, "json name: expected to contain IBAN, got Current account"),
    ({"json": "missing", "equals": "x"}, "json missing: expected a value, got nothing"),
])
def test_messages_stay_short_when_types_agree(spec: dict, expected: str) -> None:
    assert message(spec) == expected


def test_a_quoted_secret_is_masked_inside_its_quotes() -> None:
    redact = Redactor(("tok-0123456789abcdef",))
    assert (
        message({"json": "secret", "equals": 1}, redact=redact)
        == 'json secret: expected 1 (number), got "***" (string)'
    )


def test_long_values_are_still_cut_with_their_types() -> None:
    long = "x" * 200
    text = message({"json": "long", "equals": 3}, {"long": long})
    assert text == f'json long: expected 3 (number), got "{"x" * 59}…" (string)'


def test_a_secret_holding_a_line_break_is_masked_before_the_line_is_joined() -> None:
    secret = "sid\nA1b2"  # shorter than a fragment on either side of the break
    redact = Redactor((secret,))
    assert message({"json": "sid", "equals": "x"}, {"sid": f"<{secret}>"}, redact) == "json sid: expected x, got <***>"
