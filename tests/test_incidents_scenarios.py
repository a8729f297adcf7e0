"""The five incident scenarios of the simulated bank, in compressed time, with the real
journeys of ``config/simbank.toml`` and the default thresholds: each opens exactly the
incidents its fault windows imply, on the right capability only, and resolves them;
2 % background noise opens none. (The measured delays: ``benchmarks/detection.py``.)"""

from __future__ import annotations

import pytest

from benchmarks.detection import INCIDENT_SCENARIOS, play

EXPECTED = {
    "transfers-and-cards-down": {"transfer", "cards"},
    "zero-balances": {"accounts"},
    "card-authorisation-outage": {"payments"},
    "intermittent-login": {"login"},
    "country-declines": {"payments"},
}


@pytest.mark.parametrize("name", INCIDENT_SCENARIOS)
async def test_scenario_opens_the_right_incidents_and_resolves_them(name):
    report = await play(name, window_s=4.0, interval=0.05, seed=1)
    assert report.expected_kinds == EXPECTED[name]
    assert report.flagged_kinds == EXPECTED[name], report.events
    for window in report.windows:
        opened, resolved = report.opened(window.capability), report.resolved(window.capability)
        assert len(opened) == 1 and len(resolved) == 1, report.events
        assert window.start <= opened[0] < window.end  # during the fault, not before
        assert resolved[0] >= window.end  # only once it is over
    assert report.open_at_end == []
    states = [line.split(",state=")[1].split(" ")[0] for line in report.lines]
    assert states.count("open") == states.count("resolved") == len(EXPECTED[name])


async def test_healthy_noise_opens_no_incident():
    report = await play("healthy-noise", interval=0.05, seed=1, duration_s=10.0)
    runs = sum(len(r) for r in report.runs.values())
    failures = sum(f for r in report.runs.values() for _, f in r)
    assert runs > 500 and failures > 0  # the noise was there
    assert report.events == [] and report.lines == []
