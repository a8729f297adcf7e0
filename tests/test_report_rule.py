"""``prober report`` on the known history of ``tests/report_history.py`` in a real InfluxDB
1.6: each interface judged by its own probes, exact seconds asserted.

A login run that failed is a failed probe of every interface; one that succeeded is a
probe of none. Outages are exact in this history (the runs are on the minute), so the
expected seconds are exact too; for a real outage they are right to within one probe
interval at each end.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from prober.cli import main
from prober.results import Outcome
from tests.fixtures.servers import InfluxDBServer, new_database
from tests.report_history import CONFIG, DAY, SITES, Setup, at, history, run, saturday_timeout, saturday_ttfb

DAYS = [f"2026-03-0{d}" for d in range(2, 8)]
MON, TUE, WED, THU, FRI, SAT = DAYS


@pytest.fixture(scope="module")
def setup(influxdb_v1: InfluxDBServer, tmp_path_factory) -> Iterator[Setup]:
    db = new_database(influxdb_v1, "rule")
    try:
        influxdb_v1.write_lines(db.name, history())
        path = tmp_path_factory.mktemp("rule") / "prober.toml"
        path.write_text(CONFIG.format(url=db.url, db=db.name) + SITES)
        yield Setup(db, path)
    finally:
        influxdb_v1.drop_database(db.name)


def report(config: Path, capsys, *extra: str, first: str = MON, last: str = SAT) -> dict:
    code = main(["report", "-c", str(config), "--from", first, "--to", last, "--format", "json", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def data(setup) -> dict:
    """The JSON report of the whole history (computed once for the module)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["report", "-c", str(setup.config), "--from", MON, "--to", SAT, "--format", "json"]) == 0
    return json.loads(buffer.getvalue())


def days_of(data: dict, site: str, interface: str, api: str = "dedicated") -> dict[str, dict]:
    return {d["day"]: d for d in data["days"]
            if d["site"] == site and d["interface"] == interface and d["api"] == api}


def seconds(data: dict, site: str, interface: str, field: str = "downtime_s", api: str = "dedicated") -> list:
    rows = days_of(data, site, interface, api)
    return [rows[d][field] for d in DAYS]


def summary_of(data: dict, site: str, interface: str, api: str = "dedicated") -> dict:
    return next(s for s in data["summaries"] if (s["site"], s["interface"], s["api"]) == (site, interface, api))


def test_streams_are_the_interfaces_fed_by_a_check_other_than_login(data):
    assert [(s["site"], s["api"], s["interface"]) for s in data["summaries"]] == [
        ("alpha", "dedicated", "ais"), ("alpha", "psu", "ais"), ("alpha", "dedicated", "pis"),
        ("alpha", "dedicated", "cof"), ("beta", "dedicated", "ais"), ("beta", "dedicated", "pis")]


def test_a_payment_outage_while_login_works_is_downtime_of_payment_initiation(data):
    # Mon 10:00-11:30: the first failed transfer at 10:00:20, the next success at 11:30:20
    assert seconds(data, "alpha", "pis")[0] == 5400.0
    mon = days_of(data, "alpha", "pis")[MON]
    assert mon["uptime_pct"] == pytest.approx(100 - 100 * 5400 / DAY, abs=1e-9)
    assert (mon["planned_downtime_s"], mon["unplanned_downtime_s"]) == (0.0, 5400.0)
    assert mon["failed_probes"] == 90 and mon["probes"] == 1440  # login's successes are no probe of PIS
    # the other interfaces answered
    assert seconds(data, "alpha", "ais")[0] == 0.0 and seconds(data, "alpha", "cof")[0] == 0.0
    summary = summary_of(data, "alpha", "pis")
    assert summary["meets_benchmark"] is False and summary["days_below_benchmark"] == 3


def test_an_outage_of_everything_counts_for_all_three_interfaces_across_midnight(data):
    # Tue 23:00 -> Wed 01:00: down from the first failed login (23:00:00) until each
    # interface's next successful probe (01:00:10, :20, :30)
    assert seconds(data, "alpha", "ais")[1:3] == [3600.0, 3610.0 + 2400.0]
    assert seconds(data, "alpha", "pis")[1:3] == [3600.0, 3620.0]
    assert seconds(data, "alpha", "cof")[1:3] == [3600.0, 3630.0]


