"""``psd2_daily`` points: ``prober report --write`` materialises the known history of
``tests/report_history.py`` in a real InfluxDB 1.6; the report read from them is the one
computed from the raw points; every panel of the "PSD2 availability" dashboard, its
macros expanded as Grafana expands them, shows the same figures as
``prober report --format json``; late data, a point of another version, rewriting."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from grafana.check import DASHBOARD_DIR
from grafana.expand import TimeRange, expand, variables_of
from prober.cli import main
from prober.results import Outcome
from tests.fixtures.servers import InfluxDatabase, InfluxDBServer, new_database
from tests.report_history import CONFIG, NS, SITES, Setup, at, history, run

DAYS = [f"2026-03-0{d}" for d in range(2, 8)]
MON, FRI, SAT = DAYS[0], DAYS[4], DAYS[5]
DASHBOARD = json.loads((DASHBOARD_DIR / "psd2-availability.json").read_text())
RANGE = TimeRange(at(0) * 1000, at(6) * 1000 - 1)


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["report", *args])
    return code, out.getvalue(), err.getvalue()


def report(setup: Setup, *extra: str) -> dict:
    code, out, err = cli("-c", str(setup.config), "--from", MON, "--to", SAT, "--format", "json", *extra)
    assert code == 0, err
    return json.loads(out)


def materialise(setup: Setup, first: str = MON, last: str = SAT) -> str:
    code, _, err = cli("-c", str(setup.config), "--from", first, "--to", last, "--write")
    assert code == 0, err
    return err


def _history_db(server: InfluxDBServer, tmp: Path, prefix: str) -> Setup:
    db = new_database(server, prefix)
    server.write_lines(db.name, history())
    path = tmp / f"{prefix}.toml"
    path.write_text(CONFIG.format(url=db.url, db=db.name) + SITES)
    return Setup(db, path)


@pytest.fixture(scope="module")
def setup(influxdb_v1: InfluxDBServer, tmp_path_factory) -> Iterator[Setup]:
    made = _history_db(influxdb_v1, tmp_path_factory.mktemp("daily"), "daily")
    try:
        assert "wrote 54 psd2_daily points: 2026-03-02 to 2026-03-07 (UTC)" in materialise(made)
        yield made
    finally:
        influxdb_v1.drop_database(made.db.name)


@pytest.fixture(scope="module")
def data(setup) -> dict:
    return report(setup)


def comparable(doc: dict) -> dict:
    """A report without what says where it came from."""
    doc = {k: v for k, v in doc.items() if k not in ("generated_at", "notes")}
    doc["days"] = [{k: v for k, v in d.items() if k != "source"} for d in doc["days"]]
    return doc


def test_one_point_per_site_side_interface_and_day_and_rewriting_overwrites(setup):
    rows = setup.db.query('SELECT * FROM "psd2_daily" GROUP BY *')
    assert len(rows) == 6 * 6 + 3 * 6  # 6 streams × 6 days, and 3 site-sides × 6 days of "all"
    assert {r["tz"] for r in rows} == {"UTC"} and {r["schema"] for r in rows} == {1}
    materialise(setup, SAT, SAT)  # again: same series and timestamps, nothing added
    assert len(setup.db.query('SELECT * FROM "psd2_daily" GROUP BY *')) == len(rows)


def test_the_report_from_daily_points_is_the_report_from_raw_points(setup, data):
    assert {d["source"] for d in data["days"]} == {"stored"}
    assert "read from psd2_daily points" in " ".join(data["notes"])
    raw = report(setup, "--recompute")
    assert {d["source"] for d in raw["days"]} == {"raw"}
    for a, b in zip(comparable(data)["days"], comparable(raw)["days"], strict=True):
        assert a == b
    assert comparable(data) == comparable(raw)


def panel_rows(db: InfluxDatabase, title: str) -> list[dict]:
    item = next(p for p in DASHBOARD["panels"] if p["title"] == title)
    query = expand(item["targets"][0]["query"], variables_of(DASHBOARD, {"tz": ["UTC"]}), time_range=RANGE)
    assert "$" not in query.replace("$/", "/"), query
    return db.query(query)


def day_of(row: dict) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(row["time"] / NS, UTC).date().isoformat()


def test_dashboard_daily_panels_show_the_report_figures(setup, data):
    known = {(d["site"], d["api"], d["interface"], d["day"]): d for d in data["days"] if d["known"]}
    rows = panel_rows(setup.db, "Daily uptime and downtime per bank and interface")
    assert {(r["site"], r["api"], r["interface"], day_of(r)) for r in rows} == set(known)
    for row in rows:
        day = known[(row["site"], row["api"], row["interface"], day_of(row))]
        assert row["uptime %"] == pytest.approx(day["uptime_pct"], abs=1e-9)
        assert (row["down s"], row["planned s"], row["unplanned s"], row["incident s"]) == (
            day["downtime_s"], day["planned_downtime_s"], day["unplanned_downtime_s"], day["incident_downtime_s"])
        assert (row["probes"], row["failed probes"]) == (day["probes"], day["failed_probes"])
        assert row["worse than customer interface"] == ";".join(day["worse_than_psu"] or [])
    series = panel_rows(setup.db, "Daily uptime")
    assert sorted((r["site"], r["api"], r["interface"], day_of(r), r["uptime_pct"]) for r in series) == sorted(
        (*k, d["uptime_pct"]) for k, d in known.items())
    timed = {(d["site"], d["api"], d["interface"], d["day"]): d for d in data["days"] if d["ttlb_count"]}
    times = panel_rows(setup.db, "Daily response times (answered requests)")
    assert len(times) == len(timed)
    for row in times:
        day = timed[(row["site"], row["api"], row["interface"], day_of(row))]
        assert (row["TTFB mean ms"], row["TTFB p95 ms"], row["TTLB mean ms"], row["TTLB p95 ms"], row["answered"]) == (
            pytest.approx(day["ttfb_mean_ms"]), day["ttfb_p95_ms"], pytest.approx(day["ttlb_mean_ms"]),
            day["ttlb_p95_ms"], day["ttlb_count"])
    errors = {(r["site"], r["api"], r["interface"], day_of(r)): r for r in panel_rows(setup.db, "Daily error rate")}
    expected = {(d["site"], d["api"], d["interface"], d["day"]): d for d in data["days"] if d["requests"]}
    expected.update({(e["site"], e["api"], "all", e["day"]): e for e in data["daily_errors"] if e["requests"]})
    assert set(errors) == set(expected)
    for key, row in errors.items():
        assert row["error %"] == pytest.approx(expected[key]["error_rate_pct"])
        assert (row["errors"], row["requests"]) == (expected[key]["errors"], expected[key]["requests"])


def test_dashboard_summary_shows_the_report_summary(setup, data):
    rows = {(r["site"], r["api"], r["interface"]): r for r in panel_rows(setup.db, "Range summary against 99.5 %")}
    assert set(rows) == {(s["site"], s["api"], s["interface"]) for s in data["summaries"]}
    for s in data["summaries"]:
        row = rows[(s["site"], s["api"], s["interface"])]
        assert row["uptime %"] == pytest.approx(s["uptime_pct"], abs=1e-9)
        assert row["uptime, unplanned downtime only %"] == pytest.approx(s["unplanned_uptime_pct"], abs=1e-9)
        assert (row["planned s"], row["unplanned s"]) == (s["planned_downtime_s"], s["unplanned_downtime_s"])
        assert (row["known days"], row["probes"]) == (s["known_days"], s["probes"])
        assert row["error %"] == pytest.approx(s["error_rate_pct"])
        assert row["TTLB mean ms"] == pytest.approx(s["ttlb_mean_ms"])
        assert row["TTFB mean ms"] == pytest.approx(s["ttfb_mean_ms"])


def test_late_data_and_a_point_of_another_version(influxdb_v1, tmp_path):
    late = _history_db(influxdb_v1, tmp_path, "late")
    try:
        materialise(late)
        # Friday's results arrive late (a spool replayed): transfer failed 09:00-10:00
        lines = []
        for minute in range(1440):
            t = at(4) + 60 * minute
            lines += run("alpha", "accounts", "accounts", "par", t + 10)
            bad = at(4, 9) <= t < at(4, 10)
            lines += run("alpha", "transfer", "transfer", "par", t + 20, Outcome.HTTP_STATUS if bad else Outcome.OK)
        influxdb_v1.write_lines(late.db.name, lines)

        def friday(doc: dict) -> dict:
            return next(d for d in doc["days"] if (d["site"], d["api"], d["interface"], d["day"]) == (
                "alpha", "dedicated", "pis", FRI))

        # the materialised Friday stays as written until it is written again…
        assert friday(report(late))["known"] is False
        # …or the report is asked to recompute
        assert friday(report(late, "--recompute"))["downtime_s"] == 3600.0
        materialise(late, FRI, FRI)
        assert friday(report(late))["downtime_s"] == 3600.0 and friday(report(late))["source"] == "stored"

        # a point of another layout version (here: schema 0) is not read: Monday is computed
        midnight = at(0) * NS
        influxdb_v1.write_lines(late.db.name, [
            f"psd2_daily,api=dedicated,interface=pis,site=alpha,tz=UTC schema=0i,uptime_pct=12.5 {midnight}"])
        monday = next(d for d in report(late)["days"] if (d["site"], d["interface"], d["day"]) == ("alpha", "pis", MON))
        assert monday["source"] == "raw" and monday["downtime_s"] == 5400.0
        materialise(late, MON, MON)  # overwrites it
        (point,) = late.db.query(f'SELECT "schema", "uptime_pct" FROM "psd2_daily" WHERE "site" = \'alpha\' AND '
                                 f'"api" = \'dedicated\' AND "interface" = \'pis\' AND time = {midnight}')
        assert point["schema"] == 1 and point["uptime_pct"] == pytest.approx(100 - 100 * 5400 / 86400)
    finally:
        influxdb_v1.drop_database(late.db.name)


def test_points_of_another_time_zone_are_not_mixed_in(setup):
    code, out, err = cli("-c", str(setup.config), "--from", MON, "--to", SAT, "--format", "json", "--tz",
                         "Europe/Paris")
    assert code == 0, err
    doc = json.loads(out)
    assert {d["source"] for d in doc["days"]} == {"raw"}  # only UTC days were materialised
