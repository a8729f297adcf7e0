"""Cross-location decision: the pure rules as tables, the reader against a real InfluxDB 1.6."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import pytest

from prober.config.incidents import IncidentsConfig, LocationsConfig, MaintenanceWindow
from prober.daemon.locations import CrossLocationIncidents
from prober.daemon.locations_influx import LocationsReader, Snapshot, point
from prober.incidents.locations import (
    Consensus,
    LocationState,
    Reporter,
    RunsWindow,
    acting,
    around,
    decide,
    incident_id,
    live,
    pooled_end,
    pooled_start,
    required,
)
from prober.report.influx import QueryClient, QueryError
from prober.results import JourneyResult, Kind, Outcome
from prober.writer.points import incident_point, journey_lines, prober_point
from tests.incident_helpers import Lines, Unread

S = 1_000_000_000


def st(location: str, state: Literal["open", "resolved"], at_s: float, check: str = "transfer",
       kind: str = "transfer") -> LocationState:
    return LocationState(
        "bank",
        check,
        kind,
        location,
        state,
        int(at_s * S),
        reason="http_status: HTTP 503 (3 consecutive failures)",
        failed_step="create",
    )


@pytest.mark.parametrize(("confirm", "live_count", "need"), [
    (2, 3, 2), (2, 1, 1), (2, 0, 1), ("all", 3, 3), ("all", 0, 1), (1, 5, 1), (5, 3, 3),
])
def test_required_is_capped_at_the_live_locations(confirm, live_count, need):
    assert required(confirm, live_count) == need


def test_live_and_acting_instance():
    now = 1000 * S
    reporters = [
        Reporter("par", "b", now - 10 * S),
        Reporter("fra", "z", now - 200 * S),
        Reporter("par", "a", now - 5 * S),
    ]
    assert [r.instance for r in live(reporters, now, 120)] == ["a", "b"]
    assert acting(reporters, now, 120) == Reporter("par", "a", now - 5 * S)
    longer = acting(reporters, now, 300)
    assert longer is not None and longer.location == "fra"  # fra sorts first while it is live
    assert acting([], now, 120) is None


@pytest.mark.parametrize(("states", "alive", "confirm", "failing", "confirmed"), [
    ([st("par", "open", 10), st("fra", "resolved", 5)], ["par", "fra"], 2, ("par",), False),
    ([st("par", "open", 10), st("fra", "open", 12)], ["par", "fra"], 2, ("fra", "par"), True),
    ([st("par", "open", 10), st("fra", "open", 12)], ["par"], 2, ("par",), True),  # fra is not live: k capped at 1
    ([st("par", "open", 10), st("fra", "open", 12)], ["par", "fra", "nyc"], "all", ("fra", "par"), False),
    ([st("par", "open", 10)], ["par", "fra"], 1, ("par",), True),
    # one location failing on two checks of the capability is still one location
    ([st("par", "open", 10), st("par", "open", 11, check="transfer-2")], ["par", "fra"], 2, ("par",), False),
])
def test_decide(states, alive, confirm, failing, confirmed):
    (decision,) = decide(states, alive, confirm).values()
    assert decision.failing == failing and decision.confirmed is confirmed
    if failing:
        assert decision.since_ns == min(s.at_ns for s in states if s.state == "open" and s.location in alive)


def test_certificate_warnings_are_not_decided_across_locations():
    """Each prober announces its own certificates; the consensus is about capabilities."""
    states = [st("par", "open", 10), st("par", "open", 11, check="certificate:client", kind="certificate"),
              st("fra", "open", 12, check="certificate:server:api.bank.test", kind="certificate")]
    assert list(decide(states, ["par", "fra"], 1)) == [("bank", "transfer")]


def test_one_incident_opened_and_resolved_for_two_locations():
    consensus = Consensus()
    alive = ["fra", "par"]
    # par fails first: not confirmed, nothing happens
    states = [st("par", "open", 100), st("fra", "resolved", 50)]
    assert consensus.step(decide(states, alive, 2), states, 101 * S) == []
    # fra agrees: one incident, dated from par's start, naming both
    states = [st("par", "open", 100), st("fra", "open", 102)]
    (event,) = consensus.step(decide(states, alive, 2), states, 105 * S)
    assert event.event == "opened" and event.incident.since_ns == 100 * S
    assert event.incident.locations == ("fra", "par")
    assert consensus.step(decide(states, alive, 2), states, 110 * S) == []  # no second notification
    # reminder after remind_every
    (reminder,) = consensus.step(decide(states, alive, 2), states, 170 * S, remind_every_s=60)
    assert reminder.event == "reminder"
    # fra is back at 130: fewer than 2 fail → resolved at 130
    states = [st("par", "open", 100), st("fra", "resolved", 130)]
    (event,) = consensus.step(decide(states, alive, 2), states, 140 * S)
    assert event.event == "resolved" and event.incident.resolved_ns == 130 * S
    assert event.incident.duration_s == 30
    states = [st("par", "resolved", 135), st("fra", "resolved", 130)]
    assert consensus.step(decide(states, alive, 2), states, 150 * S) == []


def test_resolution_with_one_required_is_the_last_location_back():
    consensus = Consensus()
    states = [st("par", "open", 100), st("fra", "open", 101)]
    consensus.step(decide(states, ["fra", "par"], 1), states, 105 * S)
    states = [st("par", "resolved", 120), st("fra", "open", 101)]
    assert consensus.step(decide(states, ["fra", "par"], 1), states, 125 * S) == []
    states = [st("par", "resolved", 120), st("fra", "resolved", 128)]
    (event,) = consensus.step(decide(states, ["fra", "par"], 1), states, 130 * S)
    assert event.incident.resolved_ns == 128 * S


def closed(location: str, at_s: float) -> LocationState:
    """A location's incident closed because its check is no longer probed there."""
    return LocationState("bank", "transfer", "transfer", location, "resolved", int(at_s * S),
                         reason="http_status: HTTP 503 (3 consecutive failures); closed: its check is no longer probed",
                         failed_step="create")


