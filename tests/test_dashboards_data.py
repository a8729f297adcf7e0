"""Every dashboard query, expanded as Grafana expands it, against real data in a real InfluxDB 1.6.

The data comes from the real pipeline: the simulated bank with faults, ``config/simbank.toml``
loaded for two probe locations, :func:`run_journey` for 20 rounds, results written through
:class:`ResultWriter` (``api = "v1"``) into the InfluxDB fixture, plus incident and prober
self-report points. Two prober instances share the writing, round by round (as when the
sites move between shards), so every panel must give the same answer whichever instance
wrote a point. The run implies what the panels must show:

* ``transfer`` is down (503) on every odd round: availability 0.5, last state DOWN
  (round 19 is odd), incidents open for it;
* ``login`` and ``cards`` are never faulted: availability 1.0;
* ``payments`` (card authorisation) refuses requests from location ``fra`` (403):
  availability 1.0 from ``par``, 0.0 from ``fra``;
* ``accounts`` answers wrong data (zero balance) on rounds 4 and 5: an ``assertion`` outcome.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from grafana.check import DASHBOARD_DIR
from grafana.expand import TimeRange, expand, variables_of
from prober.cli import main
from prober.config.influxdb import influxdb_config
from prober.daemon.locations_influx import point as cross_location_point
from prober.incidents.locations import Consensus, LocationState, decide
from prober.journey.runner import run_journey
from prober.loading import load
from prober.results import JourneyResult, Outcome
from prober.simbank import BankServer
from prober.simbank.faults import Fault
from prober.writer import ResultWriter, incident_point, prober_point
from tests.fixtures.servers import InfluxDatabase, InfluxDBServer, new_database

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "simbank.toml"
ROUNDS = 20
LOCATIONS = ("par", "fra")
INTERVAL = "10s"  # what Grafana computes for a 1 h range with the datasource's 10 s minimum

DASHBOARDS = {p.stem: json.loads(p.read_text()) for p in sorted(DASHBOARD_DIR.glob("*.json"))}


@dataclass
class ProberData:
    db: InfluxDatabase
    results: list[JourneyResult]
    first_ns: int
    last_ns: int

    @property
    def absolute_range(self) -> TimeRange:
        """Explicit epoch-ms bounds around the data, as for a zoomed-in absolute range."""
        return TimeRange(self.first_ns // 1_000_000 - 60_000, self.last_ns // 1_000_000 + 60_000)


async def _populate(db: InfluxDatabase, spool_dir: Path) -> ProberData:
    async with BankServer(seed=1, settle_after=0.05) as bank:
        plans = {}
        for location in LOCATIONS:
            env = {**os.environ, "SIMBANK_URL": bank.url, "PROBER_LOCATION": location}
            # API checks only: the browser checks' figures have their own data below.
            plans[location] = [plan for plan in load(CONFIG, env).plans if plan.browser is None]
        assert {p.kind for p in plans["par"]} == {"login", "accounts", "transfer", "cards", "payments"}
        bank.faults.set("payments", Fault(mode="refuse", values=("fra",)))
        config = influxdb_config(url=db.url, api="v1", database=db.name, flush_interval="50ms", batch_size=500)
        writer = ResultWriter(config, spool_dir=spool_dir)
        await writer.start()
        results: list[JourneyResult] = []
        try:
            for round_no in range(ROUNDS):
                writer.instance = f"probe-s{1 + round_no % 2}"
                if round_no % 2:
                    bank.faults.set("transfer", Fault(mode="down"))
                else:
                    bank.faults.clear("transfer")
                if round_no in (4, 5):
                    bank.faults.set("accounts", Fault(mode="wrong_data"))
                else:
                    bank.faults.clear("accounts")
                # The cards check freezes the test card that card-authorisation pays with:
                # run it alone, and locations one after the other.
                for location in LOCATIONS:
                    cards = [p for p in plans[location] if p.kind == "cards"]
                    others = [p for p in plans[location] if p.kind != "cards"]
                    round_results = list(await asyncio.gather(*(run_journey(plan) for plan in others)))
                    round_results += [await run_journey(plan) for plan in cards]
                    for result in round_results:
                        writer.submit(result)
                    results += round_results
            now = time.time_ns()
            # The newest login runs are skipped (a lockout back-off): not run is not down,
            # so availability and the current state must not count them.
            for location in LOCATIONS:
                skipped = JourneyResult(
                    site="simbank", check="login", kind="login", location=location, outcome=Outcome.SKIPPED,
                    started_at_ns=now - 1_000_000_000, duration_ms=0.0,
                    error="skipped: site backing off after 3 authentication failures")
                writer.submit(skipped)
                results.append(skipped)
            lines = []
            for n, location in enumerate(LOCATIONS):
                common: dict[str, Any] = dict(site="simbank", location=location, time_ns=now,
                                              instance=f"probe-s{1 + n}")
                lines.append(
                    incident_point(
                        check="transfer",
                        kind="transfer",
                        state="open",
                        reason="3 consecutive failures",
                        failed_step="create",
                        duration_s=0.0,
                        **{**common, "time_ns": now - 30_000_000_000},
                    )
                )
                lines.append(
                    incident_point(
                        check="accounts",
                        kind="accounts",
                        state="open",
                        reason="zero balance",
                        failed_step="balances",
                        duration_s=0.0,
                        **{**common, "time_ns": now - 40_000_000_000},
                    )
                )
                lines.append(
                    incident_point(
                        check="accounts",
                        kind="accounts",
                        state="resolved",
                        reason="zero balance",
                        failed_step="balances",
                        duration_s=20.0,
                        **{**common, "time_ns": now - 20_000_000_000, "instance": f"probe-s{2 - n}"},
                    )
                )
            lines.append(
                incident_point(
                    site="simbank",
                    check="card-authorisation",
                    kind="payments",
                    location="fra",
                    state="open",
                    reason="403 from fra",
                    failed_step="funds",
                    duration_s=0.0,
                    time_ns=now,
                )
            )
            # transfer fails at both locations: one cross-location incident ([incidents.locations])
            states = [LocationState("simbank", "transfer", "transfer", location, "open", now - 30_000_000_000,
                                    "3 consecutive failures", "create") for location in LOCATIONS]
            for event in Consensus().step(decide(states, LOCATIONS, 2), states, now):
                lines.append(cross_location_point(event, "prober-fra"))
            # Twelve self-reports 10 s apart, cumulative counters growing as the writer's do.
            for i in range(12):
                lines.append(prober_point(location=location_of(i), instance=f"prober-{location_of(i)}",
                                          time_ns=now - (11 - i // 2) * 10_000_000_000 + (i % 2),
                                          checks=5, running=i % 3, schedule_lag_ms=0.5 + i,
                                          written_points=1000 * (i // 2 + 1), spooled_points=(7 if i // 2 == 3 else 0),
                                          dropped_points=(2 if i // 2 >= 4 else 0), write_errors=(i // 2) // 3,
                                          last_error="HTTP 503 from InfluxDB" if i // 2 >= 3 else "",
                                          lockout={"sites_backing_off": int(i // 2 in (2, 3)),
                                                   "sites_credentials_refused": int(i // 2 == 4),
                                                   "lockout_skips": 5 * (i // 2)}))
            lines += await certificate_points(spool_dir, now)
            writer.submit_lines(lines)
            assert await writer.wait_idle(20), f"writer did not drain: {writer.stats}"
        finally:
            await writer.close()
        assert writer.stats.write_errors == 0 and writer.stats.dropped_points == 0
    stamps = [r.started_at_ns for r in results] + [now - 120_000_000_000, now]
    return ProberData(db, results, min(stamps), max(stamps))


SERVER_DAYS, CLIENT_DAYS = 10, 20
"""The simulated bank's HTTPS certificate expires in 10 days, the prober's own client certificate in 20."""


async def certificate_points(work: Path, now: int) -> list[str]:
    """``certificate`` points as the daemon writes them at a self-report, from each location:
    the certificate watch fed with a real journey over HTTPS (the simulated bank serving a
    certificate that expires in 10 days) and reading the prober's own client certificate."""
    from prober.daemon.certificates import CertificateWatch
    from prober.simbank.tls import bank_certificate
    from tests.certificates import days, root, write

    served = bank_certificate(SERVER_DAYS)
    context = served.server_context(work / "bank-tls")
    ca_file = served.write_ca(work / "bank-tls")
    own = root("Own CA").issue("prober-qwac", client=True, not_after=days(CLIENT_DAYS))
    client = write(work / "qwac.pem", own.cert_pem, own.key_pem)
    lines = []
    async with BankServer(ssl_context=context) as bank:
        for location in LOCATIONS:
            (work / f"tls-{location}.toml").write_text(
                f'[prober]\nlocation = "{location}"\n[daemon]\nstate_dir = "{work / location}"\n'
                f'[[sites]]\nname = "simbank"\nbase_url = "{bank.url}"\n'
                f'[sites.tls]\nca_file = "{ca_file}"\ncert_file = "{client}"\n'
                '[[sites.checks]]\nname = "health"\nkind = "custom"\n'
                '  [[sites.checks.steps]]\n  name = "get"\n  path = "/healthz"\n')
            loaded = load(work / f"tls-{location}.toml", environ={})
            watch = CertificateWatch(loaded.config)
            result = await run_journey(loaded.plans[0])
            assert result.success and result.steps[0].certificate is not None, result.error
            watch.consume(result)
            await watch.start()
            lines += watch.points(instance=f"prober-{location}", time_ns=now)
            await watch.close()
    assert len(lines) == 4
    return lines


