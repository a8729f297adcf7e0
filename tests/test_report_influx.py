"""``prober report`` end to end: a known timeline written into a real InfluxDB 1.6, the
command run on it, exact seconds and percentages asserted.

The timeline (UTC, Monday 2 to Friday 6 March 2026):

* ``dense``: one ``accounts`` check every 5 s (five requests fit in 30 s: the rule applies
  literally), every day but Friday:

  - Mon 23:50 → Tue 00:10 every run fails: 600 s down on each side of midnight;
  - Tue 10:00:00–10:00:40 five failures 10 s apart (the runs between are missing): spread
    over 40 s, not down;
  - Wed 12:00:00–12:00:40 four failures, one success, four failures: not down;
    Wed 14:00:00–14:00:20 five failures, success at 14:00:25: 25 s down;
  - Wed 03:00–03:30 and 03:50–04:10 failures inside / across a maintenance window
    03:00–04:00: 2,400 s planned, 600 s unplanned;
  - Thu: every run succeeds, response times vary (exact mean and p95 asserted);
  - Fri: no data at all: unknown;
  - incidents: one resolved Mon 00:05 after 600 s (opened before the range), one open
    Mon 23:50:15 → Tue 00:10:00.

* ``sparse``: ``login`` every 60 s at :00, ``accounts`` at :30, and ``funds`` (kind
  ``custom``, configured ``psd2 = ["cof"]``) at :15, on Monday only. 08:00–08:05 login
  and accounts fail; a weekly Monday window 07:58–08:02 covers ``accounts``. 15:00–15:10
  login fails five times with the runs 15:04–15:09 missing (too far apart).
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from prober.cli import main
from prober.results import JourneyResult, Kind, Outcome, Phases, StepResult
from prober.writer import incident_point, journey_lines
from tests.fixtures.servers import InfluxDatabase, InfluxDBServer, free_port, new_database
from tests.report_history import INFLUXDB, Setup, site

ROOT = Path(__file__).resolve().parent.parent
MON = datetime(2026, 3, 2, tzinfo=UTC)
DAY = 86_400
NS = 1_000_000_000
ERROR = 'HTTP 503 <script>alert("x")</script>'


def at(day: int, hh: int = 0, mm: int = 0, ss: int = 0) -> int:
    """Epoch seconds of Monday + ``day`` days at hh:mm:ss UTC."""
    return int((MON + timedelta(days=day, hours=hh, minutes=mm, seconds=ss)).timestamp())


def run_lines(site: str, check: str, kind: Kind, t: int, ok: bool, ttfb: float, total: float) -> list[str]:
    outcome = Outcome.OK if ok else Outcome.HTTP_STATUS
    step = StepResult("call", outcome, total, Phases(0.1, 0.2, 0.0, ttfb, total - ttfb - 0.3),
                      200 if ok else 503, 100, "" if ok else ERROR, started_at_ns=t * NS)
    result = JourneyResult(site=site, check=check, kind=kind, location="par", outcome=outcome, started_at_ns=t * NS,
                           duration_ms=total, steps=(step,), failed_step="" if ok else "call",
                           error="" if ok else ERROR)
    return journey_lines(result)


def dense_fails(t: int) -> bool:
    windows = [(at(0, 23, 50), at(1, 0, 10)), (at(2, 3), at(2, 3, 30)), (at(2, 3, 50), at(2, 4, 10)),
               (at(2, 12), at(2, 12, 0, 20)), (at(2, 12, 0, 25), at(2, 12, 0, 45)), (at(2, 14), at(2, 14, 0, 25))]
    if at(1, 10) <= t <= at(1, 10, 0, 40):
        return (t - at(1, 10)) % 10 == 0
    return any(a <= t < b for a, b in windows)


def dense_missing(t: int) -> bool:
    return at(1, 10) < t < at(1, 10, 0, 40) and (t - at(1, 10)) % 10 == 5


def thursday_ttfb(t: int) -> float:
    return 10.0 + ((t - at(3)) // 5) % 20


def timeline() -> list[str]:
    lines: list[str] = []
    for t in range(at(0), at(4), 5):
        if dense_missing(t):
            continue
        fails = dense_fails(t)
        if t >= at(3):
            ttfb = thursday_ttfb(t)
            lines += run_lines("dense", "accounts", "accounts", t, True, ttfb, 2 * ttfb)
        else:
            lines += run_lines("dense", "accounts", "accounts", t, not fails, 5.0 if fails else 10.0,
                               6.0 if fails else 20.0)
    for minute in range(24 * 60):
        t = at(0) + 60 * minute
        login_fails = at(0, 8) <= t < at(0, 8, 5) or t in (at(0, 15, m) for m in (0, 1, 2, 3, 10))
        if not at(0, 15, 4) <= t <= at(0, 15, 9):
            lines += run_lines("sparse", "login", "login", t, not login_fails, 30.0, 40.0)
        lines += run_lines("sparse", "accounts", "accounts", t + 30, not at(0, 8) <= t < at(0, 8, 5), 50.0, 60.0)
        lines += run_lines("sparse", "funds", "custom", t + 15, True, 70.0, 80.0)
    common: dict[str, Any] = dict(site="dense", check="accounts", kind="accounts", location="par",
                                  failed_step="call", reason=ERROR)
    lines.append(incident_point(state="resolved", duration_s=600.0, time_ns=at(0, 0, 5) * NS, **common))
    lines.append(incident_point(state="open", duration_s=0.0, time_ns=at(0, 23, 50, 15) * NS, **common))
    lines.append(incident_point(state="resolved", duration_s=1185.0, time_ns=at(1, 0, 10) * NS, **common))
    return lines


def write(db: InfluxDatabase, lines: list[str], batch: int = 20_000) -> None:
    for i in range(0, len(lines), batch):
        body = "\n".join(lines[i:i + batch]).encode()
        request = urllib.request.Request(f"{db.url}/write?db={db.name}&precision=ns", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 204


CONFIG = INFLUXDB + """
[[incidents.maintenance]]
site = "dense"
start = "2026-03-04T03:00:00Z"
end = "2026-03-04T04:00:00Z"