@pytest.mark.parametrize(("ends", "ended"), [
    ((closed("par", 120), closed("fra", 121)), "its check is no longer probed"),
    ((closed("par", 120), st("fra", "resolved", 121)), ""),  # fra saw it back: a recovery
])
def test_a_cross_incident_whose_locations_closed_theirs_ends_without_a_recovery(ends, ended):
    consensus = Consensus()
    states = [st("par", "open", 100), st("fra", "open", 101)]
    consensus.step(decide(states, ["fra", "par"], 1), states, 105 * S)
    states = list(ends)
    runs = {("bank", "transfer"): [(True, 101 * S), (False, 110 * S)]}
    (event,) = consensus.step(decide(states, ["fra", "par"], 1), states, 130 * S, runs=runs)
    assert event.event == "resolved" and event.incident.ended == ended
    if ended:  # dated by the closings, not by a passing run from before them
        assert event.incident.resolved_ns == 121 * S
        assert point(event, "prober-1").count("; closed: its check is no longer probed") == 1
    else:
        assert "; closed: " not in point(event, "prober-1")


def test_adopted_incident_is_not_notified_again():
    first, second = Consensus(), Consensus()
    states = [st("par", "open", 100), st("fra", "open", 101)]
    (opened,) = first.step(decide(states, ["fra", "par"], 2), states, 105 * S)
    second.adopt({("bank", "transfer"): opened.incident})
    assert second.step(decide(states, ["fra", "par"], 2), states, 110 * S) == []


def test_point_line():
    consensus = Consensus()
    states = [st("par", "open", 100), st("fra", "open", 101)]
    (event,) = consensus.step(decide(states, ["fra", "par"], 2), states, 105 * S)
    line = point(event, "prober-1", precision="ms")
    assert line.startswith("incident_locations,kind=transfer,site=bank,state=open ")
    assert 'locations="fra,par"' in line and "failing=2i" in line and line.endswith(" 100000")