def materialise_psd2(db: InfluxDatabase, work: Path) -> None:
    """``prober report --write`` over the data (yesterday and today, UTC), as the timer runs it."""
    config = work / "psd2"
    config.mkdir(exist_ok=True)
    (config / "00-influxdb.toml").write_text(f'[influxdb]\nurl = "{db.url}"\napi = "v1"\ndatabase = "{db.name}"\n')
    (config / "10-simbank.toml").write_text(CONFIG.read_text())
    assert main(["report", "-c", str(config), "--write"]) == 0


def location_of(i: int) -> str:
    return LOCATIONS[i % 2]


BROWSER_FIELDS = ("load_ms", "lcp_ms", "cls", "console_errors")
"""A query naming one of these reads browser steps' figures: it runs on :func:`browser_data`."""


def is_browser_query(query: str) -> bool:
    return any(f'"{field}"' in query for field in BROWSER_FIELDS)


async def _populate_browser(db: InfluxDatabase, spool_dir: Path, state_dir: Path) -> ProberData:
    """Real browser runs of the web checks (web-accounts, web-transfer) from both locations,
    two rounds, the second with the accounts' balances wrong (zero) and the transfer page
    down (503)."""
    from prober.loading import journey_runner

    async with BankServer(seed=1, settle_after=0.05) as bank:
        plans = []
        for location in LOCATIONS:
            env = {**os.environ, "SIMBANK_URL": bank.url, "PROBER_LOCATION": location}
            loaded = load(CONFIG, env)
            plans += [p for p in loaded.plans if p.check in ("web-accounts", "web-transfer")]
        config = influxdb_config(url=db.url, api="v1", database=db.name, flush_interval="50ms", batch_size=500)
        writer = ResultWriter(config, spool_dir=spool_dir)
        runner = journey_runner(loaded.config.model_copy(update={"daemon": loaded.config.daemon.model_copy(
            update={"state_dir": str(state_dir)})}))
        await writer.start()
        results: list[JourneyResult] = []
        try:
            for round_no in range(2):
                if round_no:
                    bank.faults.set("accounts", Fault(mode="wrong_data"))
                    bank.faults.set("transfer", Fault(mode="down"))
                for plan in plans:
                    result = await runner(plan)
                    writer.submit(result)
                    results.append(result)
        finally:
            await runner.close()
            await writer.close()
    assert {(r.check, r.outcome) for r in results} == {
        ("web-accounts", Outcome.OK), ("web-transfer", Outcome.OK),
        ("web-accounts", Outcome.ASSERTION), ("web-transfer", Outcome.HTTP_STATUS)}, [
        (r.check, r.outcome, r.error) for r in results]
    return ProberData(db, results, min(r.started_at_ns for r in results), max(r.started_at_ns for r in results))


