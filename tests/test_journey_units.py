"""Pure logic of the journey engine: durations, templates, assertions, extraction,
redaction, outcome classification. No servers."""

from __future__ import annotations

import dataclasses
import socket

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from prober.config.model import Assertion, Extract
from prober.config.types import format_size, parse_duration, parse_size
from prober.journey.checks import CompiledAssertion, CompiledExtract, Response
from prober.journey.failures import classify
from prober.journey.http import PhaseClock
from prober.journey.templating import compile_value, names_in
from prober.redact import Redactor
from prober.results import JourneyResult, Outcome, StepResult


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30.0), ("500ms", 0.5), ("1m30s", 90.0), ("2h", 7200.0),
                                               ("1.5s", 1.5), ("1d", 86400.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "s", "30 s", "1x", "30s5", "-1s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(("text", "size"), [("512KiB", 524288), ("10MiB", 10485760), ("1GiB", 1 << 30),
                                            ("500KB", 500000), ("1mb", 1000000), ("1.5KiB", 1536), ("100B", 100)])
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "10", "MiB", "10 parsecs", "10MiBs", "-1KiB", "1TiB"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("size", "text"), [(10 << 20, "10 MiB"), (1536, "1.5 KiB"), (999, "999 B"), (1 << 30, "1 GiB")]
)
def test_sizes_are_shown_in_binary_units(size: int, text: str) -> None:
    assert format_size(size) == text


def test_templates_render_nested_values_and_constants_stay_constant() -> None:
    render = compile_value({"a": "{{ x }}-{{ run.id }}", "b": [1, "c"], "d": "plain"})
    out = render({"x": 5, "run": {"id": "R1"}})
    assert out == {"a": "5-R1", "b": [1, "c"], "d": "plain"}
    constant = {"k": "v"}
    assert compile_value(constant)({}) is constant
    assert names_in({"h": "Bearer {{ token }}", "l": ["{{ a }}{{ uuid() }}"]}) == {"token", "a"}


def test_uuid_is_fresh_per_render() -> None:
    render = compile_value("{{ uuid() }}")
    assert render({}) != render({})


def response(body: bytes, headers: dict[str, str] | None = None, status: int = 200) -> Response:
    return Response(status, CIMultiDictProxy(CIMultiDict(headers or {})), body, {"SESSION": "sess-cookie-value"})


BODY = (b'{"balances": [{"balanceType": "CLBD", "balanceAmount": {"amount": "0.00"}}], '
        b'"items": [1, 2, 3], "name": "Current account"}')


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"json": "balances[0].balanceAmount.amount", "gt": 0},
         "json balances[0].balanceAmount.amount: expected > 0, got 0.00"),
        ({"json": "items", "length": 2}, "json items: expected length 2, got 3"),
        ({"json": "items", "min_length": 4}, "json items: expected length >= 4, got 3"),
        ({"json": "name", "equals": "Savings"}, "json name: expected Savings, got Current account"),
        ({"json": "name", "not_equals": "Current account"}, "json name: expected anything but Current account, got it"),
        ({"json": "name", "matches": "^Sav"}, "json name: expected to match /^Sav/, got Current account"),
        ({"json": "missing", "exists": True}, "json missing: expected present, got nothing"),
        ({"json": "name", "exists": False}, "json name: expected absent, got Current account"),
        ({"json": "items", "contains": 7}, "json items: expected to contain 7, got [1, 2, 3]"),
        ({"json": "name", "lt": 3}, "json name: expected a number, got Current account"),
        ({"header": "Content-Type", "contains": "json"},
         "header Content-Type: expected to contain json, got text/html"),
        ({"body": True, "contains": "IBAN"},
         'body: expected to contain IBAN, got {"balances": [{"balanceType": "CLBD", "balanceAmount": {"am…'),
        ({"json": "balances[0].balanceAmount.amount", "gt": 0, "description": "closing balance"},
         "closing balance: expected > 0, got 0.00"),
    ],
)
def test_failed_assertions_say_which_expected_and_actual(spec: dict, message: str) -> None:
    assertion = CompiledAssertion.build(Assertion.model_validate(spec))
    assert assertion.check(response(BODY, {"Content-Type": "text/html"}), {}, Redactor()) == message


@pytest.mark.parametrize(
    "spec",
    [
        {"json": "items", "length": 3},
        {"json": "items[-1]", "ge": 3, "le": 3},
        {"json": "balances[?balanceType=='CLBD'] | [0].balanceAmount.amount", "equals": 0},
        {"json": "name", "equals": "{{ expected }}"},
        {"json": "missing", "exists": False},
        {"json": "items", "contains": 2},
        {"body": True, "matches": "Current\\s+account"},
    ],
)
def test_passing_assertions(spec: dict) -> None:
    assertion = CompiledAssertion.build(Assertion.model_validate(spec))
    assert assertion.check(response(BODY), {"expected": "Current account"}, Redactor()) is None


