"""Cross-location decision: the pure rules as tables, the reader against a real InfluxDB 1.6."""

from __future__ import annotations

import time

import pytest

from prober.config.incidents import IncidentsConfig, LocationsConfig, MaintenanceWindow
from prober.daemon.locations import CrossLocationIncidents
from prober.daemon.locations_influx import LocationsReader, Snapshot, point
from prober.incidents.locations import Consensus, LocationState, Reporter, acting, decide, live, required
from prober.report.influx import QueryClient
from prober.writer.points import incident_point, prober_point

S = 1_000_000_000


def st(location: str, state: str, at_s: float, check: str = "transfer", kind: str = "transfer") -> LocationState:
    return LocationState("bank", check, kind, location, state, int(at_s * S), reason="http_status: HTTP 503 (3 consecutive failures)",
                         failed_step="create")


@pytest.mark.parametrize(("confirm", "live_count", "need"), [
    (2, 3, 2), (2, 1, 1), (2, 0, 1), ("all", 3, 3), ("all", 0, 1), (1, 5, 1), (5, 3, 3),
])
def test_required_is_capped_at_the_live_locations(confirm, live_count, need):
    assert required(confirm, live_count) == need


def test_live_and_acting_instance():
    now = 1000 * S
    reporters = [Reporter("par", "b", now - 10 * S), Reporter("fra", "z", now - 200 * S), Reporter("par", "a", now - 5 * S)]
    assert [r.instance for r in live(reporters, now, 120)] == ["a", "b"]
    assert acting(reporters, now, 120) == Reporter("par", "a", now - 5 * S)
    assert acting(reporters, now, 300).location == "fra"  # fra sorts first while it is live
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


class _Lines:
    precision = "ns"

    def __init__(self) -> None:
        self.lines: list[str] = []

    def submit_lines(self, lines: list[str]) -> None:
        self.lines.extend(lines)


def _loop(location: str, now_s: float, maintenance=()):
    sent: list = []
    loop = CrossLocationIncidents(
        LocationsConfig(confirm=2, poll="1s", stale_after="30s"), reader=None, writer=_Lines(), notify=sent.append,
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
    assert message.what_fails == "check `transfer` fails at step `create`: http_status: HTTP 503 (3 consecutive failures)"
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