@pytest.fixture(scope="module")
def browser_data(influxdb_v1: InfluxDBServer, tmp_path_factory) -> Iterator[ProberData]:
    db = new_database(influxdb_v1, "dashweb")
    try:
        yield asyncio.run(_populate_browser(db, tmp_path_factory.mktemp("spool"), tmp_path_factory.mktemp("state")))
    finally:
        influxdb_v1.drop_database(db.name)


@pytest.fixture(scope="module")
def data(influxdb_v1: InfluxDBServer, tmp_path_factory) -> Iterator[ProberData]:
    db = new_database(influxdb_v1, "dash")
    try:
        populated = asyncio.run(_populate(db, tmp_path_factory.mktemp("spool")))
        materialise_psd2(db, tmp_path_factory.mktemp("psd2"))
        yield populated
    finally:
        influxdb_v1.drop_database(db.name)


# -- helpers -----------------------------------------------------------------------------


def variable_options(dashboard: dict, db: InfluxDatabase, chosen: dict | None = None) -> dict[str, list[str]]:
    """Run the variable queries in order, as Grafana does on load: each one with the values
    chosen for the earlier ones (All unless ``chosen`` says otherwise)."""
    options: dict[str, list[str]] = {}
    for item in dashboard["templating"]["list"]:
        if item["type"] != "query":
            continue
        query = expand(item["query"], variables_of(dashboard, chosen, options), interval=INTERVAL)
        options[item["name"]] = sorted({row["value"] for row in db.query(query)})
    return options