def test_assertion_on_a_non_json_body_fails_clearly() -> None:
    assertion = CompiledAssertion.build(Assertion.model_validate({"json": "a", "exists": True}))
    assert assertion.check(response(b"<html>"), {}, Redactor()) == "json a: response body is not JSON"


def test_extraction_from_json_header_cookie_regex() -> None:
    r = response(BODY, {"Location": "/payments/pay-1"})

    def take(spec: dict, name: str = "v") -> object:
        return CompiledExtract.build(name, Extract.model_validate(spec)).take(r)

    assert take({"json": "items[1]"}) == 2
    assert take({"header": "Location"}) == "/payments/pay-1"
    assert take({"cookie": "SESSION"}) == "sess-cookie-value"
    assert take({"regex": '"name": "([^"]+)"'}) == "Current account"
    with pytest.raises(LookupError, match="extract v: JSON path nope found nothing"):
        take({"json": "nope"})


def test_secret_extractions_by_name_and_cookie() -> None:
    def build(name: str, spec: dict) -> CompiledExtract:
        return CompiledExtract.build(name, Extract.model_validate(spec))

    assert build("access_token", {"json": "a"}).secret
    assert build("sid", {"cookie": "SESSION"}).secret
    assert not build("account_id", {"json": "a"}).secret
    assert build("account_id", {"json": "a", "secret": True}).secret


def test_redactor_masks_longest_first() -> None:
    redact = Redactor(("abc", "xy"))
    redact.add("abcdef")
    assert redact("token abcdef and abc and xy") == "token *** and *** and xy"


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (TimeoutError(), Outcome.TIMEOUT),
        (aiohttp.ServerDisconnectedError(), Outcome.CONNECT),
        (aiohttp.ClientPayloadError("x"), Outcome.ERROR),
        # classify() goes by the class alone; a RequestInfo would need yarl, not a declared dependency
        (aiohttp.TooManyRedirects(None, ()), Outcome.ERROR),  # type: ignore[arg-type]
        (RuntimeError("bug"), Outcome.ERROR),
    ],
)
def test_exception_classification(exc: BaseException, outcome: Outcome) -> None:
    assert classify(exc)[0] is outcome


def test_dns_failure_inside_a_connector_error_is_dns() -> None:
    key = type("Key", (), {"host": "bank.invalid", "port": 443, "ssl": True})()
    exc = aiohttp.ClientConnectorError(key, socket.gaierror(-2, "Name or service not known"))
    assert classify(exc) == (Outcome.DNS, "dns: cannot resolve bank.invalid")


def test_phases_add_up_to_the_span() -> None:
    clock = PhaseClock()
    clock.start, clock.headers, clock.end = 10.000, 10.120, 10.125
    clock.dns_ms, clock.connect_ms, clock.tls_ms = 5.0, 10.0, 20.0
    phases = clock.phases()
    assert phases.ttfb_ms == pytest.approx(85.0)
    assert phases.transfer_ms == pytest.approx(5.0)
    assert phases.total_ms == pytest.approx(125.0)


@pytest.mark.parametrize("text", ["a {{ x }} b", "{{ run.id }}-{{ x }}", "{{ x }}", "{{ x | upper }}",
                                  "{% if x %}yes{% endif %}", "{{ d.k }}"])
def test_fast_substitution_renders_like_jinja(text: str) -> None:
    import jinja2

    values = {"x": "val", "run": type("Run", (), {"id": "R7"})(), "d": {"k": 3}}
    expected = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(text).render(values)
    assert compile_value(text)(values) == expected


def test_undefined_value_raises_in_both_renderers() -> None:
    from prober.journey.templating import UndefinedValue

    for text in ("{{ missing }}", "{{ missing | upper }}"):
        with pytest.raises(UndefinedValue, match="'missing' is undefined"):
            compile_value(text)({})


def test_results_are_immutable_once_produced():
    """Four consumers share each result: none can change what the others see."""
    step = StepResult("login", Outcome.OK, started_at_ns=1)
    result = JourneyResult(site="s", check="c", kind="login", location="l", outcome=Outcome.OK,
                           started_at_ns=1, duration_ms=1.0, steps=(step,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.outcome = Outcome.SKIPPED  # type: ignore[misc]  # frozen: the point of the test
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.error = "x"  # type: ignore[misc]  # frozen: the point of the test
    assert isinstance(result.steps, tuple)


def test_form_body_is_what_aiohttp_formdata_sends() -> None:
    """The form is encoded directly (FormData cost as much again per request): the same
    bytes, and the form's content type unless the step set its own."""
    from prober.journey.runner import FORM_CONTENT_TYPE, _form_body

    form = {"grant_type": "password", "username": "alice@bank.example", "password": "p&ss w=rd/é", "scope": ""}
    payload = aiohttp.FormData(form)()
    headers: dict[str, str] = {}
    assert _form_body(form, headers) == payload._value
    assert headers == {"Content-Type": FORM_CONTENT_TYPE} and payload.content_type == FORM_CONTENT_TYPE
    own = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
    _form_body(form, own)
    assert own == {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