@pytest.mark.parametrize(("section", "message"), [
    ({"confirm": 0}, "confirm must be between 1 and 100"),
    ({"confirm": "most"}, "confirm"),
    ({"poll": "10s", "stale_after": "5s"}, "stale_after (5s) is shorter than poll (10s)"),
    ({"quorum": 2}, "quorum"),
])
def test_locations_config_errors(section, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        IncidentsConfig.model_validate({"locations": section})


def test_locations_config_default_is_off():
    assert IncidentsConfig().locations is None
    cfg = IncidentsConfig.model_validate({"locations": {"confirm": "all", "poll": "1s"}})
    assert cfg.locations is not None
    assert cfg.locations.confirm == "all" and cfg.locations.poll == 1.0 and cfg.locations.stale_after == 120.0


def test_reader_against_influxdb(influx_db):
    now = time.time_ns()
    lines = [
        incident_point(site="bank", check="transfer", kind="transfer", location="par", state="open",
                       reason="http_status: HTTP 503 (3 consecutive failures)", failed_step="create",
                       duration_s=0.0, time_ns=now - 60 * S),
        incident_point(site="bank", check="transfer", kind="transfer", location="fra", state="open",
                       reason="r", failed_step="create", duration_s=0.0, time_ns=now - 90 * S),
        incident_point(site="bank", check="transfer", kind="transfer", location="fra", state="resolved",
                       reason="r", failed_step="create", duration_s=20.0, time_ns=now - 70 * S),
        prober_point(location="par", instance="p1", time_ns=now - 5 * S),
        prober_point(location="fra", instance="f1", time_ns=now - 300 * S),  # stale
        prober_point(location="fra", instance="f2", time_ns=now - 2 * S),
    ]
    consensus = Consensus()
    states = [st("par", "open", 100), st("fra", "open", 101)]
    (opened,) = consensus.step(decide(states, ["fra", "par"], 2), states, 105 * S)
    lines.append(point(opened, "p1"))
    influx_db.server.write_lines(influx_db.name, lines)
    client = QueryClient(url=influx_db.url, database=influx_db.name)
    snap = LocationsReader(client, stale_after_s=120).read()
    by_location = {s.location: s for s in snap.states}
    assert by_location["par"].state == "open" and by_location["par"].at_ns == (now - 60 * S) // 1_000_000 * 1_000_000
    assert by_location["par"].reason.startswith("http_status") and by_location["par"].failed_step == "create"
    assert by_location["fra"].state == "resolved"
    assert sorted((r.location, r.instance) for r in snap.reporters) == [("fra", "f2"), ("par", "p1")]
    written = snap.written[("bank", "transfer")]
    assert written.id == opened.incident.id and written.locations == ("fra", "par") and written.since_ns == 100 * S


def _loop(location: str, now_s: float, maintenance=()):
    sent: list = []
    loop = CrossLocationIncidents(
        LocationsConfig(confirm=2, poll="1s", stale_after="30s"), reader=Unread(), writer=Lines(), notify=sent.append,
        location=location, instance=f"prober-{location}", maintenance=list(maintenance), clock=lambda: int(now_s * S))
    return loop, sent


def _snapshot(states, reporters, written=None):
    return Snapshot(states=states, reporters=reporters, written=written or {})


def test_only_the_acting_instance_writes_and_notifies_and_a_successor_adopts():
    reporters = [Reporter("fra", "prober-fra", 99 * S), Reporter("par", "prober-par", 99 * S)]
    states = [st("par", "open", 90), st("fra", "open", 92)]
    fra, fra_sent = _loop("fra", 100)
    par, par_sent = _loop("par", 100)
    (event,) = fra.apply(_snapshot(states, reporters))
    assert par.apply(_snapshot(states, reporters)) == [] and not par.acting
    assert len(fra_sent) == 1 and par_sent == [] and len(fra.writer.lines) == 1 and par.writer.lines == []
    message = fra_sent[0]
    assert (message.event, message.location, message.capability_state) == ("opened", "fra, par", "outage")
    assert (
        message.what_fails == "check `transfer` fails at step `create`: http_status: HTTP 503 (3 consecutive failures)"
    )
    status = par.status()
    assert status["acting"] == {"location": "fra", "instance": "prober-fra"} and not status["this_instance_acts"]
    assert status["capabilities"][0]["failing"] == ["fra", "par"] and status["capabilities"][0]["confirmed"]
    # fra stops reporting; par reads what fra wrote, takes over without a second "opened"
    par.clock = lambda: 200 * S
    later = [Reporter("fra", "prober-fra", 99 * S), Reporter("par", "prober-par", 199 * S)]
    written = {("bank", "transfer"): event.incident}
    assert par.apply(_snapshot(states, later, written)) == [] and par.acting
    resolved = [st("par", "resolved", 150), st("fra", "open", 92)]
    (end,) = par.apply(_snapshot(resolved, later, written))
    assert end.event == "resolved" and end.incident.resolved_ns == 150 * S
    assert [m.event for m in par_sent] == ["resolved"] and par_sent[0].capability_state == "ok"


def test_maintenance_silences_cross_location_notifications_but_not_points():
    window = MaintenanceWindow(site="bank", start="1970-01-01T00:00:00Z", end="1970-01-02T00:00:00Z")
    loop, sent = _loop("fra", 100, maintenance=[window])
    reporters = [Reporter("fra", "prober-fra", 99 * S), Reporter("par", "prober-par", 99 * S)]
    (event,) = loop.apply(_snapshot([st("par", "open", 90), st("fra", "open", 92)], reporters))
    assert sent == [] and loop.silenced == 1 and len(loop.writer.lines) == 1


# ── dating from the pooled runs ───────────────────────────────────────────────────────

def pooled(fra: str, par: str) -> list[tuple[bool, int]]:
    """The runs of two locations merged in time order: fra at even seconds, par at odd
    ones (``X`` failed, ``.`` passed; spaces are for the eye)."""
    runs = [(c == "X", 2 * i * S) for i, c in enumerate(fra.replace(" ", ""))]
    runs += [(c == "X", (2 * i + 1) * S) for i, c in enumerate(par.replace(" ", ""))]
    return sorted(runs, key=lambda run: run[1])


def within(runs: list[tuple[bool, int]], estimate_s: float, now_s: float, floor_s: float = 0) -> list[tuple[bool, int]]:
    start, end = around(int(estimate_s * S), int(now_s * S), int(floor_s * S))
    return [run for run in runs if start <= run[1] <= end]


# A failure rate (about 50 % of runs) from t=40 s to t=80 s at both locations, 5 % noise.
RATE_FROM_40 = (".....X.... .......... XX.X.XX..X XX.X.X.XX.",
                ".......... .......... .XX.X..XXX X.XX.XX.X.")
# fra's runs happen to pass from t=62 s on, par's keep failing until t=79 s.
RATE_TO_80 = (".......... XX.X.XX.XX X.XX.X.XX. X......... .......... .......... ..........",
              ".......... X.XX.XX.X. XX.X.XXX.X .XX.X.XX.X .......... .......... ..........")
# A hard outage from t=40 s to t=80 s, a noise failure at par before it and after it.
HARD = (".......... .......... XXXXXXXXXX XXXXXXXXXX .......... ..........",
        ".......... ......X... XXXXXXXXXX XXXXXXXXXX .X........ ..........")


@pytest.mark.parametrize(("runs", "earliest_s", "now_s", "old_s", "pooled_s"), [
    # fra dated its start from a noise failure at 10 s: the pooled runs put it at 40 s
    (pooled(*RATE_FROM_40), 10, 79, 10, 40),
    # a hard outage: both locations were exact, the pooled runs agree (par's noise at 33 s is not the start)
    (pooled(*HARD), 40, 50, 40, 40),
])
def test_pooled_start(runs, earliest_s, now_s, old_s, pooled_s):
    assert earliest_s == old_s  # the old rule: the earliest start among the failing locations
    assert pooled_start(within(runs, earliest_s, now_s), int(earliest_s * S), 3) == pooled_s * S


@pytest.mark.parametrize(("runs", "first_back_s", "since_s", "now_s", "pooled_s"), [
    # fra was back at 62 s by its own runs; par failed until 79 s: the rate ended at 80 s
    (pooled(*RATE_TO_80), 62, 20, 102, 80),
    # a hard outage: the first success after it, par's noise failure at 83 s does not stretch it
    (pooled(*HARD), 80, 40, 86, 80),
])
def test_pooled_end(runs, first_back_s, since_s, now_s, pooled_s):
    window = within(runs, first_back_s, now_s, since_s)
    assert pooled_end(window, int(first_back_s * S), 3) == pooled_s * S


@pytest.mark.parametrize(("runs", "estimate", "expected"), [
    ([], 50 * S, 50 * S),  # nothing read: the per-location estimate
    ([(False, 10 * S), (False, 11 * S)], 50 * S, 50 * S),  # no failure in the window
    ([(False, 10 * S), (True, 11 * S)], 50 * S, 50 * S),  # still failing at the last run: no end seen
])
def test_pooled_end_keeps_the_estimate_when_the_runs_show_no_end(runs, estimate, expected):
    assert pooled_end(runs, estimate, 3) == expected


def test_pooled_start_keeps_the_estimate_without_a_failure():
    assert pooled_start([(False, 10 * S), (False, 12 * S)], 11 * S, 3) == 11 * S


@pytest.mark.parametrize(("estimate_s", "now_s", "floor_s", "window_s"), [
    (100, 130, 0, (70, 130)),  # as long before as after
    (100, 130, 90, (90, 130)),  # never before the floor (the start, or the previous incident's end)
    (8 * 3600, 15 * 3600, 0, (2 * 3600, 14 * 3600)),  # at most 6 h either side
])
def test_runs_window_around_an_estimate(estimate_s, now_s, floor_s, window_s):
    assert around(estimate_s * S, now_s * S, floor_s * S) == (window_s[0] * S, window_s[1] * S)


def test_consensus_dates_the_incident_from_the_pooled_runs():
    """The per-location estimates (fra from a noise failure at 10 s; fra back at 62 s)
    against the pooled runs: the incident is 40 s → 80 s, its id from the pooled start."""
    consensus = Consensus(min_failures=3)
    alive = ["fra", "par"]
    key = ("bank", "login")
    states = [st("fra", "open", 10, check="login", kind="login"), st("par", "open", 41, check="login", kind="login")]
    decisions = decide(states, alive, 2)
    (window,) = consensus.windows(decisions, states, 79 * S).values()
    assert window == RunsWindow("bank", "login", ("login",), ("fra", "par"), 0, 79 * S)
    runs = pooled(*RATE_FROM_40)
    (opened,) = consensus.step(decisions, states, 79 * S, runs={key: within(runs, 10, 79)})
    assert opened.incident.since_ns == 40 * S  # the old rule said 10 s
    assert opened.incident.id == incident_id("bank", "login", 40 * S)

    states = [
        st("fra", "resolved", 62, check="login", kind="login"),
        st("par", "open", 41, check="login", kind="login"),
    ]
    decisions = decide(states, alive, 2)
    (window,) = consensus.windows(decisions, states, 102 * S).values()
    assert (window.start_ns, window.end_ns) == (40 * S, 102 * S)  # around fra's end, not before the start
    runs = pooled(*RATE_TO_80)
    (resolved,) = consensus.step(decisions, states, 102 * S, runs={key: within(runs, 62, 102, 40)})
    assert resolved.incident.resolved_ns == 80 * S  # the old rule said 62 s
    assert resolved.incident.id == opened.incident.id and resolved.incident.since_ns == 40 * S
    assert resolved.incident.duration_s == 40


def test_consensus_without_pooled_runs_keeps_the_per_location_estimates():
    consensus = Consensus()
    states = [st("fra", "open", 10), st("par", "open", 41)]
    (opened,) = consensus.step(decide(states, ["fra", "par"], 2), states, 79 * S, runs={})
    assert opened.incident.since_ns == 10 * S
    states = [st("fra", "resolved", 62), st("par", "open", 41)]
    (resolved,) = consensus.step(decide(states, ["fra", "par"], 2), states, 102 * S)
    assert resolved.incident.resolved_ns == 62 * S


def test_the_next_incident_reads_runs_from_after_the_previous_end():
    consensus = Consensus()
    states = [st("fra", "open", 10), st("par", "open", 12)]
    consensus.step(decide(states, ["fra", "par"], 2), states, 20 * S)
    states = [st("fra", "resolved", 30), st("par", "open", 12)]
    consensus.step(decide(states, ["fra", "par"], 2), states, 40 * S)
    states = [st("fra", "open", 50), st("par", "open", 52)]
    (window,) = consensus.windows(decide(states, ["fra", "par"], 2), states, 80 * S).values()
    assert window.start_ns == 30 * S  # not 20 s: the runs of the first incident are not pooled


def _run(location: str, at_ns: int, outcome: Outcome, check: str = "login", kind: Kind = "login",
         failed_step: str = "token") -> JourneyResult:
    ok = outcome is Outcome.OK
    return JourneyResult(site="bank", check=check, kind=kind, location=location, outcome=outcome, started_at_ns=at_ns,
                         duration_ms=12.0, failed_step="" if ok else failed_step, error="" if ok else "HTTP 503")


def test_reader_pools_the_check_points_of_a_window(influx_db):
    now = time.time_ns() // 1_000_000 * 1_000_000
    fail, ok = Outcome.HTTP_STATUS, Outcome.OK
    results = [
        _run("fra", now - 50 * S, fail),  # before the window
        _run("fra", now - 40 * S, fail), _run("par", now - 39 * S, ok), _run("fra", now - 38 * S, ok),
        _run("par", now - 37 * S, fail), _run("nyc", now - 36 * S, fail),  # nyc is not one of the failing locations
        _run("fra", now - 35 * S, Outcome.SKIPPED),  # not counted
        _run("par", now - 34 * S, fail, check="login-2"),  # another check of the capability
        _run("fra", now - 33 * S, fail, check="transfer", kind="transfer", failed_step="token"),  # its login step
        _run("par", now - 32 * S, fail, check="transfer", kind="transfer", failed_step="create"),
        _run("par", now - 10 * S, fail),  # after the window
    ]
    lines = [line for r in results for line in journey_lines(r, instance=f"prober-{r.location}")]
    influx_db.server.write_lines(influx_db.name, lines)
    reader = LocationsReader(QueryClient(url=influx_db.url, database=influx_db.name), stale_after_s=120)
    windows = {
        ("bank", "login"): RunsWindow("bank", "login", ("login",), ("fra", "par"), now - 45 * S, now - 20 * S),
        ("bank", "transfer"): RunsWindow("bank", "transfer", ("transfer",), ("fra", "par"), now - 45 * S, now - 20 * S),
    }
    runs = reader.read_runs(windows, {("bank", "transfer"): frozenset({"token"})})
    assert runs[("bank", "login")] == [(True, now - 40 * S), (False, now - 39 * S), (False, now - 38 * S),
                                       (True, now - 37 * S)]
    assert runs[("bank", "transfer")] == [(True, now - 32 * S)]


def test_poll_dates_from_the_pooled_runs_read_from_influxdb(influx_db):
    """The loop reads the states, then the check points around them, and opens the
    incident at the pooled start (fra's noise failure at -60 s is not it)."""
    now = time.time_ns() // 1_000_000 * 1_000_000

    def at(s: float) -> int:
        return now + int(s * S)

    fra, par = RATE_FROM_40
    results = [_run("fra", at(2 * i - 80), Outcome.HTTP_STATUS if c == "X" else Outcome.OK)
               for i, c in enumerate(fra.replace(" ", ""))]
    results += [_run("par", at(2 * i + 1 - 80), Outcome.HTTP_STATUS if c == "X" else Outcome.OK)
                for i, c in enumerate(par.replace(" ", ""))]
    lines = [line for r in results for line in journey_lines(r, instance=f"prober-{r.location}")]
    lines += [
        incident_point(site="bank", check="login", kind="login", location="fra", state="open", reason="r",
                       failed_step="token", duration_s=0.0, time_ns=at(-70)),
        incident_point(site="bank", check="login", kind="login", location="par", state="open", reason="r",
                       failed_step="token", duration_s=0.0, time_ns=at(-39)),
        prober_point(location="fra", instance="prober-fra", time_ns=at(-1)),
        prober_point(location="par", instance="prober-par", time_ns=at(-1)),
    ]
    influx_db.server.write_lines(influx_db.name, lines)
    sent: list = []
    loop = CrossLocationIncidents(
        LocationsConfig(confirm=2, poll="1s", stale_after="30s"),
        reader=LocationsReader(QueryClient(url=influx_db.url, database=influx_db.name), 30.0), writer=Lines(),
        notify=sent.append, location="fra", instance="prober-fra", clock=lambda: now)
    (event,) = asyncio.run(loop.poll())
    assert event.event == "opened" and event.incident.since_ns == at(-40)  # the old rule: at(-70)
    assert sent[0].since_ns == at(-40) and loop.pooled_errors == 0


class _NoRuns:
    """A reader whose second request fails (InfluxDB went away between the two)."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def read(self) -> Snapshot:
        return self.snap

    def read_runs(self, windows, login_steps=None):
        raise QueryError("cannot reach InfluxDB at http://127.0.0.1:1: refused")


def test_poll_without_the_pooled_runs_dates_from_the_locations():
    reporters = [Reporter("fra", "prober-fra", 99 * S), Reporter("par", "prober-par", 99 * S)]
    loop, sent = _loop("fra", 100)
    loop.reader = _NoRuns(_snapshot([st("par", "open", 90), st("fra", "open", 92)], reporters))
    (event,) = asyncio.run(loop.poll())
    assert event.incident.since_ns == 90 * S and loop.pooled_errors == 1 and len(sent) == 1


def test_the_previous_end_is_also_read_from_the_resolved_points(influx_db):
    """An instance that did not resolve the previous incident (it took over since, or lost
    its state_dir) reads its end from the latest ``incident_locations`` point: the next
    incident's runs are read from after it."""
    consensus = Consensus()
    states = [st("fra", "open", 10), st("par", "open", 12)]
    (opened,) = consensus.step(decide(states, ["fra", "par"], 2), states, 20 * S)
    states = [st("fra", "resolved", 30), st("par", "open", 12)]
    (resolved,) = consensus.step(decide(states, ["fra", "par"], 2), states, 40 * S)
    influx_db.server.write_lines(influx_db.name, [point(opened, "prober-fra"), point(resolved, "prober-fra")])
    snap = LocationsReader(QueryClient(url=influx_db.url, database=influx_db.name), stale_after_s=120).read()
    assert snap.ended == {("bank", "transfer"): 30 * S} and snap.written == {}

    par, _ = _loop("par", 100)  # never acted, no state of its own
    reporters = [Reporter("par", "prober-par", 99 * S)]
    later = [st("fra", "open", 50), st("par", "open", 52)]
    par.prepare(Snapshot(states=later, reporters=reporters, ended=snap.ended))
    (window,) = par.consensus.windows(par.decisions, later, 80 * S).values()
    assert window.start_ns == 30 * S  # not 20 s: the runs of the first incident are not pooled
    assert par.status()["capabilities"][0]["previous_end"] == "1970-01-01T00:00:30Z"
    par.prepare(Snapshot(states=later, reporters=reporters, ended={("bank", "transfer"): 25 * S}))
    assert par.consensus.resolved[("bank", "transfer")] == 30 * S  # an older end never moves it back