def panel(dashboard: str, title: str) -> dict:
    return next(p for p in DASHBOARDS[dashboard]["panels"] if p["title"] == title)


DAILY = "psd2-availability"
"""Reads the psd2_daily points, dated at midnight: asked over its own default range (a quarter)."""


def time_range_of(item: dict, dashboard: str = "") -> TimeRange:
    """The dashboard range (last hour, a quarter for the daily points) or the panel's own
    relative range (``timeFrom``)."""
    if dashboard == DAILY:
        return TimeRange("now-90d")
    return TimeRange(f"now-{item['timeFrom']}") if item.get("timeFrom") else TimeRange("now-1h")


def run(data: ProberData, dashboard: str, title: str, values: dict | None = None, ref: str = "A") -> list[dict]:
    """Rows (series tags merged in) of one panel target, variables at All unless given."""
    item = panel(dashboard, title)
    target = next(t for t in item["targets"] if t["refId"] == ref)
    variables = variables_of(DASHBOARDS[dashboard], values or {})
    return data.db.query(expand(target["query"], variables, time_range=time_range_of(item), interval=INTERVAL))


def all_queries() -> Iterator[tuple[str, str, str, dict | None]]:
    """(dashboard, id, query, panel) for every panel target, variable query and annotation query."""
    for name, dashboard in DASHBOARDS.items():
        for item in dashboard["panels"]:
            for target in item.get("targets", []):
                yield name, f"{name}:{item['title']}:{target['refId']}", target["query"], item
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                yield name, f"{name}:${variable['name']}", variable["query"], None
        for annotation in dashboard["annotations"]["list"]:
            if "query" in annotation:
                yield name, f"{name}:annotation:{annotation['name']}", annotation["query"], None


QUERIES = list(all_queries())


def series_of(db: InfluxDatabase, influxql: str) -> list[dict]:
    answer = db.server.raw_query(influxql, db.name)
    return [s for result in answer["results"] for s in result.get("series", [])]


# -- every query returns data ------------------------------------------------------------


def test_every_dashboard_query_is_covered():
    assert len(QUERIES) >= 40
    assert {name for name, *_ in QUERIES} == {"overview", "journey-detail", "locations", "prober-health",
                                              "psd2-availability"}


@pytest.mark.parametrize(("dashboard", "query"), [(d, q) for d, _, q, _ in QUERIES],
                         ids=[i for _, i, _, _ in QUERIES])
