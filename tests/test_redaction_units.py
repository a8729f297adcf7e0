"""Redaction rules, JSON depth, InfluxDB error scrubbing: pure logic, no servers."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from pydantic import SecretStr

from prober.config.influxdb import InfluxDBConfig, influxdb_config
from prober.config.model import Assertion
from prober.journey.checks import MAX_JSON_DEPTH, CompiledAssertion, Response, json_too_deep, shorten
from prober.redact import MASK, MIN_FRAGMENT, Redactor
from prober.writer.sinks import Scrubber, WriteResult, WriteStatus, classify_status

TOKEN = "tkEXX" + "q7Rv2Lm9Zx" * 7 + "Wp3"  # 78 characters, like an opaque access token


def _leaks(text: str, secret: str, size: int = MIN_FRAGMENT) -> list[str]:
    return [secret[i: i + size] for i in range(len(secret) - size + 1) if secret[i: i + size] in text]


def test_whole_secret_and_every_long_fragment_are_masked() -> None:
    redact = Redactor((TOKEN,))
    assert redact(f"got {TOKEN} end") == f"got {MASK} end"
    for cut in (MIN_FRAGMENT, 20, 59, len(TOKEN) - 1):
        assert redact(f"got {TOKEN[:cut]}…") == f"got {MASK}…"
        assert redact(f"tail {TOKEN[-cut:]}!") == f"tail {MASK}!"
    # Split across two fields of an answer, each half masked on its own.
    split = f'{{"a": "{TOKEN[:30]}", "b": "{TOKEN[30:]}"}}'
    assert _leaks(redact(split), TOKEN) == []


def test_fragments_shorter_than_the_minimum_are_left_alone() -> None:
    redact = Redactor((TOKEN,))
    short = TOKEN[10: 10 + MIN_FRAGMENT - 1]
    assert redact(f"id {short} ok") == f"id {short} ok"
    assert redact("nothing secret here at all") == "nothing secret here at all"


def test_encoded_forms_of_a_secret_are_masked() -> None:
    password = "Pw-7c1e/known to+the&test"
    redact = Redactor((password,))
    for form in (quote(password, safe=""), quote_plus(password), quote(password)):
        assert _leaks(redact(f"url ?p={form}&x=1"), form) == [], form
    for prefix in ("", "a", "ab", "alice:"):  # every base64 alignment
        encoded = base64.b64encode(f"{prefix}{password}".encode()).decode()
        shown = redact(f"Authorization: Basic {encoded}")
        assert len(shown) < len("Authorization: Basic ") + len(encoded) - 20, shown
        urlsafe = base64.urlsafe_b64encode(f"{prefix}{password}".encode()).decode()
        assert MASK in redact(urlsafe)


def test_secrets_added_after_a_first_redaction_are_masked_too() -> None:
    redact = Redactor(("site-password-1",))
    assert redact("x site-password-1") == f"x {MASK}"
    redact.add(TOKEN)
    assert redact(f"{TOKEN[5:40]}") == MASK


def test_shorten_redacts_before_it_cuts() -> None:
    redact = Redactor((TOKEN,))
    shown = shorten({"access_token": TOKEN, "expires_in": 300}, redact)
    assert shown == '{"access_token": "***", "expires_in": 300}'
    shown = shorten("x" * 30 + TOKEN, redact)
    assert shown == "x" * 30 + MASK


def test_failed_assertion_on_a_long_secret_quotes_no_part_of_it() -> None:
    body = json.dumps({"token": TOKEN}).encode()
    answer = Response(200, CIMultiDictProxy(CIMultiDict()), body, {})
    for spec in ({"json": "token", "equals": "x"}, {"body": True, "contains": "nope"},
                 {"json": "token", "equals": "{{ password }}"}):
        assertion = CompiledAssertion.build(Assertion.model_validate(spec))
        message = assertion.check(answer, {"password": TOKEN[::-1] + "Z"}, Redactor((TOKEN, TOKEN[::-1] + "Z")))
        assert message is not None and MASK in message
        assert _leaks(message, TOKEN) == [] and _leaks(message, TOKEN[::-1]) == [], message


@pytest.mark.parametrize(
    ("body", "deep"),
    [
        (b"[" * 200_000 + b"]" * 200_000, True),
        (b"[" * 200_000, True),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), True),
        (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, False),
        (b'["' + b"[" * 5000 + b'"]', False),  # brackets inside a string do not nest
        (b'["\\"' + b"[" * 5000 + b'"]', False),  # nor after an escaped quote
        (b'["\\\\", ' + b"[" * 500 + b"]" * 500 + b"]", True),  # an escaped backslash ends the string
        (json.dumps([{"a": [1, {"b": "x[y"}]} for _ in range(5000)]).encode(), False),
        (b"]" * 500, False),  # not JSON, but not deep: the parser says so
    ],
)
def test_json_depth(body: bytes, deep: bool) -> None:
    assert json_too_deep(body) is deep


def test_deep_json_fails_the_assertion_with_a_clear_message() -> None:
    answer = Response(200, CIMultiDictProxy(CIMultiDict()), b"[" * 200_000 + b"]" * 200_000, {})
    assertion = CompiledAssertion.build(Assertion.model_validate({"json": "[0]", "exists": True}))
    assert assertion.check(answer, {}, Redactor()) == (
        f"json [0]: response body is JSON nested deeper than {MAX_JSON_DEPTH} levels"
    )


def _influx(**fields: object) -> InfluxDBConfig:
    return influxdb_config(**{"url": "http://127.0.0.1:8086", **fields})


@pytest.mark.parametrize("status", [401, 403])
def test_text_of_a_refusal_is_never_kept(status: int) -> None:
    result = classify_status(status, "Authorization: Token abc-def-ghi echoed", 3)
    assert result.status is WriteStatus.RETRY
    assert "abc-def" not in result.message and "echoed" not in result.message
    assert result.message.startswith(f"HTTP {status}: ")


def test_scrubber_removes_influx_credentials_from_any_message() -> None:
    password = "influx-Pass-w0rd-9"
    scrub = Scrubber(_influx(api="v1", database="d", username="alice", password=password))
    basic = base64.b64encode(f"alice:{password}".encode()).decode()
    for text in (f"HTTP 502: upstream said Authorization: Basic {basic}",
                 f"HTTP 500: bad password {password[:12]}", f'{{"authorization":"Basic {basic}"}}',
                 f"ClientError: http://x/?p={quote(password)}"):
        message = scrub(WriteResult(WriteStatus.RETRY, text)).message
        assert password[:MIN_FRAGMENT] not in message and basic[:MIN_FRAGMENT] not in message, message
    token = "v2-token-" + "Zq81" * 10
    scrub = Scrubber(_influx(api="v2", org="o", bucket="b", token=SecretStr(token)))
    message = scrub(WriteResult(WriteStatus.REJECTED, f"HTTP 400: token {token[:20]} is not valid")).message
    assert message == "HTTP 400: token *** is not valid"
