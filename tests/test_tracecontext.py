"""W3C ``traceparent`` on every request: one trace per run, one span per request (each
step, poll attempt and redirect hop), sampled; the trace id in the result, the ``check``
point and ``prober check --json``; off per site; covered by a signature that lists it;
a bank echoing a malformed one back changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from prober.journey.runner import run_journey
from prober.journey.signing.cavage import parse_signature
from prober.journey.tracecontext import is_valid, new_span_id, traceparent
from prober.loading import load
from prober.results import Outcome
from prober.simbank.signatures import SignatureProfile
from prober.writer.points import journey_lines
from tests.cli import check_simbank
from tests.fixtures.recording_bank import RecordingBankServer
from tests.fixtures.servers import InfluxDatabase
from tests.signing_keys import make_key, signed_site

HEX32 = re.compile(r"^[0-9a-f]{32}$")


class TracedBank:
    """A real aiohttp server: ``/start`` redirects (307) to ``/landing``; ``/status`` says
    ``pending`` twice, then ``done``; every answer echoes a malformed ``traceparent``."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.polls = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.path, request.headers.get("traceparent")))
        echo = {"traceparent": "00-NOT-A-TRACE-zz", "tracestate": "=,=,="}
        if request.path == "/start":
            raise web.HTTPTemporaryRedirect("/landing", headers=echo)
        if request.path == "/status":
            self.polls += 1
            return web.json_response({"state": "done" if self.polls >= 3 else "pending"}, headers=echo)
        return web.json_response({"ok": True, "traceparent": "ff-garbage"}, headers=echo)

    async def __aenter__(self) -> TracedBank:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def traced_config(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "traced.toml"
    path.write_text(f"""
[[sites]]
name = "traced"
base_url = "{url}"
{extra}
[[sites.checks]]
name = "journey"
kind = "custom"
  [[sites.checks.steps]]
  name = "start"
  path = "/start"
  [[sites.checks.steps]]
  name = "status"
  path = "/status"
  poll = {{ attempts = 5, interval = "10ms" }}
  expect = [ {{ json = "state", equals = "done" }} ]
""")
    return path


def split(value: str) -> tuple[str, str, str, str]:
    version, trace, span, flags = value.split("-")
    return version, trace, span, flags


def test_header_values_follow_the_specification() -> None:
    spans = {new_span_id() for _ in range(1000)}
    assert len(spans) == 1000 and all(re.fullmatch(r"[0-9a-f]{16}", s) and s != "0" * 16 for s in spans)
    value = traceparent("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    assert value == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"  # the specification's example
    assert is_valid(value)
    for bad in ("00-" + "0" * 32 + "-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "00-NOT-A-TRACE-zz", ""):
        assert not is_valid(bad), bad


async def test_one_trace_per_run_one_span_per_request_hop_and_poll(tmp_path: Path) -> None:
    async with TracedBank() as bank:
        (plan,) = load(traced_config(tmp_path, bank.url)).plans
        first = await run_journey(plan)
        sent_first = list(bank.seen)
        bank.polls = 0
        second = await run_journey(plan)
    assert first.outcome is Outcome.OK and second.outcome is Outcome.OK, (first.error, second.error)
    # /start, its redirect hop /landing, then three poll attempts of /status
    assert [path for path, _ in sent_first] == ["/start", "/landing", "/status", "/status", "/status"]
    values = [value for _, value in sent_first]
    assert all(value is not None and is_valid(value) for value in values), values
    parts = [split(value) for value in values if value]
    assert {(version, flags) for version, _, _, flags in parts} == {("00", "01")}  # version 00, sampled
    assert {trace for _, trace, _, _ in parts} == {first.trace_id}  # one trace per run…
    assert len({span for _, _, span, _ in parts}) == len(parts)  # …one span per request
    assert first.trace_id == first.run_id and HEX32.match(first.trace_id)
    assert second.trace_id != first.trace_id  # each run its own trace
    # The bank's malformed echo is never read: our trace id stands, nothing failed.
    assert "NOT-A-TRACE" not in first.trace_id and first.error == ""


async def test_traceparent_false_sends_none(tmp_path: Path) -> None:
    async with TracedBank() as bank:
        (plan,) = load(traced_config(tmp_path, bank.url, "traceparent = false")).plans
        result = await run_journey(plan)
    assert result.outcome is Outcome.OK, result.error
    assert bank.seen and all(value is None for _, value in bank.seen)
    assert result.trace_id == "" and result.run_id
    (check_line, *_) = journey_lines(result)
    assert "trace_id" not in check_line


async def test_the_trace_id_is_a_field_of_the_check_point(tmp_path: Path, influx_db: InfluxDatabase) -> None:
    async with TracedBank() as bank:
        (plan,) = load(traced_config(tmp_path, bank.url)).plans
        result = await run_journey(plan)
    lines = journey_lines(result)
    assert f'trace_id="{result.trace_id}"' in lines[0] and all("trace_id" not in line for line in lines[1:])
    influx_db.server.write_lines(influx_db.name, lines)
    assert influx_db.field_types("check")["trace_id"] == "string"
    assert "trace_id" not in {row["tagKey"] for row in influx_db.query('SHOW TAG KEYS FROM "check"')}
    (row,) = influx_db.query('SELECT "trace_id" FROM "check"')
    assert row["trace_id"] == result.trace_id


async def test_check_json_carries_the_trace_id_the_bank_received(tmp_path: Path) -> None:
    async with RecordingBankServer(seed=1) as bank:
        done = await check_simbank(bank.url, "accounts")
        received = [r.header("traceparent") for r in bank.sent]
    (line,) = done.json_lines()
    assert HEX32.match(line["trace_id"]) and line["trace_id"] == line["run_id"]
    assert received and all(value is not None and is_valid(value) for value in received)
    assert {split(value)[1] for value in received if value} == {line["trace_id"]}


async def test_a_signature_that_lists_traceparent_covers_it(tmp_path: Path) -> None:
    """Set before the signer runs, the header is signed as sent: the bank verifies it."""
    key = make_key(tmp_path, "tpp")
    signatures = SignatureProfile("berlin-group", certificates=[key.certificate])
    async with RecordingBankServer(seed=1, signatures=signatures) as bank:
        text = signed_site("psd2", bank.url, {"profile": "berlin-group", "key_file": key.key_file,
                                              "certificate_file": key.certificate_file})
        text = text.replace("  [sites.signing]", '  [sites.signing]\n  headers = ["(request-target)", "date", '
                                                  '"digest", "x-request-id", "traceparent"]')
        path = tmp_path / "signed.toml"
        path.write_text(text)
        results = [await run_journey(plan) for plan in load(path).plans]
        signed = [r for r in bank.sent if r.header("Signature")]
    assert [r.outcome for r in results] == [Outcome.OK], [r.error for r in results]
    assert signatures.verified == 2 and signatures.refused == {}
    for request in signed:
        assert parse_signature(request.header("Signature") or "")["headers"].split()[-1] == "traceparent"
        assert is_valid(request.header("traceparent") or "")