def test_downtime_inside_a_maintenance_window_is_planned(data):
    pis = days_of(data, "alpha", "pis")
    # the window for transfer, Tue 23:30 -> Wed 00:30, straddles midnight
    assert (pis[TUE]["planned_downtime_s"], pis[TUE]["unplanned_downtime_s"]) == (1800.0, 1800.0)
    assert (pis[WED]["planned_downtime_s"], pis[WED]["unplanned_downtime_s"]) == (1800.0, 1820.0)
    ais = days_of(data, "alpha", "ais")
    # accounts 03:00:10-03:40:10 inside 03:00-04:00; the window is for accounts, not transfer
    assert (ais[WED]["planned_downtime_s"], ais[WED]["unplanned_downtime_s"]) == (2400.0, 3610.0)
    assert days_of(data, "alpha", "cof")[TUE]["planned_downtime_s"] == 0.0
    # Sat 23:50:10 to the end of the data (the last failure + one spacing, cut at midnight),
    # inside a weekly window that runs past the end of the range
    assert (ais[SAT]["downtime_s"], ais[SAT]["planned_downtime_s"]) == (590.0, 590.0)
    summary = summary_of(data, "alpha", "ais")
    assert summary["planned_downtime_s"] == 2400.0 + 590.0 and summary["unplanned_downtime_s"] == 3600.0 + 3610.0
    assert summary["unplanned_uptime_pct"] == pytest.approx(100 - 100 * 7210 / (5 * DAY), abs=1e-9)


def test_the_maintenance_windows_that_applied_are_listed_per_day(data):
    spans = [(m["site"], m["day"], m["kinds"], m["start"], m["end"]) for m in data["maintenance"]]
    assert spans == [
        ("alpha", TUE, ["transfer"], "2026-03-03T23:30:00Z", "2026-03-04T00:30:00Z"),
        ("alpha", WED, ["transfer"], "2026-03-03T23:30:00Z", "2026-03-04T00:30:00Z"),
        ("alpha", WED, ["accounts"], "2026-03-04T03:00:00Z", "2026-03-04T04:00:00Z"),
        ("alpha", SAT, ["accounts"], "2026-03-07T23:00:00Z", "2026-03-08T01:00:00Z")]
    assert data["maintenance"][0]["description"] == "payments platform upgrade"


def test_isolated_failures_and_failed_logins_between_replies_are_not_downtime(data):
    thu = {i: days_of(data, "alpha", i)[THU] for i in ("ais", "pis", "cof")}
    assert [thu[i]["downtime_s"] for i in thu] == [0.0, 0.0, 0.0]
    assert thu["pis"]["failed_probes"] == 24 and thu["ais"]["failed_probes"] == 4
    # Sat 12:00-12:30 login fails, accounts keeps answering in between
    sat = days_of(data, "alpha", "pis")[SAT]
    assert sat["downtime_s"] == 0.0 and sat["failed_probes"] == 30 and sat["probes"] == 1440 + 30


def test_a_day_without_data_is_unknown(data):
    for interface in ("ais", "pis", "cof"):
        fri = days_of(data, "alpha", interface)[FRI]
        assert fri["known"] is False and fri["uptime_pct"] is None and fri["probes"] == 0
    summary = summary_of(data, "alpha", "pis")
    assert (summary["days"], summary["known_days"]) == (6, 5)
    assert summary["uptime_pct"] == pytest.approx(100 - 100 * (5400 + 3600 + 3620) / (5 * DAY), abs=1e-9)


def test_locations_answering_in_between_and_an_empty_psd2_list(data):
    # beta: par fails Mon 08:00-09:00 while fra answers in between: not down; both Tue
    # 08:00-08:30: down from 08:00:15 (par) to 08:30:15; two locations, spacing 30 s
    assert seconds(data, "beta", "pis")[:2] == [0.0, 1800.0]
    assert summary_of(data, "beta", "pis")["window_s"] == 135.0
    assert summary_of(data, "alpha", "pis")["window_s"] == 270.0
    # statement (psd2 = []) fails always and counts for nothing
    ais = days_of(data, "beta", "ais")[MON]
    assert ais["downtime_s"] == 0.0 and ais["failed_probes"] == 0 and ais["requests"] == 2 * 1440


def test_response_times_are_over_answered_requests_and_errors_per_interface(data):
    sat = days_of(data, "alpha", "ais")[SAT]
    times = [at(5) + 60 * m + 10 for m in range(1440)]
    answered = sorted(saturday_ttfb(t) for t in times if not saturday_timeout(t))
    assert len(answered) == 1440 - 14
    nearest_rank = answered[int(len(answered) * 0.95 + 0.5) - 1]  # InfluxQL's percentile()
    assert sat["ttfb_count"] == sat["ttlb_count"] == len(answered)
    assert sat["ttfb_mean_ms"] == pytest.approx(sum(answered) / len(answered))
    assert sat["ttlb_mean_ms"] == pytest.approx(2 * sum(answered) / len(answered))
    assert (sat["ttfb_p95_ms"], sat["ttlb_p95_ms"]) == (nearest_rank, 2 * nearest_rank)
    assert sat["ttlb_mean_ms"] <= sat["ttlb_p95_ms"]  # the 8 s timeouts are not response times
    # requests: 1,440 accounts requests + 30 failed logins; errors: 14 timeouts, 10 failures, 30 logins
    assert (sat["requests"], sat["errors"]) == (1470, 54)
    assert sat["error_rate_pct"] == pytest.approx(100 * 54 / 1470)
    pis = days_of(data, "alpha", "pis")[SAT]
    assert (pis["requests"], pis["errors"]) == (1470, 30)
    # every interface together: the failed logins counted once
    overall = next(e for e in data["daily_errors"] if (e["site"], e["api"], e["day"]) == ("alpha", "dedicated", SAT))
    assert (overall["requests"], overall["errors"]) == (3 * 1440 + 30, 54)
    assert "answered requests only" in " ".join(data["notes"])


