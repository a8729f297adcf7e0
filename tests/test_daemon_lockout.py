"""Lockout protection against a bank refusing the prober's logins."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import pytest

from prober.daemon.lockout import LockoutTracker, first_pauses
from prober.daemon.scheduler import OVERLAP_ERROR
from prober.daemon.service import ProberService
from prober.loading import load
from prober.results import JourneyResult, Outcome
from prober.simbank import BankServer, Fault
from prober.writer.writer import ResultWriter
from tests.daemon_helpers import Recorder, check, config_text, wait_for
from tests.notify_helpers import Receiver

pytestmark = pytest.mark.exclusive  # back-off pauses measured in seconds

COOLDOWN = 1.5


def _token_requests(bank: BankServer) -> int:
    return bank.state.requests_by_path.get("POST /oauth/token", 0)


async def test_site_backs_off_after_auth_failures_and_resumes(bank: BankServer, tmp_path: Path) -> None:
    bank.state.password = "changed-by-the-bank"  # the prober's password is now wrong
    path = tmp_path / "prober.toml"
    path.write_text(config_text(
        bank.url,
        [check("login", interval="200ms"), check("accounts", interval="200ms")],
        daemon={"lockout_after": 3, "lockout_first_pause": f"{COOLDOWN}s", "lockout_cooldown": f"{COOLDOWN}s",
                "state_dir": str(tmp_path / "state")},
    ))
    recorder = Recorder()
    service = ProberService(load(path), writer=ResultWriter(None, spool_dir=tmp_path / "spool"), consumers=[recorder])
    await service.start()
    try:
        await wait_for(lambda: service.scheduler.lockout_skips >= 1, timeout=5, what="the lockout")
        locked_at = time.monotonic()
        auth_failures = [r for r in recorder.results if r.outcome is Outcome.AUTH]
        # 3 failures lock the site; a run already in flight may add one.
        assert 3 <= len(auth_failures) <= 4, [(r.check, r.outcome) for r in recorder.results]
        at_lock = _token_requests(bank)
        assert at_lock == len(auth_failures)

        # During the cool-down nothing reaches the bank; both checks record skipped runs.
        await asyncio.sleep(COOLDOWN * 0.6)
        assert _token_requests(bank) == at_lock
        # A run slower than the 200 ms interval (a loaded machine) may add an overlap skip.
        skipped = [r for r in recorder.results if r.outcome is Outcome.SKIPPED and r.error != OVERLAP_ERROR]
        assert {r.check for r in skipped} == {"login", "accounts"}
        assert all(re.search(r"backing off after [34] consecutive auth failures \(lockout protection, backing_off\) "
                             r"until \S+Z$", r.error) for r in skipped), [r.error for r in skipped]
        assert (tmp_path / "state" / "lockout.json").exists()

        # After the cool-down: one probe run, refused again → backing off again.
        await wait_for(lambda: _token_requests(bank) > at_lock, timeout=COOLDOWN + 2, what="the probe run")
        assert time.monotonic() - locked_at >= COOLDOWN * 0.9
        await asyncio.sleep(0.6)
        assert _token_requests(bank) == at_lock + 1

        # The bank accepts the password again: the next probe passes and checks resume.
        bank.state.password = "s3cret-pw"
        await wait_for(lambda: len([r for r in recorder.results if r.outcome is Outcome.OK]) >= 6,
                       timeout=COOLDOWN + 3, what="runs to resume")
        assert {r.check for r in recorder.results if r.outcome is Outcome.OK} == {"login", "accounts"}
        assert service.lockout.locked_sites() == {}
    finally:
        await service.stop(grace=1.0)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Incidents:
    """Records what the lockout asks of the incident service (pure logic: no service)."""

    def __init__(self) -> None:
        self.opened: list[dict] = []
        self.resolved: list[tuple[str, int]] = []
        self.ended: dict[str, str] = {}

    def open_external(self, **incident) -> str:
        self.opened.append(incident)
        return f"i{len(self.opened)}"

    def resolve_external(self, incident_id: str, *, resolved_ns: int, ended: str = "") -> bool:
        self.resolved.append((incident_id, resolved_ns))
        self.ended[incident_id] = ended
        return True

    def adopt_external(self, incident_id: str) -> bool:
        return incident_id not in {i for i, _ in self.resolved}


_at = iter(range(1, 10**9))


def _result(outcome: Outcome, check: str = "login", site: str = "bank") -> JourneyResult:
    return JourneyResult(site=site, check=check, kind="login", location="here", outcome=outcome,
                         started_at_ns=next(_at), duration_ms=1.0)


def _feed(tracker: LockoutTracker, outcomes: str, checks: tuple[str, ...] = ("login",)) -> list[JourneyResult]:
    """``outcomes``: ``a`` for auth (refused), ``o`` for ok, ``t`` for a timeout."""
    codes = {"a": Outcome.AUTH, "o": Outcome.OK, "t": Outcome.TIMEOUT}
    results = [_result(codes[c], check=checks[i % len(checks)]) for i, c in enumerate(outcomes)]
    for result in results:
        tracker.consume(result)
    return results


def _probe(tracker: LockoutTracker, clock: Clock, outcome: Outcome, check: str = "login") -> None:
    clock.now = tracker.sites["bank"].until
    assert tracker.refusal("bank", check) is None
    tracker.consume(_result(outcome, check=check))


def test_a_refused_probe_doubles_the_pause_up_to_the_cooldown_then_credentials_refused() -> None:
    clock = Clock()
    tracker = LockoutTracker(after=3, cooldown=60.0, first_pauses={"bank": 10.0}, clock=clock)
    _feed(tracker, "aaa", checks=("login", "accounts", "cards"))
    site = tracker.sites["bank"]
    assert (site.state, site.pause, site.until) == ("backing_off", 10.0, clock.now + 10.0)
    assert tracker.counts() == {"backing_off": 1, "credentials_refused": 0}
    pauses, states = [], []
    for _ in range(4):
        _probe(tracker, clock, Outcome.AUTH)
        pauses.append(site.pause)
        states.append(site.state)
    assert pauses == [20.0, 40.0, 60.0, 60.0]
    assert states == ["backing_off", "backing_off", "credentials_refused", "credentials_refused"]
    assert tracker.counts() == {"backing_off": 0, "credentials_refused": 1}
    assert "credentials_refused" in (tracker.refusal("bank", "accounts") or "")


def test_a_probe_that_authenticates_resumes_at_once_and_the_next_back_off_is_short_again() -> None:
    clock = Clock()
    tracker = LockoutTracker(after=3, cooldown=900.0, first_pauses={"bank": 30.0}, clock=clock)
    _feed(tracker, "oaoaaa", checks=("login", "accounts"))
    site = tracker.sites["bank"]
    assert tracker.refusal("bank", "accounts") is not None
    assert tracker.refusal("bank", "accounts") is not None
    _probe(tracker, clock, Outcome.AUTH)  # 30 s → 60 s
    assert site.pause == 60.0
    clock.now = site.until
    assert tracker.refusal("bank", "accounts") is None  # the probe
    assert "waiting for the probe run of check accounts" in (tracker.refusal("bank", "login") or "")
    doc = tracker.status()["bank"]
    assert doc["state"] == "backing_off" and doc["consecutive_auth_failures"] == 4
    assert doc["skipped_checks"] == {"accounts": 2, "login": 1}
    assert doc["auth_failures"] == {"refused": 5, "runs": 7, "rate": round(5 / 7, 3)}
    tracker.consume(_result(Outcome.OK, check="accounts"))
    assert tracker.refusal("bank", "login") is None
    doc = tracker.status()["bank"]
    assert (doc["state"], doc["until"], doc["skipped_checks"], doc["consecutive_auth_failures"]) == ("ok", None, {}, 0)
    _feed(tracker, "aaa")
    assert (site.state, site.pause) == ("backing_off", 30.0)


def test_the_first_pause_defaults_to_the_shortest_interval_and_never_exceeds_the_cooldown() -> None:
    clock = Clock()
    tracker = LockoutTracker(after=2, cooldown=45.0, first_pauses={"bank": 300.0, "other": 5.0}, clock=clock)
    _feed(tracker, "aa")
    assert tracker.sites["bank"].pause == 45.0
    assert tracker.first_pause("other") == 5.0 and tracker.first_pause("unknown") == 45.0


def test_the_incident_opens_from_the_failures_seen_and_resolves_once_logins_pass_again() -> None:
    clock = Clock()
    incidents = Incidents()
    tracker = LockoutTracker(after=3, cooldown=900.0, first_pauses={"bank": 30.0}, incidents=incidents, clock=clock)
    runs = _feed(tracker, "oaoaoaaa", checks=("login", "accounts", "cards"))
    [opened] = incidents.opened
    assert (opened["site"], opened["kind"], opened["location"], opened["check"]) == ("bank", "login", "here", "lockout")
    assert (opened["outcome"], opened["rule"]) == ("auth", "lockout protection")
    assert opened["since_ns"] == runs[5].started_at_ns  # the first refusal of the streak
    assert opened["reason"].startswith("intermittent auth failures: 5 of the last 8 logins refused (401/403); "
                                       "backing off until ")
    _probe(tracker, clock, Outcome.OK)
    _feed(tracker, "aaa")  # backs off again: the same incident, not a new one
    assert len(incidents.opened) == 1
    _probe(tracker, clock, Outcome.OK)
    _feed(tracker, "oooooooo")
    assert incidents.resolved == []  # the probe and 8 more: 9 of the 10 runs needed
    last = _feed(tracker, "o")
    assert incidents.resolved == [("i1", last[0].started_at_ns - 9)]  # dated by the probe that authenticated
    assert tracker.sites["bank"].incident == ""


def test_a_site_no_longer_probed_is_forgotten_and_its_lockout_incident_closed() -> None:
    incidents, clock = Incidents(), Clock()
    tracker = LockoutTracker(after=3, cooldown=900.0, first_pauses={"bank": 30.0, "other": 5.0},
                             incidents=incidents, clock=clock)
    _feed(tracker, "aaa")
    assert len(incidents.opened) == 1 and tracker.refusal("bank", "login") is not None
    tracker.forget_unconfigured()
    assert incidents.resolved == []  # still configured: nothing happens
    tracker.first_pauses = {"other": 5.0}  # what a reload without the site's checks leaves
    tracker.forget_unconfigured()
    assert [i for i, _ in incidents.resolved] == ["i1"] and incidents.ended["i1"] == "its site is no longer probed"
    assert "bank" not in tracker.sites and tracker.refusal("bank", "login") is None
    _feed(tracker, "aaa")  # late runs of the removed site, in flight during the reload
    assert "bank" not in tracker.sites and len(incidents.opened) == 1


def test_dead_credentials_say_so() -> None:
    incidents = Incidents()
    tracker = LockoutTracker(after=3, cooldown=60.0, incidents=incidents, clock=Clock())
    _feed(tracker, "aaa", checks=("login", "accounts", "cards"))
    assert incidents.opened[0]["reason"].startswith(
        "credentials refused: 3 consecutive 401/403 across checks login, accounts, cards; backing off until ")


async def test_lockout_rules_and_persistence(tmp_path: Path) -> None:
    tracker = LockoutTracker(after=3, cooldown=60.0, state_dir=tmp_path)
    for outcome in (Outcome.AUTH, Outcome.AUTH, Outcome.TIMEOUT, Outcome.AUTH, Outcome.AUTH):
        tracker.consume(_result(outcome))
    assert tracker.refusal("bank", "login") is None  # a timeout reset the count
    tracker.consume(_result(Outcome.SKIPPED))  # skipped runs neither count nor reset
    tracker.consume(_result(Outcome.AUTH, check="accounts"))
    reason = tracker.refusal("bank", "login")
    assert reason and "site bank is backing off" in reason
    assert tracker.refusal("other", "login") is None
    saved = json.loads((tmp_path / "lockout.json").read_text())
    assert set(saved["sites"]) == {"bank"} and saved["sites"]["bank"]["state"] == "backing_off"

    # A restart keeps backing off.
    again = LockoutTracker(after=3, cooldown=60.0, state_dir=tmp_path)
    await again.start()
    assert again.refusal("bank", "accounts") is not None
    assert again.status()["bank"]["state"] == "backing_off"

    # After the cool-down, only one check probes; the others wait for its result.
    later = time.time() + 61.0
    assert again.refusal("bank", "accounts", now=later) is None
    assert "waiting for the probe run" in (again.refusal("bank", "login", now=later) or "")
    again.consume(_result(Outcome.OK, check="accounts"))
    assert again.refusal("bank", "login") is None
    assert json.loads((tmp_path / "lockout.json").read_text())["sites"]["bank"]["state"] == "ok"


async def test_the_state_saved_before_the_back_off_states_is_read(tmp_path: Path) -> None:
    until = time.time() + 100
    (tmp_path / "lockout.json").write_text(json.dumps({"until": {"bank": until}}))
    tracker = LockoutTracker(after=3, cooldown=60.0, state_dir=tmp_path)
    await tracker.start()
    assert tracker.locked_sites() == {"bank": until}
    assert tracker.status()["bank"]["state"] == "backing_off"


def _webhook(url: str) -> str:
    return f'\n[[notifiers]]\ntype = "webhook"\nurl = "{url}"\nretries = 0\n'


async def _daemon(bank: BankServer, influx_db, tmp_path: Path, rx: Receiver, checks: tuple[str, ...],
                  **daemon: str) -> tuple[ProberService, Recorder]:
    """A started daemon service: ``checks`` every 200 ms, lockout after 3, InfluxDB, a webhook."""
    path = tmp_path / "prober.toml"
    path.write_text(config_text(
        bank.url, [check(name, interval="200ms") for name in checks],
        daemon={"lockout_after": 3, "state_dir": str(tmp_path / "state"), **daemon},
        influxdb={"url": influx_db.url, "api": "v1", "database": influx_db.name, "flush_interval": "100ms"},
    ) + _webhook(rx.url))
    recorder = Recorder()
    service = ProberService(load(path), consumers=[recorder])
    await service.start()
    return service, recorder


def _events(rx: Receiver) -> list[tuple[str, str, str]]:
    return [(r["json"]["event"], r["json"]["kind"], r["json"]["check"]) for r in rx.requests]


async def test_intermittent_auth_failures_back_off_briefly_and_keep_every_check_probed(
    bank: BankServer, influx_db, tmp_path: Path,
) -> None:
    # 40 % of logins answer 401: three refusals in a row across the site's checks come
    # within a second. A 30 s cool-down must not blind the prober to the whole bank.
    bank.faults.set("login", Fault(mode="intermittent", rate=0.4, status=401))
    async with Receiver() as rx:
        service, recorder = await _daemon(bank, influx_db, tmp_path, rx, ("login", "accounts", "payments"),
                                          lockout_cooldown="30s")
        try:
            await wait_for(lambda: service.scheduler.lockout_skips >= 1, timeout=10, what="a back-off")
            backed_off_at = time.time_ns()
            await asyncio.sleep(5.0)
            later = [r for r in recorder.results if r.started_at_ns > backed_off_at]
            # Every check kept being probed, and reached the bank's services after the back-off.
            assert {r.check for r in later if r.outcome is Outcome.OK} == {"login", "accounts", "payments"}
            assert len([r for r in later if r.outcome is not Outcome.SKIPPED]) >= 20
            document = service.status_document()
            lockout = document["lockout"]["simbank"]
            assert lockout["state"] in ("ok", "backing_off"), lockout  # a rate, not credentials refused
            assert 0.15 <= lockout["auth_failures"]["rate"] <= 0.7, lockout
            assert lockout["since"] is not None
            # One incident on the login capability, notified once (not once per check): the
            # lockout's, opened from the refusals ("lockout"), or the login check's own when
            # its own rule opened first (the lockout then opens none).
            [incident] = document["incidents"]["open"]
            assert incident["kind"] == "login" and incident["check"] in ("lockout", "login")
            await wait_for(lambda: rx.requests, timeout=5, what="the notification")
            # With 40 % of logins refused at random, a run of passing logins can resolve an
            # incident and a later run of refusals open the next one: never two at once,
            # each notified once when it opens and once when it ends.
            events = _events(rx)
            assert events[-1] == ("opened", "login", incident["check"]), events
            assert [e[:2] for e in events] == [("opened", "login"), ("resolved", "login")] * (len(events) // 2) + [
                ("opened", "login")], events
            assert "401" in rx.requests[0]["json"]["reason"]

            # The rate ends: the incident resolves once logins pass again, notified once.
            bank.faults.clear("login")
            await wait_for(lambda: len(rx.requests) >= len(events) + 1, timeout=10, what="the resolution")
            assert [e[:2] for e in _events(rx)] == [("opened", "login"), ("resolved", "login")] * (len(events) // 2 + 1)
            assert service.status_document()["lockout"]["simbank"]["state"] == "ok"
        finally:
            await service.stop(grace=2.0)

    skipped = influx_db.query("SELECT \"error\" FROM \"check\" WHERE \"outcome\" = 'skipped'")
    # Not the runs skipped because the previous one was still going or still waiting for a
    # slot: a loaded machine's slow runs.
    backed_off = [row for row in skipped if not row["error"].startswith("skipped: previous run still ")]
    # Each skip says why: the back-off with its end, or (after it) waiting for the one run
    # that probes, which a check due within the probe's claim sees.
    pausing = [row for row in backed_off if "lockout protection" in row["error"] and " until " in row["error"]]
    probing = [row for row in backed_off if "is backing off; waiting for the probe run of check " in row["error"]]
    assert pausing and len(pausing) + len(probing) == len(backed_off), [row["error"] for row in backed_off]
    ok = influx_db.query(f"SELECT count(\"success\") FROM \"check\" WHERE \"outcome\" = 'ok' "
                         f"AND time > {backed_off_at} GROUP BY \"check\"")
    assert len(ok) == 3, ok
    fields = influx_db.field_types("prober")
    assert {fields[f] for f in ("sites_backing_off", "sites_credentials_refused", "lockout_skips")} == {"integer"}
    assert influx_db.query('SELECT max("lockout_skips") FROM "prober"')[0]["max"] >= 1
    rows = influx_db.query('SELECT "reason", "check", "kind", "state" FROM "incident"')
    assert [(r["state"], r["kind"]) for r in rows] == [("open", "login"), ("resolved", "login")] * (len(rows) // 2)
    assert rows
    assert rows[0]["reason"].startswith("auth: ") and "401" in rows[0]["reason"]


async def test_dead_credentials_pause_longer_with_each_refused_probe_and_open_one_incident(
    bank: BankServer, influx_db, tmp_path: Path,
) -> None:
    bank.state.password = "changed-by-the-bank"  # the prober's password stopped working
    async with Receiver() as rx:
        service, recorder = await _daemon(bank, influx_db, tmp_path, rx, ("login", "accounts", "cards"),
                                          lockout_first_pause="300ms", lockout_cooldown="1200ms")
        try:
            await wait_for(lambda: service.scheduler.lockout_skips >= 1, timeout=5, what="the back-off")
            lockout = service.lockout.sites["simbank"]
            # Refused probes: 0.3 s → 0.6 s → 1.2 s (the cap: credentials refused), one login each.
            await wait_for(lambda: lockout.state == "credentials_refused", timeout=5, what="credentials refused")
            assert lockout.pause == 1.2
            executed = [r for r in recorder.results if r.outcome is not Outcome.SKIPPED]
            assert all(r.outcome is Outcome.AUTH for r in executed)
            assert _token_requests(bank) == len(executed)  # each run made one login, refused
            backed_off_at = min(r.started_at_ns for r in recorder.results if r.outcome is Outcome.SKIPPED)
            assert len([r for r in executed if r.started_at_ns > backed_off_at]) == 2  # the two probes
            document = service.status_document()["lockout"]["simbank"]
            assert document["state"] == "credentials_refused" and document["until"]
            assert set(document["skipped_checks"]) == {"login", "accounts", "cards"}
            await wait_for(lambda: rx.requests, timeout=5, what="the notification")
            message = rx.requests[0]["json"]
            assert (message["event"], message["kind"], message["check"]) == ("opened", "login", "lockout")
            assert message["reason"].startswith("auth: credentials refused: ")
            assert "401/403 across checks" in message["reason"] and "backing off until" in message["reason"]

            # The password works again: the next probe authenticates, every check resumes,
            # the incident resolves.
            bank.state.password = "s3cret-pw"
            await wait_for(lambda: len(rx.requests) >= 2, timeout=8, what="the resolution")
            assert _events(rx) == [("opened", "login", "lockout"), ("resolved", "login", "lockout")]
            assert service.status_document()["lockout"]["simbank"]["state"] == "ok"
            assert service.status_document()["incidents"]["open"] == []
        finally:
            await service.stop(grace=2.0)
    rows = influx_db.query('SELECT "reason", "check", "kind", "state" FROM "incident"')
    assert [(r["state"], r["kind"], r["check"]) for r in rows] == [("open", "login", "lockout"),
                                                                  ("resolved", "login", "lockout")]


def test_first_pauses_of_a_configuration(tmp_path: Path) -> None:
    path = tmp_path / "prober.toml"
    path.write_text(
        config_text("http://127.0.0.1:1", [check("login", interval="30s"), check("accounts", interval="2m")])
    )
    assert first_pauses(load(path).config) == {"simbank": 30.0}
    path.write_text(config_text("http://127.0.0.1:1", [check("login", interval="30s")],
                                daemon={"lockout_first_pause": "5s"}))
    assert first_pauses(load(path).config) == {"simbank": 5.0}


async def test_the_open_incident_survives_a_restart(tmp_path: Path) -> None:
    incidents = Incidents()
    tracker = LockoutTracker(after=3, cooldown=60.0, state_dir=tmp_path, incidents=incidents, clock=Clock())
    _feed(tracker, "aaa")
    assert tracker.sites["bank"].incident == "i1"
    again = LockoutTracker(after=3, cooldown=60.0, state_dir=tmp_path, incidents=incidents, clock=Clock())
    await again.start()
    assert again.sites["bank"].incident == "i1"  # taken back: no second incident at the next back-off
    incidents.resolved.append(("i1", 0))  # resolved meanwhile (e.g. its state was lost)
    third = LockoutTracker(after=3, cooldown=60.0, state_dir=tmp_path, incidents=incidents, clock=Clock())
    await third.start()
    assert third.sites["bank"].incident == ""
