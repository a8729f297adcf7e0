"""Pure logic of ``prober report``: the five-failures rule, intervals, incidents,
maintenance windows, interface mapping, InfluxQL quoting, formats (no servers)."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.dom.minidom
from datetime import date

import pytest

from prober.config.incidents import MaintenanceWindow
from prober.report.compute import Scope, build_report, day_bounds
from prober.report.downtime import incident_intervals, maintenance_intervals, rule_downtime, spacing_ms, window_ms
from prober.report.formats import to_text
from prober.report.influx import Fetched, own_clause, quote_tag
from prober.report.interfaces import Catalog, Overrides, interfaces_of
from prober.report.intervals import intersect, overlap_ms, union
from prober.report.text import clean

S = 1000


def seq(*pairs: tuple[int, int]) -> tuple[list[int], list[int]]:
    return [t * S for t, _ in pairs], [ok for _, ok in pairs]


def test_five_failures_within_30_s_are_down_from_the_first_until_the_next_success():
    times, ok = seq((0, 1), (5, 0), (10, 0), (15, 0), (20, 0), (25, 0), (30, 0), (35, 1), (40, 0))
    assert rule_downtime(times, ok, 30 * S, 5 * S) == [(5 * S, 35 * S)]


def test_four_failures_or_five_spread_over_more_than_30_s_are_not_down():
    four = seq((0, 0), (5, 0), (10, 0), (15, 0), (20, 1))
    assert rule_downtime(*four, 30 * S, 5 * S) == []
    spread = seq((0, 0), (10, 0), (20, 0), (30, 0), (31, 1), (40, 0))
    assert rule_downtime(*spread, 30 * S, 5 * S) == []
    wide = seq((0, 0), (8, 0), (16, 0), (24, 0), (32, 0), (40, 1))  # first to fifth: 32 s
    assert rule_downtime(*wide, 30 * S, 5 * S) == []
    exact = seq((0, 0), (7, 0), (15, 0), (22, 0), (30, 0), (40, 1))  # first to fifth: 30 s
    assert rule_downtime(*exact, 30 * S, 5 * S) == [(0, 40 * S)]


def test_a_success_between_failures_resets_the_count():
    times, ok = seq((0, 0), (5, 0), (10, 0), (15, 0), (20, 1), (25, 0), (30, 0), (35, 0), (40, 0), (45, 1))
    assert rule_downtime(times, ok, 30 * S, 5 * S) == []


def test_the_downtime_starts_at_the_first_of_the_earliest_qualifying_five():
    # 0 and 40 too far apart from the rest; 40..60 are five within 20 s
    times, ok = seq((0, 0), (40, 0), (45, 0), (50, 0), (55, 0), (60, 0), (90, 1))
    assert rule_downtime(times, ok, 30 * S, 5 * S) == [(40 * S, 90 * S)]


def test_failures_at_the_end_of_the_data_last_one_spacing_past_the_last():
    times, ok = seq((0, 1), (5, 0), (10, 0), (15, 0), (20, 0), (25, 0))
    assert rule_downtime(times, ok, 30 * S, 5 * S) == [(5 * S, 30 * S)]


def test_sparse_probes_stretch_the_window_to_four_and_a_half_spacings():
    assert window_ms(None) == 30 * S and window_ms(5 * S) == 30 * S
    assert window_ms(60 * S) == 270 * S
    login = [t * 60 * S for t in range(10)]
    accounts = [t * 60 * S + 30 * S for t in range(10)]
    assert spacing_ms([login, accounts]) == pytest.approx(30 * S)
    assert window_ms(spacing_ms([login, accounts])) == 135 * S


def test_interval_arithmetic():
    assert union([(5, 10), (0, 3), (2, 6), (20, 20), (12, 15)]) == [(0, 10), (12, 15)]
    assert intersect([(0, 10), (20, 30)], [(5, 25)]) == [(5, 10), (20, 25)]
    assert overlap_ms([(0, 10), (20, 30)], 5, 25) == 10


def test_incident_intervals():
    events = [(100, "open", 0.0), (200, "resolved", 0.1), (500, "resolved", 0.2), (900, "open", 0.0)]
    assert incident_intervals(events, 1000) == [(100, 200), (300, 500), (900, 1000)]


def _ms(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text).timestamp() * 1000)


def test_maintenance_windows_one_off_and_weekly_past_midnight():
    one_off = MaintenanceWindow(start="2026-03-04T03:00:00Z", end="2026-03-04T04:00:00Z")
    start, end = _ms("2026-03-02T00:00:00+00:00"), _ms("2026-03-09T00:00:00+00:00")
    assert maintenance_intervals(one_off, start, end) == [
        (_ms("2026-03-04T03:00:00+00:00"), _ms("2026-03-04T04:00:00+00:00"))
    ]
    weekly = MaintenanceWindow.model_validate({"weekdays": ["sun"], "from": "23:00", "to": "01:00"})
    # Sunday 1 March 23:00 → Monday 02:00 is cut at the start of the range
    assert maintenance_intervals(weekly, start, end) == [
        (start, _ms("2026-03-02T01:00:00+00:00")),
        (_ms("2026-03-08T23:00:00+00:00"), end)]


def test_interfaces_by_kind_unless_configured():
    assert interfaces_of("b", "login", "login", {}) == ("ais", "pis", "cof")
    assert interfaces_of("b", "x", "accounts", {}) == ("ais",)
    assert interfaces_of("b", "x", "transfer", {}) == ("pis",)
    assert interfaces_of("b", "x", "payments", {}) == ("cof",)
    assert interfaces_of("b", "x", "cards", {}) == ()
    overrides: Overrides = {("b", "x"): ("cof",), ("b", "login"): ()}
    assert interfaces_of("b", "x", "cards", overrides) == ("cof",)
    assert interfaces_of("b", "login", "login", overrides) == ()
    assert interfaces_of("other", "login", "login", overrides) == ("ais", "pis", "cof")


def test_influxql_literals_are_escaped():
    assert quote_tag("it's \\ here") == "'it\\'s \\\\ here'"
    catalog = Catalog(overrides={("b", "x'y"): ("cof",)}, kinds={("b", "x'y"): "custom"})
    assert own_clause("cof", "dedicated", catalog) == (
        '(("kind" =~ /^(payments)$/ AND ("site" != \'b\' OR "check" != \'x\\\'y\')) OR '
        '("site" = \'b\' AND "check" = \'x\\\'y\'))')
    assert own_clause("cof", "psu", catalog) is None


def test_own_clauses_keep_login_out_and_put_psu_checks_apart():
    catalog = Catalog(overrides={("b", "auth"): ("ais",)}, psu=frozenset({("b", "web")}),
                      kinds={("b", "auth"): "login", ("b", "web"): "accounts"})
    dedicated = own_clause("ais", "dedicated", catalog)
    assert dedicated is not None and "login" not in dedicated
    assert "(\"site\" != 'b' OR \"check\" != 'web')" in dedicated
    assert own_clause("ais", "psu", catalog) == "((\"site\" = 'b' AND \"check\" = 'web'))"


HOSTILE = "=cmd|'/c calc'!A1<script>alert(1)</script>\x1b[31m"


def _hostile_report():
    from array import array

    first = date(2026, 3, 2)
    bounds = day_bounds(first, first, __import__("zoneinfo").ZoneInfo("UTC"))
    fetched = Fetched()
    oks = [1, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    ok_key = (HOSTILE, "accounts", "accounts", "par", "ok")
    failed_key = (HOSTILE, "accounts", "accounts", "par", "http_status")
    fetched.runs[ok_key] = array("q", [bounds[0] + i * 60_000 for i in range(10) if oks[i]])
    fetched.runs[failed_key] = array("q", [bounds[0] + i * 60_000 for i in range(10) if not oks[i]])
    fetched.failures[failed_key] = ["<img src=x onerror=alert(1)> & \"quoted\""] * 5
    fetched.replied[(*ok_key, 0)] = 5
    fetched.raw_replies.add((HOSTILE, 0))
    scope = Scope(first=first, last=first, tz="UTC", bounds=bounds, now_ms=bounds[-1] + 1)
    return build_report(fetched, scope, "2026-03-03T00:00:00+00:00")


def test_every_format_neutralises_hostile_names_and_errors():
    report = _hostile_report()
    day = report.days[0]
    assert day.downtime_s == 300.0 and day.probes == 10 and day.failed_probes == 5
    page = to_text(report, "html")
    assert "<script>" not in page and "<img" not in page and "\x1b" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "Content-Security-Policy" in page and "<svg" in page
    for svg in re.findall(r"<svg.*?</svg>", page, re.S):
        xml.dom.minidom.parseString(svg)  # well-formed, whatever the data held
    rows = list(csv.reader(io.StringIO(to_text(report, "csv"))))
    assert rows[1][0].startswith("'=cmd")
    table = to_text(report, "table")
    assert "\x1b" not in table and clean(HOSTILE) in table
    data = json.loads(to_text(report, "json"))
    assert data["summaries"][0]["site"] == HOSTILE
    assert data["summaries"][0]["top_errors"] == [["<img src=x onerror=alert(1)> & \"quoted\"", 5]]


def test_an_unknown_psd2_interface_is_a_config_error_with_its_field_path(tmp_path):
    import subprocess
    import sys

    config = tmp_path / "p.toml"
    config.write_text('[[sites]]\nname = "bank"\nbase_url = "http://127.0.0.1:9"\n[[sites.checks]]\nname = "web"\n'
                      'kind = "accounts"\npsd2_interface = "customer"\nsteps = [{ name = "call", path = "/x" }]\n')
    done = subprocess.run([sys.executable, "-m", "prober", "validate", "-c", str(config)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{config}: sites[bank].checks[web].psd2_interface: Input should be 'dedicated' or 'psu'" in done.stderr
    config.write_text(config.read_text().replace('"customer"', '"psu"'))
    done = subprocess.run([sys.executable, "-m", "prober", "validate", "-c", str(config)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_sparse_rule_gives_what_the_rule_gives_on_every_sequence():
    import bisect
    import random

    from prober.report.downtime import rule_downtime_sparse

    rng = random.Random(7)
    for _ in range(2000):
        n = rng.randint(0, 60)
        times = sorted(rng.randint(0, 600) * S for _ in range(n))
        ok = [1 if rng.random() < rng.choice((0.1, 0.5, 0.9)) else 0 for _ in range(n)]
        pairs = sorted(zip(times, ok, strict=True))
        times, ok = [t for t, _ in pairs], [o for _, o in pairs]
        failures = [t for t, o in pairs if not o]
        replies = [t for t, o in pairs if o]

        def next_reply(t: int, replies=replies) -> int | None:
            i = bisect.bisect_left(replies, t)
            return replies[i] if i < len(replies) else None

        window, tail = rng.choice((30 * S, 135 * S)), 20 * S
        assert rule_downtime_sparse(failures, next_reply, window, tail) == rule_downtime(times, ok, window, tail), pairs


def test_records_become_line_protocol_with_typed_fields_and_escaped_tags():
    from prober.writer.records import record_line

    record = ("psd2_daily", {"site": "bank a,1", "tz": "Europe/Paris", "api": "", "interface": "ais"},
              {"schema": 1, "uptime_pct": 99.5, "worse_than_psu": 'up"time', "known": True, "nan": float("nan")},
              1_772_409_600_000)
    assert record_line(record) == (
        'psd2_daily,interface=ais,site=bank\\ a\\,1,tz=Europe/Paris known=true,schema=1i,uptime_pct=99.5,'
        'worse_than_psu="up\\"time" 1772409600000000000')
    assert record_line(record, "s").endswith(" 1772409600")
