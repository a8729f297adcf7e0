"""Line protocol serialization: schema, types, escaping; checked by parsing and by a real InfluxDB."""

from __future__ import annotations

import urllib.request
from types import SimpleNamespace
from typing import Any

import pytest

from prober.config.types import Precision
from prober.results import JourneyResult, Outcome, Phases, StepResult
from prober.writer.incidents import IncidentPoints
from prober.writer.points import (
    escape_field_string,
    escape_tag,
    incident_point,
    journey_lines,
    prober_point,
    rescale_lines,
)

T0 = 1_700_000_000_123_456_789


def result(**overrides: Any) -> JourneyResult:
    steps = [
        StepResult("login", Outcome.OK, 12.5, Phases(1.0, 2.0, 3.0, 4.0, 2.5), 200, 512, started_at_ns=T0),
        StepResult("balances", Outcome.ASSERTION, 7.0, Phases(0, 0, 0, 6.0, 1.0), 200, 64,
                   error='assertion: balance "0"', started_at_ns=T0 + 20_000_000),
        StepResult("transfer", Outcome.SKIPPED),
        StepResult("logout", Outcome.CONNECT, 1.0, None, None, 0, error="connect: refused",
                   always_run=True, started_at_ns=T0 + 40_000_000),
    ]
    fields: dict[str, Any] = dict(site="bank-a", check="daily", kind="accounts", location="par",
                                  outcome=Outcome.ASSERTION, started_at_ns=T0, duration_ms=41.0,
                                  steps=tuple(steps), failed_step="balances", error='assertion: balance "0"')
    fields.update(overrides)
    return JourneyResult(**fields)


def test_one_check_point_and_one_step_point_per_executed_step():
    lines = journey_lines(result())
    assert [line.split(",", 1)[0] for line in lines] == ["check", "step", "step", "step"]
    assert not any("step=transfer" in line for line in lines)  # skipped: no point
    assert lines[0] == (
        "check,check=daily,kind=accounts,location=par,outcome=assertion,site=bank-a "
        'success=0i,duration_ms=41.0,failed_step="balances",error="assertion: balance \\"0\\"",steps=4i '
        f"{T0}"
    )
    assert lines[1] == (
        "step,check=daily,kind=accounts,location=par,outcome=ok,site=bank-a,step=login "
        "success=1i,duration_ms=12.5,dns_ms=1.0,connect_ms=2.0,tls_ms=3.0,ttfb_ms=4.0,transfer_ms=2.5,"
        f'http_status=200i,bytes=512i,error="" {T0}'
    )


def test_types_and_absent_measurements():
    lines = journey_lines(result())
    logout = lines[3]
    assert "outcome=connect" in logout and "success=0i" in logout
    assert "http_status" not in logout and "dns_ms" not in logout  # no response, no phases
    assert logout.endswith(f" {T0 + 40_000_000}")
    ok = journey_lines(result(outcome=Outcome.OK, failed_step="", error="", steps=[]))[0]
    assert 'success=1i' in ok and 'failed_step="",error=""' in ok and "steps=0i" in ok
    # integral floats stay floats; NaN is left out rather than written invalid
    odd = journey_lines(result(duration_ms=float("nan"), steps=[StepResult("s", Outcome.OK, 3, started_at_ns=5)]))
    assert "duration_ms" not in odd[0]
    assert "duration_ms=3.0" in odd[1]


def test_step_without_timestamp_uses_the_journey_start():
    lines = journey_lines(result(steps=[StepResult("s", Outcome.OK, 1.0)]))
    assert lines[1].endswith(f" {T0}")


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("a b", "a\\ b"),
        ("a,b", "a\\,b"),
        ("a=b", "a\\=b"),
        ("new\nline\ttab", "new line tab"),
        ("back\\slash\\", "back/slash/"),
    ],
)
def test_escape_tag(raw, escaped):
    assert escape_tag(raw) == escaped


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("", '""'),
        ('say "hi"', '"say \\"hi\\""'),
        ("c:\\dir", '"c:\\\\dir"'),
        ("two\nlines\r\n", '"two lines  "'),
        ("a,b=c d", '"a,b=c d"'),
    ],
)
def test_escape_field_string(raw, escaped):
    assert escape_field_string(raw) == escaped


def test_empty_tag_values_are_left_out():
    line = journey_lines(result(location="", steps=[]))[0]
    assert "location=" not in line


def test_precision_scales_timestamps():
    assert journey_lines(result(steps=[]), "ms")[0].endswith(f" {T0 // 1_000_000}")
    assert journey_lines(result(steps=[]), "s")[0].endswith(f" {T0 // 1_000_000_000}")
    text = "m v=1i 1500000000\nm,a=b\\ c v=2i 2500000000"
    assert rescale_lines(text, "ns", "s") == "m v=1i 1\nm,a=b\\ c v=2i 2"
    assert rescale_lines("m v=1i 2", "s", "ms") == "m v=1i 2000"


