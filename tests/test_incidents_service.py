"""IncidentService: consume() never blocks on notifiers, state survives a restart, one
``opened`` and one ``resolved`` point land in a real InfluxDB 1.6."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from prober.config.influxdb import influxdb_config
from prober.daemon.alerting import compose_incidents
from prober.incidents import IncidentChange, IncidentService
from prober.incidents.service import SAVE_INTERVAL
from prober.journey.runner import run_journey
from prober.notify import parse_notifier
from prober.results import JourneyResult, Kind, Outcome
from prober.simbank.faults import Fault
from prober.writer import ResultWriter
from tests.daemon_helpers import wait_for
from tests.incident_helpers import Lines, simbank
from tests.notify_helpers import Receiver


def result(check: str = "transfer", kind: Kind = "transfer", ok: bool = True, i: int = 0,
           step: str = "create") -> JourneyResult:
    return JourneyResult(site="simbank", check=check, kind=kind, location="local",
                         outcome=Outcome.OK if ok else Outcome.HTTP_STATUS, started_at_ns=time.time_ns() + i,
                         duration_ms=5.0, failed_step="" if ok else step, error="" if ok else "HTTP 503")


async def test_consume_is_fast_while_the_notifier_hangs_and_retries_happen(tmp_path):
    async with Receiver("hang") as rx:
        config, _ = simbank("http://127.0.0.1:9", open_after=1, resolve_after=1, flap_resolve_after=1)
        hook = parse_notifier({"type": "webhook", "url": rx.url, "timeout": "300ms", "retries": 1,
                                              "backoff": "10ms", "backoff_max": "20ms"})
        config = config.model_copy(update={"notifiers": [hook]})
        writer = Lines()
        service, alerting = compose_incidents(config, writer, state_dir=tmp_path)
        await alerting.start()
        await service.start()
        worst = 0.0
        for i in range(40):  # 20 incidents opened and resolved: 40 notifications
            started = time.perf_counter()
            service.consume(result(ok=i % 2 == 1, i=i))
            worst = max(worst, time.perf_counter() - started)
        # A consume that waited on the hanging notifier would take its 300 ms timeout; the
        # bound is far below it, and far above what a loaded machine adds.
        assert worst < 0.15, f"consume took {worst * 1000:.2f} ms"
        assert len(writer.lines) == 40
        assert await alerting.dispatcher.wait_idle(5)
        assert len(rx.requests) == 80 and alerting.dispatcher.failed == 40  # every message retried once
        await service.close()
        await alerting.close()


async def test_login_failures_are_not_counted_against_other_capabilities(tmp_path):
    config, _ = simbank("http://127.0.0.1:9")
    service, _ = compose_incidents(config, Lines(), state_dir=tmp_path)
    for i in range(10):
        service.consume(result(check="accounts", kind="accounts", ok=False, i=i, step="token"))
    assert service.tracker.open_incidents() == []
    for i in range(3):
        service.consume(result(check="accounts", kind="accounts", ok=False, i=i, step="balances"))
    assert [i.kind for i in service.tracker.open_incidents()] == ["accounts"]
    status = service.status()
    assert status.capabilities[("simbank", "accounts")].state == "outage"
    assert status.capabilities[("simbank", "login")].state == "ok"
    assert status.summary("simbank").startswith("partial outage: accounts (outage); ok: login")


async def test_maintenance_records_but_does_not_notify(tmp_path):
    async with Receiver() as rx:
        config, _ = simbank("http://127.0.0.1:9", maintenance=[{"site": "simbank", "kinds": ["transfer"],
                                                                "start": "2000-01-01T00:00:00Z",
                                                                "end": "2100-01-01T00:00:00Z"}])
        config = config.model_copy(update={"notifiers": [parse_notifier({"type": "slack", "url": rx.url})]})
        writer = Lines()
        service, alerting = compose_incidents(config, writer, state_dir=tmp_path)
        await alerting.start()
        await service.start()
        for i in range(3):
            service.consume(result(ok=False, i=i))
            service.consume(result(check="cards", kind="cards", ok=False, i=i, step="list"))
        assert await alerting.dispatcher.wait_idle(5)
        await service.close()
        await alerting.close()
    assert len(writer.lines) == 2 and alerting.silenced == 1
    assert [r["json"]["text"].splitlines()[0] for r in rx.requests] == ["INCIDENT simbank: cards outage"]


async def test_reminders_while_open(tmp_path):
    async with Receiver() as rx:
        config, _ = simbank("http://127.0.0.1:9", remind_every="200ms")
        config = config.model_copy(update={"notifiers": [parse_notifier({"type": "webhook", "url": rx.url})]})
        service, alerting = compose_incidents(config, Lines(), state_dir=tmp_path)
        await alerting.start()
        await service.start()
        opened_at = time.monotonic()
        for i in range(3):
            service.consume(result(ok=False, i=i))

        def reminders() -> int:
            return sum(r["json"]["event"] == "reminder" for r in rx.requests)

        await wait_for(lambda: reminders() >= 2, timeout=10, interval=0.02, what="two reminders")
        elapsed = time.monotonic() - opened_at
        await service.close()
        await alerting.close()
    events = [r["json"]["event"] for r in rx.requests]
    # At most one every 200 ms since the incident opened (and one more in flight as the
    # service closed): reminders repeat, they do not flood.
    assert events[0] == "opened" and 2 <= events.count("reminder") <= elapsed / 0.2 + 1, (events, elapsed)


async def test_incident_survives_a_restart_into_real_influxdb(bank, influx_db, tmp_path):
    config, plans = simbank(bank.url)
    writer = ResultWriter(influxdb_config(url=influx_db.url, api="v1", database=influx_db.name,
                                         flush_interval="50ms"), spool_dir=tmp_path / "spool")
    await writer.start()
    state = tmp_path / "state"
    bank.faults.set("transfer", Fault(mode="down"))
    first, first_alerting = compose_incidents(config, writer, state_dir=state)
    await first_alerting.start()
    await first.start()
    for _ in range(4):
        first.consume(await run_journey(plans["transfer"]))
    assert [e.event for e in first.events] == ["opened"]
    incident_id = first.events[0].incident.id
    await first.close()
    await first_alerting.close()

    bank.faults.clear("transfer")
    second, second_alerting = compose_incidents(config, writer, state_dir=state)
    await second_alerting.start()
    await second.start()
    assert [i.id for i in second.tracker.open_incidents()] == [incident_id]
    for _ in range(6):  # a short incident resolves after 2 × open_after successes
        second.consume(await run_journey(plans["transfer"]))
    assert [e.event for e in second.events] == ["resolved"]
    assert second.events[0].incident.id == incident_id
    await second.close()
    await second_alerting.close()
    assert await writer.wait_idle(10)
    await writer.close()

    rows = influx_db.query('SELECT "reason", "failed_step", "duration_s", "state", "kind" FROM "incident"')
    assert [r["state"] for r in rows] == ["open", "resolved"]
    opened, resolved = rows
    assert opened["kind"] == resolved["kind"] == "transfer"
    assert opened["failed_step"] == "create" and opened["reason"].startswith("http_status: ")
    assert opened["duration_s"] == 0 and resolved["duration_s"] > 0


async def test_reload_attributes_token_failures_of_added_checks_to_login(tmp_path):
    config, _ = simbank("http://127.0.0.1:9", open_after=1)
    site = config.sites[0]
    accounts = next(c for c in site.checks if c.name == "accounts")
    added = accounts.model_copy(update={"name": "accounts-2"})
    reloaded = config.model_copy(update={"sites": [site.model_copy(update={"checks": [*site.checks, added]})]})
    service, _ = compose_incidents(config, Lines(), state_dir=tmp_path)
    service.reload(reloaded)
    service.consume(result(check="accounts-2", kind="accounts", ok=False, step="token"))
    assert service.tracker.open_incidents() == []  # charged to login, not to accounts-2
    service.consume(result(check="accounts-2", kind="accounts", ok=False, step="balances"))
    assert [i.check for i in service.tracker.open_incidents()] == ["accounts-2"]


async def test_resolved_names_the_check_while_its_capability_still_fails(tmp_path):
    config, _ = simbank("http://127.0.0.1:9")
    site = config.sites[0]
    auth = next(c for c in site.checks if c.kind == "payments")
    second = auth.model_copy(update={"name": "card-authorisation-2"})
    async with Receiver() as rx:
        config = config.model_copy(update={
            "sites": [site.model_copy(update={"checks": [*site.checks, second]})],
            "notifiers": [parse_notifier({"type": "webhook", "url": rx.url})],
        })
        service, alerting = compose_incidents(config, Lines(), state_dir=tmp_path)
        await alerting.start()
        await service.start()
        for i in range(3):
            for name in (auth.name, second.name):
                service.consume(JourneyResult(
                    site="simbank", check=name, kind="payments", location="local", outcome=Outcome.TIMEOUT,
                    started_at_ns=(i + 1) * 10**9, duration_ms=2000.0, failed_step="authorise",
                    error="timeout: no complete answer within 2s (step timeout 2s)"))
        for i in range(3, 9):
            service.consume(result(check=auth.name, kind="payments", i=i * 10**9))
        for i in range(9, 15):
            service.consume(result(check=second.name, kind="payments", i=i * 10**9))
        assert await alerting.dispatcher.wait_idle(5)
        await service.close()
        await alerting.close()
    messages = [r["json"] for r in rx.requests]
    assert [m["event"] for m in messages] == ["opened", "opened", "resolved", "resolved"]
    first, last = messages[2], messages[3]
    assert first["title"].startswith(f"RESOLVED simbank: payments check `{auth.name}` is back after ")
    assert first["title"].endswith("; payments still degraded")
    assert first["text"].splitlines()[1].startswith(f"check `{auth.name}` of payments at simbank was failing from ")
    assert "payments (degraded)" in first["text"]  # the summary agrees with the title
    assert last["title"].startswith("RESOLVED simbank: payments is back after ")
    assert "payments (" not in last["text"]
    for message in messages:
        assert "timeout: timeout" not in message["text"] + message["reason"]
        assert message["reason"] == "timeout: no complete answer within 2s (step timeout 2s) (3 consecutive failures)"


async def test_notification_carries_the_check_tags(tmp_path):
    # simbank.toml tags card-authorisation with merchant_country = "DE".
    async with Receiver() as rx:
        config, _ = simbank("http://127.0.0.1:9")
        config = config.model_copy(update={"notifiers": [parse_notifier({"type": "webhook", "url": rx.url})]})
        service, alerting = compose_incidents(config, Lines(), state_dir=tmp_path)
        await alerting.start()
        await service.start()
        for i in range(3):
            service.consume(result(check="card-authorisation", kind="payments", ok=False, i=i, step="authorise-de"))
            service.consume(result(check="cards", kind="cards", ok=False, i=i, step="list"))
        assert await alerting.dispatcher.wait_idle(5)
        await service.close()
        await alerting.close()
    sent = {r["json"]["check"]: r["json"] for r in rx.requests}
    assert sent["card-authorisation"]["tags"] == {"merchant_country": "DE"}
    assert "check `card-authorisation` (merchant_country=DE) fails" in sent["card-authorisation"]["text"]
    assert sent["cards"]["tags"] == {}


def saved_window(state: Path) -> list[bool]:
    """The failed flags of the saved window of simbank's transfer check."""
    doc = json.loads((state / "incidents.json").read_text())
    return [bad for bad, _ in doc["checks"]["simbank\x1ftransfer\x1flocal"]["window"]]