def test_days_in_a_time_zone_with_a_daylight_saving_change(influxdb_v1, tmp_path, capsys):
    # Europe/Paris, Sunday 29 March 2026: 23 hours (23:00 UTC on the 28th to 22:00 UTC on the 29th)
    db = new_database(influxdb_v1, "dst")
    try:
        start = at(26, 23)  # 2026-03-28T23:00:00Z
        lines = []
        for minute in range(23 * 60):
            t = start + 60 * minute
            bad = at(27, 8) <= t < at(27, 9)  # 10:00-11:00 in Paris
            lines += run("gamma", "accounts", "accounts", "par", t, Outcome.HTTP_STATUS if bad else Outcome.OK)
        influxdb_v1.write_lines(db.name, lines)
        config = tmp_path / "p.toml"
        config.write_text(CONFIG.format(url=db.url, db=db.name))
        data = report(config, capsys, "--tz", "Europe/Paris", first="2026-03-29", last="2026-03-29")
    finally:
        influxdb_v1.drop_database(db.name)
    (day,) = data["days"]
    assert day["day_seconds"] == 23 * 3600 and day["downtime_s"] == 3600.0
    assert day["uptime_pct"] == pytest.approx(100 - 100 * 3600 / (23 * 3600), abs=1e-9)
    assert day["probes"] == 23 * 60


def test_the_customer_interface_is_reported_beside_the_dedicated_one(data):
    # web-accounts (psd2_interface = "psu") is down Sat 14:00:40 -> 14:10:40; the failed
    # logins are of the dedicated interface, so its Tuesday is clean
    assert seconds(data, "alpha", "ais", api="psu") == [0.0, 0.0, 0.0, 0.0, None, 600.0]
    assert days_of(data, "alpha", "ais", "psu")[MON]["ttlb_mean_ms"] == 50.0
    flags = [days_of(data, "alpha", "ais")[d]["worse_than_psu"] for d in DAYS]
    # Mon: the customer interface was slower; Tue/Wed: the dedicated one was down longer;
    # Fri: nothing to compare; Sat: the dedicated one answered slower (TTLB ~39 ms vs 20 ms)
    assert flags == [[], ["uptime"], ["uptime"], [], None, ["response time"]]
    assert summary_of(data, "alpha", "ais")["days_worse_than_psu"] == 3
    assert all(days_of(data, "alpha", "pis")[d]["worse_than_psu"] is None for d in DAYS)  # no PSU check of PIS
    assert summary_of(data, "alpha", "ais", "psu")["uptime_pct"] == pytest.approx(100 - 100 * 600 / (5 * DAY))


def test_csv_and_table_carry_the_customer_interface_columns(setup, capsys):
    code = main(["report", "-c", str(setup.config), "--from", MON, "--to", SAT, "--format", "csv"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = {(r["site"], r["date"]): r for r in csv.DictReader(io.StringIO(out))}
    sat = rows[("alpha", SAT)]
    assert sat["ais_psu_downtime_s"] == "600" and sat["ais_downtime_s"] == "590"
    assert sat["ais_worse_than_psu"] == "response time" and rows[("alpha", TUE)]["ais_worse_than_psu"] == "uptime"
    assert rows[("alpha", FRI)]["ais_psu_uptime_pct"] == "" and rows[("beta", SAT)]["ais_psu_uptime_pct"] == ""
    assert sat["all_requests"] == str(3 * 1440 + 30) and sat["all_errors"] == "54"
    assert rows[("alpha", WED)]["maintenance"] == (
        "2026-03-03T23:30:00Z to 2026-03-04T00:30:00Z (transfer) payments platform upgrade; "
        "2026-03-04T03:00:00Z to 2026-03-04T04:00:00Z (accounts)")
    code = main(["report", "-c", str(setup.config), "--from", MON, "--to", SAT])
    table, _ = capsys.readouterr()
    assert "worse: uptime" in table and "worse: response time" in table and " psu " in table
