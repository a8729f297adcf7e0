"""The tracker's rules as tables of run sequences: which runs open and resolve an
incident, and which runs date its start and end. Pure logic, no servers.

Sequences: ``F`` a failure (at step ``create``), ``.`` a success, ``s`` a skipped run,
``w`` a slow run (journey over its latency budget); run ``i`` happens at ``i × 30 s``.
"""

from __future__ import annotations

import pytest

from prober.incidents import Observation, Thresholds, Tracker, capability_states
from prober.incidents.tracker import CheckKey

S = 1_000_000_000
STEP = 30 * S

OUTCOMES = {"F": ("http_status", "create", "HTTP 503"), ".": ("ok", "", ""), "s": ("skipped", "", ""),
            "w": ("slow", "", "slow: journey took 12000 ms, over its 5000 ms budget")}


def replay(pattern: str, thresholds: Thresholds | None = None):
    """Every event of ``pattern`` as ``(run index, event, since run, end run or None, flapping)``."""
    tracker = Tracker(thresholds or Thresholds())
    events = []
    for i, c in enumerate(pattern.replace(" ", "")):
        outcome, step, error = OUTCOMES[c]
        event = tracker.observe(Observation("bank", "transfer", "transfer", "par", outcome, i * STEP, step, error))
        if event:
            inc = event.incident
            end = None if inc.resolved_ns is None else inc.resolved_ns // STEP
            events.append((i, event.event, inc.since_ns // STEP, end, inc.flapping))
    return tracker, events


# (pattern, expected events). Spaces only group the runs for the reader.
CASES = {
    # Item 1: after a resolution the window starts empty.
    "one failure after a long outage resolved does not reopen": (
        "F" * 25 + ".. F ......",
        [(2, "opened", 0, None, False), (26, "resolved", 0, 25, False)],
    ),
    "a new hard outage after a resolution is steady, dated from its own first failure": (
        "F" * 25 + ".. FFF",
        [(2, "opened", 0, None, False), (26, "resolved", 0, 25, False), (29, "opened", 27, None, False)],
    ),
    # Item 3: one failure during recovery neither restarts nor inflates the recovery.
    "a short outage with one noise failure in its recovery": (
        "... FFFFFFFF .. F ...",
        [(5, "opened", 3, None, False), (16, "resolved", 3, 11, False)],
    ),
    "a long outage with one noise failure right after recovery": (
        "F" * 30 + ". F ..",
        [(2, "opened", 0, None, False), (33, "resolved", 0, 30, False)],
    ),
    "a lone noise failure before a hard outage does not make it flapping nor move its start": (
        "....F.......... FFF",
        [(17, "opened", 15, None, False)],
    ),
    "a rate that shows three in a row is dated from its first failure, and is intermittent": (
        "............ F.F..FFF",
        [(19, "opened", 12, None, True)],
    ),
    "a failure rate opened by the rate rule is dated from the window's first failure": (
        "F..F.F...F.F..F.F..F",
        [(19, "opened", 0, None, True)],
    ),
    "an intermittent incident resolves over a clean window but for one isolated failure, "
    "dated after its last failure": (
        "F..F.F...F.F..F.F..F" + ".........F..........",
        [(19, "opened", 0, None, True), (39, "resolved", 0, 20, True)],
    ),
    "noise failures some runs after a failure rate ended do not move its end": (
        "F..F.F...F.F..F.F..F" + "........F.....F" + "." * 20,
        [(19, "opened", 0, None, True), (48, "resolved", 0, 20, True)],
    ),
    "two returns to failure make an incident intermittent": (
        "FFF..F.FF.F.F" + "." * 12,
        [(2, "opened", 0, None, False)],
    ),
    "a short outage needs 2 x open_after runs": (
        "..FFF......",
        [(4, "opened", 2, None, False), (10, "resolved", 2, 5, False)],
    ),
    "skipped runs count neither way": (
        "FFFss.s.s....",
        [(2, "opened", 0, None, False), (12, "resolved", 0, 5, False)],
    ),
    "one failure after the first success is forgiven": (
        "FFFFF.F.....",
        [(2, "opened", 0, None, False), (10, "resolved", 0, 5, False)],
    ),
    "two failures after the first success are not": (
        "FFFFF.FF......",
        [(2, "opened", 0, None, False), (13, "resolved", 0, 8, False)],
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_rules(name):
    pattern, expected = CASES[name]
    _, events = replay(pattern)
    assert events == expected


def test_noise_during_recovery_keeps_one_incident_and_its_true_length():
    # 25 failed runs, then 2 % × 4 steps of noise: every sequence resolves once, dated at run 25.
    for noise in ("..F.......", ".F........", "...F.F......", "....F..."):
        tracker, events = replay("F" * 25 + noise)
        resolved = [e for e in events if e[1] == "resolved"]
        assert len(resolved) == 1 and resolved[0][3] == 25, (noise, events)
        assert [e for e in events if e[1] == "opened"] == [(2, "opened", 0, None, False)], (noise, events)


def test_sustained_slow_runs_are_a_degraded_incident_of_their_own():
    tracker, events = replay("..www")
    [incident] = tracker.open_incidents()
    assert events == [(4, "opened", 2, None, False)]
    assert incident.slow and incident.outcome == "slow"
    assert incident.reason == "slow: journey took 12000 ms, over its 5000 ms budget (3 consecutive failures)"
    key = CheckKey("bank", "transfer", "par")
    assert capability_states([(key, "transfer")], [incident])[("bank", "transfer")].state == "degraded"
    # a hard failure turns it into an outage about that failure
    tracker.observe(Observation("bank", "transfer", "transfer", "par", "http_status", 5 * STEP, "create", "HTTP 503"))
    assert not incident.slow and incident.outcome == "http_status" and incident.failed_step == "create"
    assert capability_states([(key, "transfer")], [incident])[("bank", "transfer")].state == "outage"


@pytest.mark.parametrize("error, reason", [
    ("timeout: no complete answer within 2s (step timeout 2s)",
     "timeout: no complete answer within 2s (step timeout 2s) (3 consecutive failures)"),
    ("HTTP 503 (expected 201)", "http_status: HTTP 503 (expected 201) (3 consecutive failures)"),
    ("", "http_status (3 consecutive failures)"),
])
def test_reason_names_the_outcome_once(error, reason):
    outcome = "timeout" if error.startswith("timeout") else "http_status"
    tracker = Tracker(Thresholds())
    for i in range(3):
        event = tracker.observe(Observation("bank", "transfer", "transfer", "par", outcome, i * STEP, "create", error))
    assert event is not None and event.incident.reason == reason