[[incidents.maintenance]]
site = "sparse"
kinds = ["accounts"]
weekdays = ["mon"]
from = "07:58"
to = "08:02"
"""


SITES = site("dense", ("accounts", "accounts", "")) + site(
    "sparse", ("login", "login", ""), ("accounts", "accounts", ""), ("funds", "custom", 'psd2 = ["cof"]\n'))


@pytest.fixture(scope="module")
def setup(influxdb_v1: InfluxDBServer, tmp_path_factory) -> Iterator[Setup]:
    db = new_database(influxdb_v1, "report")
    try:
        write(db, timeline())
        path = tmp_path_factory.mktemp("report") / "prober.toml"
        path.write_text(CONFIG.format(url=db.url, db=db.name) + SITES)
        yield Setup(db, path)
    finally:
        influxdb_v1.drop_database(db.name)


def report(setup: Setup, capsys, *extra: str, fmt: str = "json") -> str:
    code = main(["report", "-c", str(setup.config), "--from", "2026-03-02", "--to", "2026-03-06",
                 "--format", fmt, *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def days_of(data: dict, site: str, interface: str) -> dict[str, dict]:
    return {d["day"]: d for d in data["days"] if d["site"] == site and d["interface"] == interface}


def summary_of(data: dict, site: str, interface: str) -> dict:
    return next(s for s in data["summaries"] if s["site"] == site and s["interface"] == interface)


def pct(down_s: float) -> float:
    return 100.0 - 100.0 * down_s / DAY


def test_dense_days_exact_seconds_and_percentages(setup, capsys):
    data = json.loads(report(setup, capsys))
    # sparse's login feeds payment initiation too, but login alone is no probe of it
    assert {(s["site"], s["interface"]) for s in data["summaries"]} == {
        ("dense", "ais"), ("sparse", "ais"), ("sparse", "cof")}
    days = days_of(data, "dense", "ais")
    mon, tue, wed, thu, fri = (days[f"2026-03-0{d}"] for d in range(2, 7))
    # the outage straddling midnight is split at midnight
    assert (mon["downtime_s"], mon["planned_downtime_s"], mon["unplanned_downtime_s"]) == (600.0, 0.0, 600.0)
    assert mon["uptime_pct"] == pytest.approx(pct(600), abs=1e-9)
    assert tue["downtime_s"] == 600.0  # five failures over 40 s that morning add nothing
    # maintenance: planned vs unplanned; 25 s from five failures in 20 s; nothing from 4 + 1 + 4
    assert (wed["downtime_s"], wed["planned_downtime_s"], wed["unplanned_downtime_s"]) == (3025.0, 2400.0, 625.0)
    assert wed["uptime_pct"] == pytest.approx(pct(3025), abs=1e-9)
    assert thu["downtime_s"] == 0.0 and thu["uptime_pct"] == 100.0
    # no data at all: unknown, not 100 %
    assert fri["known"] is False and fri["uptime_pct"] is None and fri["downtime_s"] is None and fri["probes"] == 0
    assert [mon["probes"], tue["probes"], wed["probes"], thu["probes"]] == [17280, 17276, 17280, 17280]
    assert [mon["failed_probes"], tue["failed_probes"], wed["failed_probes"]] == [120, 125, 613]
    assert mon["requests"] == 17280 and mon["error_rate_pct"] == pytest.approx(100 * 120 / 17280)
    # incidents: one opened before the range (resolved Mon 00:05 after 600 s), one across midnight
    assert (mon["incident_downtime_s"], tue["incident_downtime_s"], wed["incident_downtime_s"]) == (885.0, 600.0, 0.0)


def test_dense_response_times_are_exact(setup, capsys):
    thu = days_of(json.loads(report(setup, capsys)), "dense", "ais")["2026-03-05"]
    values = sorted(thursday_ttfb(t) for t in range(at(3), at(4), 5))
    nearest_rank = values[int(len(values) * 0.95 + 0.5) - 1]  # InfluxQL's percentile()
    assert nearest_rank == 28.0
    assert thu["ttfb_mean_ms"] == pytest.approx(19.5) and thu["ttfb_p95_ms"] == 28.0
    assert thu["ttlb_mean_ms"] == pytest.approx(39.0) and thu["ttlb_p95_ms"] == 56.0
    assert thu["error_rate_pct"] == 0.0 and thu["requests"] == 17280


def test_dense_summary_against_the_benchmark(setup, capsys):
    data = json.loads(report(setup, capsys))
    summary = summary_of(data, "dense", "ais")
    down = 600 + 600 + 3025
    assert summary["known_days"] == 4 and summary["days"] == 5
    assert summary["uptime_pct"] == pytest.approx(100 - 100 * down / (4 * DAY), abs=1e-9)
    assert summary["unplanned_uptime_pct"] == pytest.approx(100 - 100 * (down - 2400) / (4 * DAY), abs=1e-9)
    assert summary["days_below_benchmark"] == 3 and summary["meets_benchmark"] is False
    assert summary["worst_day"] == "2026-03-04" and summary["window_s"] == 30.0
    assert summary["top_errors"] == [[ERROR, 120 + 125 + 613]]
    lenient = summary_of(json.loads(report(setup, capsys, "--benchmark", "98.5")), "dense", "ais")
    assert lenient["meets_benchmark"] is True and lenient["days_below_benchmark"] == 1  # Wednesday: 96.5 %


def test_sparse_probes_use_the_stretched_window_and_say_so(setup, capsys):
    data = json.loads(report(setup, capsys))
    ais = days_of(data, "sparse", "ais")["2026-03-02"]
    cof = days_of(data, "sparse", "cof")["2026-03-02"]
    # accounts every 60 s (login's successes are no probe): window 270 s. 08:00-08:05 login
    # and accounts fail: down from the first failed login (08:00:00) to the next successful
    # accounts run (08:05:30); the Monday window 07:58-08:02 covers accounts (AIS)
    assert (ais["downtime_s"], ais["planned_downtime_s"], ais["unplanned_downtime_s"]) == (330.0, 120.0, 210.0)
    # 15:00-15:10 five failed logins, accounts answering in between: not down
    assert ais["failed_probes"] == 5 + 5 + 5
    # funds (configured psd2 = ["cof"]) kept answering between the login failures
    assert cof["downtime_s"] == 0.0 and cof["probes"] == 1440 + 10
    assert cof["requests"] == cof["probes"]  # one step per run, the failed logins and funds alike
    assert cof["ttfb_mean_ms"] == pytest.approx(70.0)  # login requests are no response time of CoF
    assert summary_of(data, "sparse", "ais")["window_s"] == 270.0
    assert summary_of(data, "sparse", "cof")["window_s"] == 270.0
    notes = " ".join(data["notes"])
    assert "sparse / account information, one probe every 60 s: 270 s" in notes
    assert "dense /" not in notes


def test_days_follow_the_chosen_time_zone(setup, capsys):
    data = json.loads(report(setup, capsys, "--tz", "Europe/Paris", "--site", "dense"))
    assert {s["site"] for s in data["summaries"]} == {"dense"}
    days = days_of(data, "dense", "ais")
    # 23:50-00:10 UTC is 00:50-01:10 in Paris (UTC+1 in March): all of it on Tuesday
    assert days["2026-03-02"]["downtime_s"] == 0.0 and days["2026-03-03"]["downtime_s"] == 1200.0
    # Monday in Paris starts at 23:00 UTC on Sunday, where there is no data yet
    assert days["2026-03-02"]["probes"] == 17280 - 720
    assert "midnight to midnight in Europe/Paris" in " ".join(data["notes"])


def test_csv_has_one_row_per_site_and_day(setup, capsys):
    rows = list(csv.DictReader(io.StringIO(report(setup, capsys, fmt="csv"))))
    assert [(r["site"], r["date"]) for r in rows][:5] == [("dense", f"2026-03-0{d}") for d in range(2, 7)]
    assert len(rows) == 10
    mon = rows[0]
    assert mon["ais_downtime_s"] == "600" and mon["ais_unplanned_downtime_s"] == "600"
    assert float(mon["ais_uptime_pct"]) == pytest.approx(pct(600), abs=1e-6)
    assert mon["pis_uptime_pct"] == "" and rows[4]["ais_uptime_pct"] == ""  # no such interface / no data


def test_table_and_html(setup, capsys):
    table = report(setup, capsys, fmt="table")
    assert "five consecutive probes" in table and "every 60 s: 270 s" in table
    assert "unknown" in table and "below" in table
    page = report(setup, capsys, fmt="html")
    assert page.startswith("<!doctype html>") and "<svg" in page and "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    standalone = page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http://" not in standalone and "https://" not in standalone  # nothing fetched from elsewhere


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "prober", "report", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_unreachable_influxdb_exits_1_and_config_errors_exit_2(tmp_path):
    port = free_port()
    config = tmp_path / "p.toml"
    config.write_text(f'[influxdb]\nurl = "http://127.0.0.1:{port}"\napi = "v1"\ndatabase = "x"\n'
                      'username = "u"\npassword = "hunter2-secret"\n')
    done = _cli("-c", str(config), "--from", "2026-03-02", "--to", "2026-03-03")
    assert done.returncode == 1 and f"cannot reach InfluxDB at http://127.0.0.1:{port}" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout and "Traceback" not in done.stderr
    no_section = tmp_path / "none.toml"
    no_section.write_text("[prober]\nlocation = \"x\"\n")
    done = _cli("-c", str(no_section))
    assert done.returncode == 2 and "no [influxdb] section" in done.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[influxdb]\nurl = "ftp://x"\n')
    done = _cli("-c", str(bad))
    assert done.returncode == 2 and "config error" in done.stderr and "influxdb.url" in done.stderr
    for args, message in ((["--tz", "Mars/Olympus"], "unknown time zone"),
                          (["--from", "2026-03-05", "--to", "2026-03-01"], "is after"),
                          (["--benchmark", "120"], "not a percentage")):
        done = _cli("-c", str(config), *args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
    done = _cli("-c", str(config), "--from", "March")
    assert done.returncode == 2 and "invalid" in done.stderr


def test_missing_database_is_a_clear_error(setup, tmp_path):
    config = tmp_path / "p.toml"
    config.write_text(f'[influxdb]\nurl = "{setup.db.url}"\napi = "v1"\ndatabase = "no_such_db"\n')
    done = _cli("-c", str(config), "--from", "2026-03-02", "--to", "2026-03-02")
    assert done.returncode == 1 and "database not found" in done.stderr


def split_between_instances(lines: list[str], at_s: int) -> list[str]:
    """``lines`` as two probers write them when the sites move from one to the other at
    ``at_s`` (a shard added): each point tagged with the instance that wrote it."""
    out = []
    for line in lines:
        instance = "probe-s1" if int(line.rsplit(" ", 1)[1]) < at_s * NS else "probe-s2"
        out.append(line.replace(",kind=", f",instance={instance},kind=", 1))
    return out


def test_two_instances_writing_one_site_give_the_same_report(setup, influxdb_v1, tmp_path, capsys):
    # Split at Tuesday midnight: the Monday-night outage and its incident (opened by one
    # instance, resolved by the other) straddle the two.
    lines = split_between_instances(timeline(), at(1))
    assert sum(",instance=probe-s1," in line for line in lines) and sum(",instance=probe-s2," in line for line in lines)
    db = new_database(influxdb_v1, "report_split")
    try:
        write(db, lines)
        path = tmp_path / "prober.toml"
        path.write_text(CONFIG.format(url=db.url, db=db.name) + SITES)
        split = json.loads(report(Setup(db, path), capsys))
    finally:
        influxdb_v1.drop_database(db.name)
    single = json.loads(report(setup, capsys))
    for doc in (split, single):
        doc.pop("generated_at", None)
    assert split == single
