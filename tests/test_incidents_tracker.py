"""Tracker, capability view and maintenance windows: pure logic, no servers."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone

import pytest
from pydantic import ValidationError

from prober.config.incidents import IncidentsConfig, MaintenanceWindow
from prober.incidents import CheckKey, Observation, Thresholds, Tracker, capability_states, site_summary

S = 1_000_000_000


def run(tracker: Tracker, i: int, ok: bool | None, *, check="transfer", kind="transfer", step="create", site="bank"):
    outcome = "skipped" if ok is None else ("ok" if ok else "http_status")
    return tracker.observe(Observation(site, check, kind, "par", outcome, i * 30 * S,
                                       "" if ok else step, "" if ok else "HTTP 503"))


def play(tracker: Tracker, pattern: str, **kw):
    """`F` fail, `.` ok, `s` skipped; returns the events as (index, event)."""
    events = []
    for i, c in enumerate(pattern):
        event = run(tracker, i, {"F": False, ".": True, "s": None}[c], **kw)
        if event:
            events.append((i, event.event))
    return events


def test_opens_after_three_consecutive_and_a_short_one_resolves_after_six():
    t = Tracker(Thresholds())
    events = play(t, "..FFF......")
    assert events == [(4, "opened"), (10, "resolved")]


def test_a_long_steady_outage_resolves_after_two():
    t = Tracker(Thresholds())
    events = play(t, "F" * 20 + "..")
    assert events == [(2, "opened"), (21, "resolved")]


def test_two_lucky_runs_do_not_end_a_fresh_incident_of_a_failure_rate():
    # Three failures at the same step, two passes, failures again: the gaps of a
    # failure rate, not a recovery; one incident, not opened-resolved-opened.
    t = Tracker(Thresholds())
    events = play(t, "FFF..F.FF.F.F")
    assert events == [(2, "opened")]
    assert t.open_incidents()[0].flapping


def test_opened_event_carries_since_reason_and_step():
    t = Tracker(Thresholds())
    play(t, ".FFF")
    [incident] = t.open_incidents()
    assert incident.since_ns == 1 * 30 * S and incident.opened_ns == 3 * 30 * S
    assert incident.failed_step == "create" and incident.outcome == "http_status"
    assert incident.reason == "http_status: HTTP 503 (3 consecutive failures)"


def test_resolved_duration_runs_from_first_failure_to_first_success():
    t = Tracker(Thresholds())
    event = None
    for i, c in enumerate(".FFFF......"):
        event = run(t, i, c == ".") or event
    assert event is not None and event.event == "resolved"
    assert event.incident.duration_s == 4 * 30.0  # runs 1..4 failed, back at run 5
    assert t.open_incidents() == []


def test_skipped_runs_count_neither_way():
    t = Tracker(Thresholds())
    assert play(t, "FsFsF") == [(4, "opened")]
    assert play(t, "s.s") == []  # one success between skipped runs: still open
    assert play(t, "s....") == []  # five
    assert [e for _, e in play(t, "s.")] == ["resolved"]  # the sixth
    t2 = Tracker(Thresholds())
    events = play(t2, "FFFss.s.s....")
    assert events == [(2, "opened"), (12, "resolved")]


def test_streak_must_fail_at_the_same_step():
    t = Tracker(Thresholds())
    for i, step in enumerate(["token", "me", "token", "session"]):
        assert run(t, i, False, step=step) is None
    assert t.open_incidents() == []


def test_flapping_rate_opens_and_needs_a_clean_window_to_resolve():
    th = Thresholds(open_after=3, flap_failures=3, flap_window=6, resolve_after=2, flap_resolve_after=6)
    t = Tracker(th)
    events = play(t, "F.F.F")
    assert events == [(4, "opened")]
    [incident] = t.open_incidents()
    assert incident.flapping and incident.since_ns == 0
    assert incident.rule == "3 of the last 5 runs failed"
    assert play(t, "..F..") == []  # two successes do not end a flapping incident
    assert [e for _, e in play(t, ".")] == ["resolved"]  # six runs, one isolated failure among them


def test_steady_incident_becomes_flapping_after_two_returns_to_failure():
    th = Thresholds(resolve_after=2, flap_resolve_after=5)
    t = Tracker(th)
    play(t, "FFF.F")
    assert not t.open_incidents()[0].flapping  # one failure in the recovery is noise
    play(t, "..F")
    assert t.open_incidents()[0].flapping
    assert play(t, ".") == []
    assert [e for _, e in play(t, ".")] == ["resolved"]


def test_defaults_ignore_two_percent_noise_and_catch_thirty_percent():
    import random

    rng = random.Random(7)
    noise = Tracker(Thresholds())
    opened = 0
    for i in range(5000):
        step = next((s for s in ("list", "freeze", "limits", "unfreeze") if rng.random() < 0.02), None)
        event = noise.observe(Observation("b", "cards", "cards", "par", "ok" if step is None else "http_status",
                                          i * S, step or ""))
        opened += bool(event and event.event == "opened")
    assert opened <= 1  # about 0.03 expected per 1000 runs
    rate = Tracker(Thresholds())
    first = None
    for i in range(400):
        event = rate.observe(Observation("b", "login", "login", "par", "http_status" if rng.random() < 0.3 else "ok",
                                         i * S, "token"))
        if event and first is None:
            first = i
    assert first is not None and first < 150


def test_overrides_per_check():
    t = Tracker(Thresholds(), {"transfer": Thresholds(open_after=1, resolve_after=1)})
    assert play(t, "F..") == [(0, "opened"), (2, "resolved")]  # short: 2 × open_after
    assert play(t, "FF", check="cards", kind="cards") == []


def test_reminders_while_open():
    t = Tracker(Thresholds())
    play(t, "FFF")
    opened_at = 2 * 30 * S
    assert t.due_reminders(opened_at + 10 * S, 60) == []
    [reminder] = t.due_reminders(opened_at + 61 * S, 60)
    assert reminder.event == "reminder" and reminder.state == "open"
    assert t.due_reminders(opened_at + 100 * S, 60) == []
    assert len(t.due_reminders(opened_at + 122 * S, 60)) == 1
    assert t.due_reminders(opened_at + 1000 * S, None) == []


def test_state_round_trip_keeps_the_same_incident():
    t = Tracker(Thresholds())
    play(t, "FFF")
    incident_id = t.open_incidents()[0].id
    t2 = Tracker(Thresholds())
    t2.restore(t.to_json())
    assert [i.id for i in t2.open_incidents()] == [incident_id]
    events = [run(t2, 10 + i, True) for i in range(6)]
    assert events[:5] == [None] * 5
    assert events[5].event == "resolved" and events[5].incident.id == incident_id


def test_capability_view_is_per_kind_never_bank_down():
    t = Tracker(Thresholds())
    play(t, "FFF", check="transfer", kind="transfer")
    play(t, "...", check="login", kind="login")
    known = [(CheckKey("bank", "transfer", "par"), "transfer"), (CheckKey("bank", "login", "par"), "login"),
             (CheckKey("bank", "accounts", "par"), "accounts")]
    states = capability_states(known, t.open_incidents())
    assert states[("bank", "transfer")].state == "outage"
    assert states[("bank", "login")].state == "ok"
    summary = site_summary("bank", states)
    assert summary == "partial outage: transfer (outage); ok: login, accounts"
    assert "down" not in summary
    # two locations, one failing: degraded, not outage
    known.append((CheckKey("bank", "transfer", "fra"), "transfer"))
    assert capability_states(known, t.open_incidents())[("bank", "transfer")].state == "degraded"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_maintenance_one_off_window():
    w = MaintenanceWindow(
        site="bank", kinds=["transfer"], start="2025-03-01T22:00:00Z", end="2025-03-02T02:00:00+00:00"
    )
    assert w.covers("bank", "transfer", utc("2025-03-01T23:00:00"))
    assert not w.covers("bank", "login", utc("2025-03-01T23:00:00"))
    assert not w.covers("other", "transfer", utc("2025-03-01T23:00:00"))
    assert not w.covers("bank", "transfer", utc("2025-03-02T02:00:00"))


def test_maintenance_weekly_window_past_midnight():
    w = MaintenanceWindow.model_validate({"weekdays": ["sat"], "from": "22:00", "to": "02:00"})
    assert w.covers("any", "cards", utc("2025-03-01T22:30:00"))  # a Saturday
    assert w.covers("any", "cards", utc("2025-03-02T01:59:00"))  # the Sunday morning after
    assert not w.covers("any", "cards", utc("2025-03-02T22:30:00"))
    assert not w.covers("any", "cards", utc("2025-03-01T21:59:00"))


def test_maintenance_fields_are_typed_and_held_in_utc():
    w = MaintenanceWindow(start="2025-03-01T23:00:00+01:00", end="2025-03-02T02:00:00Z")
    assert w.start == utc("2025-03-01T22:00:00") and w.start.tzinfo is UTC and w.end == utc("2025-03-02T02:00:00")
    weekly = MaintenanceWindow.model_validate({"weekdays": ["sun"], "from": "01:00", "to": "03:30"})
    assert (weekly.from_time, weekly.to_time) == (time(1, 0), time(3, 30))
    # TOML's own date-times and times are taken as they are
    native = MaintenanceWindow.model_validate({"start": utc("2025-03-01T22:00:00"), "end": utc("2025-03-02T02:00:00")})
    assert native == MaintenanceWindow(start="2025-03-01T22:00:00Z", end="2025-03-02T02:00:00Z")
    assert MaintenanceWindow.model_validate({"weekdays": ["sun"], "from": time(1, 0), "to": "03:30"}) == weekly


def test_maintenance_intervals_within_a_range():
    one_off = MaintenanceWindow(start="2025-03-01T22:00:00Z", end="2025-03-02T02:00:00Z")
    assert one_off.intervals(utc("2025-03-01T00:00:00"), utc("2025-03-03T00:00:00")) == [
        (utc("2025-03-01T22:00:00"), utc("2025-03-02T02:00:00"))]
    assert one_off.intervals(utc("2025-03-02T00:00:00"), utc("2025-03-02T01:00:00")) == [
        (utc("2025-03-02T00:00:00"), utc("2025-03-02T01:00:00"))]  # cut to the range
    assert one_off.intervals(utc("2025-03-02T02:00:00"), utc("2025-03-03T00:00:00")) == []  # the end is not in it
    # Saturdays and Sundays 22:00 → 02:00 the day after; 2025-03-01 is a Saturday
    weekly = MaintenanceWindow.model_validate({"weekdays": ["sat", "sun"], "from": "22:00", "to": "02:00"})
    assert weekly.intervals(utc("2025-03-02T01:00:00"), utc("2025-03-09T00:00:00")) == [
        (utc("2025-03-02T01:00:00"), utc("2025-03-02T02:00:00")),  # Saturday's, started before the range
        (utc("2025-03-02T22:00:00"), utc("2025-03-03T02:00:00")),
        (utc("2025-03-08T22:00:00"), utc("2025-03-09T00:00:00")),  # cut at the range's end
    ]
    assert weekly.intervals(utc("2025-03-03T02:00:00"), utc("2025-03-08T22:00:00")) == []
    # a range given in another zone is the same range
    paris = timezone(timedelta(hours=1))
    assert weekly.intervals(datetime(2025, 3, 2, 2, 0, tzinfo=paris), datetime(2025, 3, 2, 3, 0, tzinfo=paris)) == [
        (utc("2025-03-02T01:00:00"), utc("2025-03-02T02:00:00"))]


def test_maintenance_applies_to_site_and_kinds():
    w = MaintenanceWindow(
        site="bank", kinds=["transfer", "cards"], start="2025-03-01T22:00:00Z", end="2025-03-02T02:00:00Z"
    )
    assert w.applies_to("bank", "cards") and not w.applies_to("bank", "login") and not w.applies_to("other", "cards")
    assert MaintenanceWindow(start="2025-03-01T22:00:00Z", end="2025-03-02T02:00:00Z").applies_to("any", "login")
    assert w.in_force(utc("2025-03-01T22:00:00")) and not w.in_force(utc("2025-03-02T02:00:00"))


@pytest.mark.parametrize("data, message", [
    ({"start": "2025-03-01T22:00:00Z"}, "both `start` and `end`"),
    ({"start": "2025-03-01T22:00:00", "end": "2025-03-02T22:00:00Z"}, "no time zone"),
    ({"weekdays": ["sat"], "from": "25:00", "to": "02:00"}, "HH:MM"),
    ({"weekdays": ["sat"], "from": "22:00", "to": "02:00", "start": "2025-03-01T22:00:00Z"}, "either"),
])
def test_invalid_maintenance(data, message):
    with pytest.raises(ValidationError, match=message):
        MaintenanceWindow.model_validate(data)


def test_invalid_thresholds():
    with pytest.raises(ValidationError, match="flap_failures"):
        IncidentsConfig.model_validate({"flap_failures": 9, "flap_window": 5})
    with pytest.raises(ValidationError, match="overrides.transfer"):
        IncidentsConfig.model_validate({"overrides": {"transfer": {"flap_window": 4}}})