def test_incident_and_prober_points():
    assert incident_point(site="bank a", check="c", kind="cards", location="par", state="open",
                          reason="3 failures", failed_step="freeze", duration_s=0, time_ns=7) == (
        'incident,check=c,kind=cards,location=par,site=bank\\ a,state=open '
        'reason="3 failures",failed_step="freeze",duration_s=0.0 7'
    )
    with pytest.raises(ValueError):
        incident_point(site="a", check="c", kind="k", location="l",
                       state="closed",  # type: ignore[arg-type]  # an unknown state, on purpose
                       reason="",
                       failed_step="", duration_s=1, time_ns=1)
    line = prober_point(location="par", instance="host-1", time_ns=9, checks=12, running=3,
                        schedule_lag_ms=1.5, written_points=10, spooled_points=2, dropped_points=1,
                        write_errors=4, last_error='HTTP 503: "down"')
    assert line == (
        "prober,instance=host-1,location=par checks=12i,running=3i,schedule_lag_ms=1.5,written_points=10i,"
        'spooled_points=2i,dropped_points=1i,write_errors=4i,last_error="HTTP 503: \\"down\\"" 9'
    )


def test_hostile_strings_round_trip_through_influxdb(influx_db):
    """What the encoder escapes, InfluxDB 1.6 reads back as intended."""
    nasty = 'a "quoted", \\ back=slashed\nline'
    r = result(site="bank, a=b c", check="chk\\x", error=nasty, steps=[])
    body = "\n".join(journey_lines(r))
    request = urllib.request.Request(f"{influx_db.url}/write?db={influx_db.name}", data=body.encode(), method="POST")
    assert urllib.request.urlopen(request).status == 204
    rows = influx_db.query('SELECT * FROM "check"')
    assert len(rows) == 1
    assert rows[0]["site"] == "bank, a=b c"
    assert rows[0]["check"] == "chk/x"
    assert rows[0]["error"] == 'a "quoted", \\ back=slashed line'
    assert rows[0]["success"] == 0 and rows[0]["time"] == T0


def test_check_own_tags_on_check_and_step_points_in_key_order():
    tags = (("a_zone", "eu"), ("merchant_country", "US"), ("tier", "gold"))
    check_line, step_line = journey_lines(result(tags=tags))[:2]
    assert check_line.split(" ", 1)[0] == (
        "check,a_zone=eu,check=daily,kind=accounts,location=par,merchant_country=US,outcome=assertion,"
        "site=bank-a,tier=gold"
    )
    assert step_line.split(" ", 1)[0] == (
        "step,a_zone=eu,check=daily,kind=accounts,location=par,merchant_country=US,outcome=ok,"
        "site=bank-a,step=login,tier=gold"
    )
    # Two checks differing only by their tags do not share a cached prefix.
    assert "merchant_country=FR" in journey_lines(result(tags=(("merchant_country", "FR"),)))[0]
    assert "merchant_country" not in journey_lines(result())[0]


def test_instance_tag_on_check_step_and_incident_points_in_key_order():
    lines = journey_lines(result(tags=(("country", "fr"), ("zone", "eu"))), instance="probe-w2")
    assert lines[0].startswith(
        "check,check=daily,country=fr,instance=probe-w2,kind=accounts,location=par,outcome=assertion,"
        "site=bank-a,zone=eu "
    ), lines[0]
    assert all(",instance=probe-w2," in line for line in lines)
    assert lines[1].startswith("step,check=daily,country=fr,instance=probe-w2,kind=accounts,location=par,"
                               "outcome=ok,site=bank-a,step=login,zone=eu "), lines[1]
    # Two instances never share a series: the cached tag prefix is per instance.
    assert ",instance=probe-w1," in journey_lines(result(), instance="probe-w1")[0]
    assert "instance=" not in journey_lines(result())[0]
    assert incident_point(site="a", check="c", kind="cards", location="par", state="open", reason="r",
                          failed_step="", duration_s=0, time_ns=7, instance="probe-s1").startswith(
        "incident,check=c,instance=probe-s1,kind=cards,location=par,site=a,state=open ")


def test_incident_points_from_state_changes():
    """Opened: dated by the estimated start, duration 0; resolved: by the estimated end,
    with the duration; reminders write nothing; every point names the instance."""
    class Lines:
        precision: Precision = "ms"

        def __init__(self) -> None:
            self.lines: list[str] = []

        def submit_lines(self, lines: list[str]) -> None:
            self.lines.extend(lines)

    incident = SimpleNamespace(site="b", check="c", kind="cards", location="par", reason="r", failed_step="s",
                               since_ns=5_000_000, resolved_ns=None, duration_s=3.0)
    writer = Lines()
    points = IncidentPoints(writer, instance="host-1")
    points(SimpleNamespace(event="opened", incident=incident))
    points(SimpleNamespace(event="reminder", incident=incident))
    incident.resolved_ns = 9_000_000
    points(SimpleNamespace(event="resolved", incident=incident))
    assert writer.lines == [
        'incident,check=c,instance=host-1,kind=cards,location=par,site=b,state=open '
        'reason="r",failed_step="s",duration_s=0.0 5',
        'incident,check=c,instance=host-1,kind=cards,location=par,site=b,state=resolved '
        'reason="r",failed_step="s",duration_s=3.0 9',
    ]