def test_query_returns_data_with_all_selected(request, dashboard, query):
    data = request.getfixturevalue("browser_data" if is_browser_query(query) else "data")
    item = next((p for d, _, q, p in QUERIES if d == dashboard and q == query), None)
    board = DASHBOARDS[dashboard]
    variables = variables_of(board, options=variable_options(board, data.db))
    ranges = [time_range_of(item or {}, dashboard), data.absolute_range]
    if dashboard == DAILY:  # the day's point is dated at its midnight, before the data
        ranges[1] = TimeRange(data.first_ns // 1_000_000 // 86_400_000 * 86_400_000, ranges[1].to_ms)
    for time_range in ranges:
        influxql = expand(query, variables, time_range=time_range, interval=INTERVAL)
        assert "$" not in influxql.replace("$/", "/"), influxql  # every variable and macro expanded
        series = series_of(data.db, influxql)
        assert series and any(s.get("values") for s in series), f"no data for {influxql}"


@pytest.mark.parametrize(("dashboard", "query"), [(d, q) for d, _, q, _ in QUERIES],
                         ids=[i for _, i, _, _ in QUERIES])
def test_query_returns_data_with_values_selected(request, dashboard, query):
    """Multi-value selections (``(a|b)``) as a user picks them, and longer ranges' intervals.

    On a 6 h range Grafana groups by 20 s, so the two minutes of self-reports still span
    several buckets (a derivative needs two); on 30 days (30 min buckets) each query must at
    least be valid InfluxQL.
    """
    board = DASHBOARDS[dashboard]
    browser = is_browser_query(query)
    data = request.getfixturevalue("browser_data" if browser else "data")
    chosen = {"site": ["simbank"], "kind": ["transfer", "payments"], "location": ["par", "fra"],
              "step": ["create", "funds"], "instance": ["prober-par", "prober-fra"]}
    if browser:
        chosen = {"site": ["simbank"], "kind": ["transfer", "accounts"], "location": ["par", "fra"],
                  "step": ["login-page", "form"]}
    options = variable_options(board, data.db, chosen)
    for name, values in options.items():  # children list what the parents' choice allows
        assert set(chosen.get(name, values)) <= set(values), (name, values)
        chosen.setdefault(name, values)
    if "check" in options:
        assert options["check"] == (["web-accounts", "web-transfer"] if browser else ["card-authorisation", "transfer"])
    item = next((p for d, _, q, p in QUERIES if d == dashboard and q == query), None)
    variables = variables_of(board, chosen, options)
    time_range = time_range_of(item or {}, dashboard) if (item and item.get("timeFrom")) or dashboard == DAILY \
        else TimeRange("now-6h")
    influxql = expand(query, variables, time_range=time_range, max_data_points=1000)
    assert "GROUP BY time(" not in query or "GROUP BY time(20s)" in influxql
    series = series_of(data.db, influxql)
    assert series and any(s.get("values") for s in series), f"no data for {influxql}"
    series_of(data.db, expand(query, variables, time_range=TimeRange("now-30d"), max_data_points=1000))


def test_variable_queries_list_what_was_written(data):
    overview = variable_options(DASHBOARDS["overview"], data.db)
    assert overview == {"site": ["simbank"], "kind": ["accounts", "cards", "login", "payments", "transfer"],
                        "check": ["accounts", "card-authorisation", "cards", "login", "transfer"],
                        "location": ["fra", "par"]}
    steps = variable_options(DASHBOARDS["journey-detail"], data.db)["step"]
    assert {"token", "create", "status", "freeze", "unfreeze", "authorise-de"} <= set(steps)
    assert variable_options(DASHBOARDS["prober-health"], data.db) == {
        "location": ["fra", "par"], "instance": ["prober-fra", "prober-par"]}


# -- the values the run implies ----------------------------------------------------------


def by(rows: list[dict], *keys: str) -> dict:
    return {tuple(row[k] for k in keys) if len(keys) > 1 else row[keys[0]]: row for row in rows}


def test_overview_availability(data):
    rows = by(run(data, "overview", "Availability over the range"), "kind")
    assert abs(rows["transfer"]["availability"] - 0.5) <= 0.15
    assert rows["login"]["availability"] == 1.0
    assert rows["cards"]["availability"] == 1.0
    assert rows["payments"]["availability"] == pytest.approx(0.5)  # fine from par, refused from fra
    assert rows["accounts"]["availability"] == pytest.approx(1 - 2 / ROUNDS)
    # the same with a multi-value selection
    both = run(data, "overview", "Availability over the range", {"kind": ["transfer", "login"]})
    assert sorted(r["kind"] for r in both) == ["login", "transfer"]


NOW = "Now: banks × capabilities (worst location)"


def test_overview_status_grid_shows_the_last_state(data):
    rows = by(run(data, "overview", NOW), "site", "kind")
    assert rows[("simbank", "transfer")]["up"] == 0  # round 19 is odd: transfer down
    assert rows[("simbank", "login")]["up"] == 1
    assert rows[("simbank", "accounts")]["up"] == 1
    assert rows[("simbank", "payments")]["up"] == 0  # refused from fra: the worst location
    last_transfer = max((r for r in data.results if r.kind == "transfer"), key=lambda r: r.started_at_ns)
    assert not last_transfer.success
    # a chosen location shows that location
    assert by(run(data, "overview", NOW, {"location": ["par"]}), "kind")["payments"]["up"] == 1
    assert by(run(data, "overview", NOW, {"location": ["fra"]}), "kind")["payments"]["up"] == 0


def test_overview_now_cell_does_not_flicker_to_the_last_writer(influxdb_v1):
    """Two locations writing, the one that wrote last ok, the other failing: the cell says
    failing (the old ``last("success") GROUP BY site, kind`` showed whichever wrote last)."""
    db = new_database(influxdb_v1, "flicker")
    try:
        now = time.time_ns()
        lines = []
        for i in range(6):  # par fails every run, fra passes; fra always writes 1 s after par
            at = now - (60 - 10 * i) * 1_000_000_000
            lines.append(f'check,check=transfer,kind=transfer,location=par,outcome=http_status,site=bank '
                         f'success=0i,duration_ms=12.0 {at}')
            lines.append(f'check,check=transfer,kind=transfer,location=fra,outcome=ok,site=bank '
                         f'success=1i,duration_ms=11.0 {at + 1_000_000_000}')
        influxdb_v1.write_lines(db.name, lines)
        board = DASHBOARDS["overview"]
        target = panel("overview", NOW)["targets"][0]["query"]
        variables = variables_of(board, options=variable_options(board, db))
        (row,) = db.query(expand(target, variables, time_range=TimeRange("now-1h"), interval=INTERVAL))
        assert (row["site"], row["kind"], row["up"]) == ("bank", "transfer", 0)
        chosen = variables_of(board, {"location": ["fra"]}, variable_options(board, db, {"location": ["fra"]}))
        (row,) = db.query(expand(target, chosen, time_range=TimeRange("now-1h"), interval=INTERVAL))
        assert row["up"] == 1
    finally:
        influxdb_v1.drop_database(db.name)


def test_overview_status_history_and_failures(data):
    history = run(data, "overview", "Availability history", {"kind": ["transfer"]})
    assert history and all(0.0 <= r["mean"] <= 1.0 for r in history)
    outcomes = {r["outcome"]: r["count"] for r in run(data, "overview", "Failed runs by outcome") if r["count"]}
    assert {"http_status", "auth", "assertion"} <= set(outcomes)
    assert "ok" not in outcomes
    failed = run(data, "overview", "Latest failed runs")
    assert failed and all(r["failed_step"] and r["error"] for r in failed)
    assert {r["kind"] for r in failed} == {"transfer", "payments", "accounts"}


def test_open_incidents_are_the_latest_open_states(data):
    rows = run(data, "overview", "Open incidents")
    assert sorted((r["check"], r["location"]) for r in rows) == [
        ("card-authorisation", "fra"), ("transfer", "fra"), ("transfer", "par")]
    assert all(r["state"] == "open" for r in rows)
    annotations = [q for d, i, q, _ in QUERIES if d == "overview" and "annotation" in i][0]
    rows = data.db.query(expand(annotations, variables_of(DASHBOARDS["overview"]), interval=INTERVAL))
    assert {r["state"] for r in rows} == {"open", "resolved"} and all(r["reason"] for r in rows)


def test_journey_step_percentiles(data):
    rows = run(data, "journey-detail", "Step latency percentiles", {"check": ["login"]})
    assert {r["step"] for r in rows} == {"token", "session", "me"}
    for row in rows:
        assert 0 < row["p50"] <= row["p95"] <= row["p99"]
    table = by(run(data, "journey-detail", "Steps over the range", {"check": ["transfer"]}), "step")
    assert table["create"]["success rate"] == pytest.approx(0.5)
    assert table["token"]["success rate"] == 1.0 and table["token"]["requests"] == ROUNDS * len(LOCATIONS)


def test_journey_phase_breakdown_fields_are_numbers(data):
    phases = ("dns", "connect", "tls", "ttfb", "transfer")
    rows = run(data, "journey-detail", "Where the time goes (phases, stacked)")
    assert rows
    for row in rows:
        assert set(phases) <= set(row)
        assert all(isinstance(row[p], (int, float)) and row[p] >= 0 for p in phases), row
    assert sum(r["ttfb"] for r in rows) > 0 and sum(r["connect"] for r in rows) > 0
    assert all(r["tls"] == 0 for r in rows)  # plain HTTP to the simulated bank
    per_step = run(data, "journey-detail", "Phases per step", {"check": ["cards"]})
    assert {r["step"] for r in per_step} == {"token", "list", "freeze", "limits", "unfreeze"}
    assert all(isinstance(r["ttfb"], float) for r in per_step)


def test_journey_failures_and_latest_failing_steps(data):
    failures = run(data, "journey-detail", "Step failures by outcome", {"check": ["transfer"]})
    assert {(r["step"], r["outcome"]) for r in failures} == {("create", "http_status")}
    latest = run(data, "journey-detail", "Latest failing steps")
    assert latest and len(latest) <= 50
    transfer = [r for r in latest if r["check"] == "transfer"]
    assert transfer and all(r["step"] == "create" and r["http_status"] == 503 and r["error"] for r in transfer)
    payments = [r for r in latest if r["check"] == "card-authorisation"]
    assert payments and all(r["location"] == "fra" and r["outcome"] == "auth" for r in payments)
    assert all(len(r["error"]) < 300 for r in latest)


def test_browser_page_panels(browser_data):
    """The page figures of the web checks: load times and paints of the pages they loaded,
    a layout shift score, and the errors counted inside the pages."""
    load = run(browser_data, "journey-detail", "Page load (browser steps)")
    assert load and all(
        r["load"] is None or r["load"] >= r["domcontentloaded"] > 0 for r in load if r["domcontentloaded"]
    )
    assert any(r["ttfb"] for r in load)
    paints = run(browser_data, "journey-detail", "Web Vitals: paints (browser steps)", {"check": ["web-accounts"]})
    assert paints and all(r["lcp"] >= r["fcp"] > 0 for r in paints if r["fcp"] and r["lcp"])
    shift = run(browser_data, "journey-detail", "Web Vitals: layout shift (browser steps)")
    assert shift and all(0 <= r["cls"] < 1 for r in shift if r["cls"] is not None)
    errors = run(browser_data, "journey-detail", "Page errors (browser steps)", {"check": ["web-accounts"]})
    assert sum(r["failed requests"] or 0 for r in errors) == 0  # zero balances: every answer 200
    transfer = run(browser_data, "journey-detail", "Page errors (browser steps)", {"check": ["web-transfer"]})
    assert transfer  # counted for every executed browser step, zero or not


def test_journey_stats(data):
    (row,) = run(data, "journey-detail", "Runs and failures", {"check": ["transfer"]})
    assert row["runs"] == ROUNDS * len(LOCATIONS) and row["failed"] == ROUNDS * len(LOCATIONS) / 2
    (row,) = run(data, "journey-detail", "Availability", {"check": ["login"]})
    assert row["mean"] == 1.0


def test_locations_compare_the_same_capability(data):
    matrix = by(run(data, "locations", "Availability: location × capability"), "location", "kind")
    assert matrix[("par", "payments")]["availability"] == 1.0
    assert matrix[("fra", "payments")]["availability"] == 0.0
    for location in LOCATIONS:
        assert matrix[(location, "login")]["availability"] == 1.0
        assert abs(matrix[(location, "transfer")]["availability"] - 0.5) <= 0.15
    now = by(run(data, "locations", "Now: location × capability"), "location", "kind")
    assert now[("fra", "payments")]["up"] == 0 and now[("par", "payments")]["up"] == 1
    table = by(run(data, "locations", "Locations over the range"), "location", "kind")
    assert table[("par", "login")]["runs"] == ROUNDS and table[("par", "login")]["p50 ms"] > 0
    network = run(data, "locations", "Network vs bank time per location (p95)")
    assert {r["location"] for r in network} == set(LOCATIONS)


def test_locations_incidents_side_by_side_and_confirmed(data):
    rows = run(data, "locations", "Open incidents per location")
    assert sorted((r["kind"], r["location"]) for r in rows) == [
        ("payments", "fra"), ("transfer", "fra"), ("transfer", "par")]
    (row,) = run(data, "locations", "Confirmed across locations (open)")
    assert (row["kind"], row["locations"], row["failing"], row["live"], row["required"]) == (
        "transfer", "fra,par", 2, 2, 2)
    assert row["instance"] == "prober-fra"


def test_prober_health(data):
    (lag,) = [r for r in run(data, "prober-health", "Schedule lag (max)") if r["instance"] == "prober-fra"]
    assert lag["max"] == pytest.approx(11.5)
    rate = run(data, "prober-health", "Points written per second")
    assert rate and all(r["written"] >= 0 for r in rate) and max(r["written"] for r in rate) == pytest.approx(100.0)
    spool = run(data, "prober-health", "Points in the spool")
    assert {r["instance"]: r["last"] for r in spool} == {"prober-par": 0, "prober-fra": 0}
    dropped = by(run(data, "prober-health", "Dropped points / write errors in range"), "instance")
    assert dropped["prober-par"]["dropped"] == 2 and dropped["prober-par"]["write errors"] == 1
    latest = by(run(data, "prober-health", "Latest writer state"), "instance")
    assert latest["prober-par"]["last error"] == "HTTP 503 from InfluxDB"
    assert latest["prober-par"]["written"] == 6000
    lockout = run(data, "prober-health", "Lockout protection: sites backing off")
    assert max(r["backing off"] for r in lockout) == 1 and max(r["credentials refused"] for r in lockout) == 1
    assert {r["instance"] for r in lockout} == {"prober-par", "prober-fra"}
    skipped = run(data, "prober-health", "Runs skipped by lockout protection")
    assert skipped and sum(r["skipped runs"] for r in skipped if r["instance"] == "prober-par") == 25
    arriving = run(data, "prober-health", "Results arriving")
    assert sum(r["count"] for r in arriving) == len(data.results)


def test_overview_certificates_each_banks_earliest_expiry(data):
    (row,) = run(data, "overview", "Certificates")
    assert (row["site"], row["certificate"]) == ("simbank", "server:127.0.0.1")  # 10 days: before the client's 20
    assert SERVER_DAYS - 0.1 < row["days left"] <= SERVER_DAYS
    assert abs(row["expires"] / 1000 - (time.time() + SERVER_DAYS * 86_400)) < 600
    rows = run(data, "overview", "Certificates", {"location": ["fra"]})
    assert [r["site"] for r in rows] == ["simbank"]


def test_prober_health_lists_the_probers_own_certificates(data):
    rows = run(data, "prober-health", "The prober's own certificates")
    assert sorted((r["instance"], r["certificate"], r["purpose"]) for r in rows) == [
        ("prober-fra", "client", "client"), ("prober-par", "client", "client")]
    assert all(CLIENT_DAYS - 0.1 < r["days left"] <= CLIENT_DAYS for r in rows)
    assert all(r["subject"] == "CN=prober-qwac,O=bank-prober tests" and r["issuer"].startswith("CN=Own CA")
               for r in rows)
    only = run(data, "prober-health", "The prober's own certificates", {"instance": ["prober-par"]})
    assert [r["instance"] for r in only] == ["prober-par"]


def run_daily(data: ProberData, title: str, values: dict | None = None) -> list[dict]:
    """A PSD2 panel as Grafana runs it on a quarter: it reads the psd2_daily points."""
    item = panel("psd2-availability", title)
    variables = variables_of(DASHBOARDS["psd2-availability"], values or {})
    query = expand(item["targets"][0]["query"], variables, time_range=TimeRange("now-90d"),
                   max_data_points=item.get("maxDataPoints", 1000), min_interval=item.get("interval"))
    assert "GROUP BY time(" not in query  # one point per day is stored: nothing to bucket
    return data.db.query(query)


def test_psd2_panels_read_the_materialised_days(data):
    options = variable_options(DASHBOARDS["psd2-availability"], data.db)
    # The embedded default declares web checks of the customer interface (psd2_interface = "psu"): their
    # days are materialised too, unknown here (the data holds the API checks' runs only).
    assert options["interface"] == ["ais", "cof", "pis"] and options["api"] == ["dedicated", "psu"]
    assert options["tz"] == ["UTC"] and options["site"] == ["simbank"]
    today = by(run_daily(data, "Daily uptime and downtime per bank and interface"), "interface")
    # transfer failed every other round at both locations: never five in a row, no downtime
    assert today["pis"]["down s"] == 0.0 and today["pis"]["uptime %"] == 100.0
    transfer_runs = sum(1 for r in data.results if r.kind == "transfer")
    failed_logins = sum(1 for r in data.results if r.kind == "login" and not r.success and r.outcome.value != "skipped")
    assert today["pis"]["probes"] == transfer_runs + failed_logins
    assert today["pis"]["failed probes"] == ROUNDS + failed_logins
    summary = by(run_daily(data, "Range summary against 99.5 %"), "interface")
    assert summary["pis"]["uptime %"] == 100.0 and summary["pis"]["known days"] >= 1
    times = run_daily(data, "Daily response times (answered requests)", {"interface": ["pis"]})
    assert times and all(0 < r["TTFB mean ms"] <= r["TTLB p95 ms"] for r in times)
    errors = by(run_daily(data, "Daily error rate"), "interface")
    assert errors["pis"]["errors"] == ROUNDS  # the create step of every odd round
    assert errors["all"]["requests"] >= errors["pis"]["requests"]