async def wait_saved(state: Path, expected: list[bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if (state / "incidents.json").exists() and saved_window(state) == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"saved window {saved_window(state)} never became {expected}")


async def test_passing_runs_of_a_healthy_check_are_saved_on_a_slow_timer(tmp_path):
    """Serializing every check each second for runs that change nothing material costs
    more than the runs: only failures, and runs while failures are in the window, are
    saved within a second; the rest waits for the slow timer or the shutdown."""
    config, _ = simbank("http://127.0.0.1:9")
    service, alerting = compose_incidents(config, Lines(), state_dir=tmp_path)
    await alerting.start()
    await service.start()
    service.consume(result(ok=True, i=0))  # a check seen for the first time is saved
    await wait_saved(tmp_path, [False])
    for i in range(1, 5):
        service.consume(result(ok=True, i=i))
    await asyncio.sleep(3 * SAVE_INTERVAL)
    assert saved_window(tmp_path) == [False]  # passing runs of a healthy check: not yet
    service.consume(result(ok=False, i=5))
    await wait_saved(tmp_path, [False] * 5 + [True])  # a failure: within a second
    service.consume(result(ok=True, i=6))
    await wait_saved(tmp_path, [False] * 5 + [True, False])  # a failure in the window: too
    service.consume(result(ok=True, i=7))
    await service.close()
    await alerting.close()
    assert saved_window(tmp_path) == [False] * 5 + [True, False, False]  # everything on shutdown


async def test_subscribers_get_each_change_even_when_one_fails(tmp_path):
    """The service publishes what a consumer needs; a subscriber that raises costs the
    others nothing."""
    config, _ = simbank("http://127.0.0.1:9")
    seen: list[IncidentChange] = []

    def broken(change: IncidentChange) -> None:
        raise RuntimeError("subscriber bug")

    service = IncidentService(config, subscribers=[broken, seen.append], state_dir=tmp_path)
    for i in range(3):
        service.consume(result(check="card-authorisation", kind="payments", ok=False, i=i, step="authorise-de"))
    for i in range(3, 9):
        service.consume(result(check="card-authorisation", kind="payments", i=i))
    assert [c.event for c in seen] == ["opened", "resolved"]
    opened, resolved = seen
    assert opened.state == "open" and resolved.state == "resolved"
    assert opened.capability_state in ("degraded", "outage") and resolved.capability_state == "ok"
    assert opened.site_summary.startswith("partial outage: payments")
    assert dict(opened.tags) == {"merchant_country": "DE"}
    assert opened.incident.check == "card-authorisation"


def _auth(check: str, kind: Kind, i: int) -> JourneyResult:
    return JourneyResult(site="simbank", check=check, kind=kind, location="local", outcome=Outcome.AUTH,
                         started_at_ns=time.time_ns() + i, duration_ms=5.0, failed_step="token", error="HTTP 401")


async def test_an_externally_decided_incident_is_announced_carries_the_sites_auth_failures_and_survives_a_restart(
    tmp_path,
):
    config, _ = simbank("http://127.0.0.1:9", attribute_login_failures=False)
    seen: list[IncidentChange] = []
    service = IncidentService(config, subscribers=[seen.append], state_dir=tmp_path)
    await service.start()
    since = time.time_ns() - 5_000_000_000
    opened = service.open_external(site="simbank", check="lockout", kind="login", location="local", outcome="auth",
                                   reason="credentials refused: 3 consecutive 401/403", rule="lockout protection",
                                   since_ns=since)
    assert opened and [e.event for e in service.events] == ["opened"]
    assert service.open_external(site="simbank", check="lockout", kind="login", location="local", outcome="auth",
                                 reason="again", rule="lockout protection", since_ns=since) == ""  # one per capability
    [change] = seen  # published like any incident: the incident point, notifications
    assert (change.event, change.incident.check, change.incident.kind) == ("opened", "lockout", "login")
    assert change.incident.reason == "auth: credentials refused: 3 consecutive 401/403 (lockout protection)"
    assert change.incident.since_ns == since  # dated from the first refusal
    # While it is open, refused logins of any check of the site count towards it, not their own.
    for i in range(5):
        service.consume(_auth("login", "login", i))
        service.consume(_auth("accounts", "accounts", i))
    assert [e.event for e in service.events] == ["opened"]
    # The test customer's credentials refused does not prove customers cannot log in.
    assert service.status().capabilities[("simbank", "login")].state == "degraded"
    await service.close()

    again = IncidentService(config, subscribers=[seen.append], state_dir=tmp_path)
    assert again.adopt_external(opened) and not again.adopt_external("unknown")
    await again.start()
    end = time.time_ns()
    assert again.resolve_external(opened, resolved_ns=end) and not again.resolve_external(opened, resolved_ns=end)
    [resolved] = [e for e in again.events if e.event == "resolved"]
    assert resolved.incident.duration_s == (end - since) / 1e9
    assert (seen[-1].event, seen[-1].incident.resolved_ns) == ("resolved", end)
    for i in range(3):  # resolved: refused logins count for their checks again
        again.consume(_auth("login", "login", i))
    assert [e.event for e in again.events][-1] == "opened" and again.events[-1].incident.check == "login"
    # The "lockout" name is no member of the capability: the login check alone failing is an outage.
    assert again.status().capabilities[("simbank", "login")].state == "outage"
    await again.close()


def test_status_is_typed_a_snapshot_and_its_json_is_the_status_document(tmp_path):
    config, _ = simbank("http://127.0.0.1:9", open_after=2, resolve_after=1)
    t0 = 1_773_144_000 * 10**9  # 2026-03-10T12:00:00Z
    service = IncidentService(config, state_dir=tmp_path, clock=lambda: t0 + 100 * 10**9)

    def run(check: Kind, ok: bool, at_s: int, step: str = "create") -> None:
        service.consume(
            JourneyResult(
                site="simbank",
                check=check,
                kind=check,
                location="local",
                outcome=Outcome.OK if ok else Outcome.HTTP_STATUS,
                started_at_ns=t0 + at_s * 10**9,
                duration_ms=5.0,
                failed_step="" if ok else step,
                error="" if ok else "HTTP 503",
            )
        )

    for at in (0, 10):
        run("login", False, at, "token")
    for at in (20, 21, 22, 23):  # resolved at 20 (a short incident wants 2 × open_after clean runs)
        run("login", True, at)
    for at in (30, 40):
        run("transfer", False, at)
    status = service.status()
    login, transfer = status.capabilities[("simbank", "login")], status.capabilities[("simbank", "transfer")]
    assert (login.state, login.since_ns, login.incidents) == ("ok", t0 + 20 * 10**9, ())
    assert (transfer.state, transfer.since_ns) == ("outage", t0 + 30 * 10**9)
    assert transfer.incidents == status.open and [i.check for i in status.open] == ["transfer"]
    assert [(i.check, i.since_ns, i.resolved_ns) for i in status.recent] == [("login", t0, t0 + 20 * 10**9)]
    assert [s.kind for s in status.of_site("simbank")][:2] == ["login", "accounts"]
    assert status.summary("simbank").startswith("partial outage: transfer (outage); ok: login, accounts")

    for at in (50, 51, 52, 53):  # the transfer incident resolves: the status taken before does not change
        run("transfer", True, at)
    assert status.open[0].resolved_ns is None and service.status().open == ()

    doc = status.to_json()
    assert list(doc) == ["sites", "open", "recent"] and list(doc["sites"]) == ["simbank"]
    site = doc["sites"]["simbank"]
    assert site["summary"] == status.summary("simbank")
    assert list(site["capabilities"]) == [s.kind for s in status.of_site("simbank")]
    assert site["capabilities"]["login"] == {"state": "ok", "since": "2026-03-10T12:00:20Z", "incidents": []}
    incident = {
        "id": status.open[0].id, "site": "simbank", "kind": "transfer", "check": "transfer", "location": "local",
        "since": "2026-03-10T12:00:30Z", "resolved_at": None, "duration_s": 10.0, "failed_step": "create",
        "outcome": "http_status", "error": "HTTP 503", "flapping": False, "ended": "",
    }
    assert site["capabilities"]["transfer"] == {
        "state": "outage",
        "since": "2026-03-10T12:00:30Z",
        "incidents": [incident],
    }
    assert doc["open"] == [incident]
    assert [(i["check"], i["since"], i["resolved_at"], i["duration_s"]) for i in doc["recent"]] == [
        ("login", "2026-03-10T12:00:00Z", "2026-03-10T12:00:20Z", 20.0)]
    assert json.loads(json.dumps(doc)) == doc


def _without(config, *names: str):
    site = config.sites[0]
    checks = [c for c in site.checks if c.name not in names]
    return config.model_copy(update={"sites": [site.model_copy(update={"checks": checks})]})


async def test_an_incident_of_a_removed_check_is_closed_as_no_longer_probed_not_as_back(tmp_path):
    async with Receiver() as rx:
        config, _ = simbank("http://127.0.0.1:9", attribute_login_failures=False)
        config = config.model_copy(update={"notifiers": [parse_notifier({"type": "webhook", "url": rx.url})]})
        lines = Lines()
        service, alerting = compose_incidents(config, lines, state_dir=tmp_path)
        await alerting.start()
        await service.start()
        for i in range(3):
            service.consume(result(check="transfer", kind="transfer", ok=False, i=i))
            service.consume(result(check="cards", kind="cards", ok=False, i=i, step="list"))
        lockout = service.open_external(site="simbank", check="lockout", kind="login", location="local",
                                        outcome="auth", reason="credentials refused", rule="lockout protection",
                                        since_ns=time.time_ns())
        assert sorted(i.check for i in service.tracker.open_incidents()) == ["cards", "lockout", "transfer"]

        service.reload(_without(config, "transfer"))
        assert await alerting.dispatcher.wait_idle(5)
        # The lockout's incident is its decider's to end; the kept check's stays open.
        assert sorted(i.check for i in service.tracker.open_incidents()) == ["cards", "lockout"]
        assert lockout
        status = service.status()
        assert ("simbank", "transfer") not in status.capabilities
        [closed] = [i for i in status.recent if i.check == "transfer"]
        assert closed.ended and closed.resolved_ns is not None
        assert not any(key.check == "transfer" for key in service.tracker.checks)  # its runs are forgotten too
        await service.close()
        await alerting.close()
    messages = [r["json"] for r in rx.requests]
    assert [(m["event"], m["check"]) for m in messages][-1] == ("resolved", "transfer")
    last = messages[-1]
    assert last["title"] == "CLOSED simbank: transfer check `transfer` no longer probed"
    assert "is back" not in last["text"] and "without a recovery" in last["text"]
    assert last["ended"] == last["reason"].split("; closed: ", 1)[1]
    assert "no longer probed" in last["ended"]
    resolved_point = [line for line in lines.lines if line.startswith("incident,") and ",state=resolved " in line]
    assert len(resolved_point) == 1 and "check=transfer" in resolved_point[0] and "closed: " in resolved_point[0]


async def _transfer_incident_open(config, seen: list[IncidentChange], tmp_path) -> IncidentService:
    """A started service of ``config`` with the ``transfer`` check's incident open."""
    service = IncidentService(config, subscribers=[seen.append], state_dir=tmp_path)
    await service.start()
    for i in range(3):
        service.consume(result(check="transfer", kind="transfer", ok=False, i=i))
    assert [(i.check, i.kind) for i in service.tracker.open_incidents()] == [("transfer", "transfer")]
    return service


async def test_an_incident_of_a_check_removed_while_stopped_is_closed_at_the_next_start(tmp_path):
    config, _ = simbank("http://127.0.0.1:9")
    seen: list[IncidentChange] = []
    service = await _transfer_incident_open(config, seen, tmp_path)
    await service.close()

    again = IncidentService(_without(config, "transfer"), subscribers=[seen.append], state_dir=tmp_path)
    await again.start()
    assert [i.check for i in again.tracker.open_incidents()] == ["transfer"]  # restored, until told
    again.forget_unconfigured()  # the daemon does, once every consumer has started
    assert again.tracker.open_incidents() == []
    assert (seen[-1].event, seen[-1].incident.check) == ("resolved", "transfer") and seen[-1].incident.ended
    await again.close()
    third = IncidentService(_without(config, "transfer"), subscribers=[seen.append], state_dir=tmp_path)
    assert third.tracker.open_incidents() == []  # the closing was saved


async def test_an_incident_of_a_check_moved_to_another_capability_is_closed(tmp_path):
    config, _ = simbank("http://127.0.0.1:9")
    seen: list[IncidentChange] = []
    service = await _transfer_incident_open(config, seen, tmp_path)
    site = config.sites[0]
    moved = [c.model_copy(update={"kind": "payments"}) if c.name == "transfer" else c for c in site.checks]
    service.reload(config.model_copy(update={"sites": [site.model_copy(update={"checks": moved})]}))
    assert service.tracker.open_incidents() == []
    assert (seen[-1].event, seen[-1].incident.ended) == ("resolved", "its check now probes payments, not transfer")
    assert ("simbank", "transfer") not in service.status().capabilities  # no other check of it
    for i in range(3, 6):  # its runs count for its new capability from now on, on their own
        service.consume(result(check="transfer", kind="payments", ok=False, i=i))
    assert [(i.check, i.kind) for i in service.tracker.open_incidents()] == [("transfer", "payments")]
    await service.close()
