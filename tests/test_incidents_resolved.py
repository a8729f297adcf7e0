"""The resolved incident history and the other state files: bounded, saved atomically,
and a corrupt or unknown file is reported and ignored (pure logic and files, no servers)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from prober.config.incidents import LocationsConfig
from prober.daemon.locations import CrossLocationIncidents, PreviousEnds
from prober.incidents import resolved as resolved_module
from prober.incidents.resolved import ResolvedIncidents
from prober.incidents.store import StateStore
from prober.incidents.tracker import Incident
from tests.incident_helpers import Lines, Unread

S = 1_000_000_000
DAY = 86400 * S
NOW = 1_800_000_000 * S


def incident(n: int, *, site: str = "bank", kind: str = "accounts", end_ns: int | None = None) -> Incident:
    end = NOW - n * 60 * S if end_ns is None else end_ns
    return Incident(id=f"i{n}", site=site, check=kind, kind=kind, location="par", since_ns=end - 300 * S,
                    opened_ns=end - 200 * S, outcome="http_status", failed_step="list", error="HTTP 503",
                    rule="3 consecutive failures", resolved_ns=end)


def history(tmp_path: Path, **kwargs) -> ResolvedIncidents:
    return ResolvedIncidents(tmp_path, clock=lambda: NOW, **kwargs)


def test_kept_per_capability_and_by_age_latest_first(tmp_path):
    kept = history(tmp_path, per_capability=3)
    for n in range(6, 0, -1):  # i6 ended first, i1 last
        kept.add(incident(n))
    kept.add(incident(7, kind="cards"))
    kept.add(incident(8, kind="cards", end_ns=NOW - 91 * DAY))  # older than 90 days: not kept
    assert [i.id for i in kept.recent(10)] == ["i1", "i2", "i3", "i7"]
    assert [i.id for i in kept.recent(2)] == ["i1", "i2"]
    assert kept.last_end == {("bank", "accounts"): NOW - 60 * S, ("bank", "cards"): NOW - 420 * S}


def test_saved_and_restored_as_it_was(tmp_path):
    kept = history(tmp_path)
    kept.add(incident(1))
    kept.add(incident(2, kind="cards"))
    assert kept.dirty
    kept.write(kept.snapshot())
    assert not kept.dirty
    again = history(tmp_path)
    again.load()
    assert [i.to_json() for i in again.recent(10)] == [i.to_json() for i in kept.recent(10)]
    assert again.last_end == kept.last_end
    saved = json.loads((tmp_path / "resolved_incidents.json").read_text())
    assert saved["version"] == 1 and set(saved["capabilities"]) == {"bank\x1faccounts", "bank\x1fcards"}


def test_the_oldest_capabilities_go_first_beyond_the_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(resolved_module, "MAX_CAPABILITIES", 2)
    kept = history(tmp_path)
    for n, kind in enumerate(("login", "accounts", "cards")):
        kept.add(incident(10 - n, kind=kind))  # login ended first
    assert set(kept.last_end) == {("bank", "accounts"), ("bank", "cards")}
    assert {i.kind for i in kept.recent(10)} == {"accounts", "cards"}


@pytest.mark.parametrize(("content", "message"), [
    (b'{"version": 1, "capabilities": {"bank', "is unreadable"),
    (b"\xff\xfe not json", "is unreadable"),
    (b'{"version": 2, "capabilities": {}}', "has an unknown format (version 2, expected 1 with 'capabilities')"),
    (b'{"version": 1, "checks": {}}', "has an unknown format (version 1, expected 1 with 'capabilities')"),
    (b'[1, 2]', "has an unknown format"),
])
def test_a_corrupt_or_unknown_file_is_reported_and_ignored(tmp_path, caplog, content, message):
    (tmp_path / "resolved_incidents.json").write_bytes(content)
    kept = history(tmp_path)
    with caplog.at_level(logging.ERROR, logger="prober.incidents"):
        kept.load()
    assert kept.recent(10) == [] and kept.last_end == {}
    assert f"resolved incident history {tmp_path / 'resolved_incidents.json'} {message}" in caplog.text
    kept.add(incident(1))
    kept.write(kept.snapshot())  # and it is replaced by a good one at the next save
    again = history(tmp_path)
    again.load()
    assert [i.id for i in again.recent(10)] == ["i1"]


def test_malformed_entries_are_skipped_and_counted(tmp_path, caplog):
    good = incident(1).to_json()
    document = {"version": 1, "capabilities": {
        "bank\x1faccounts": {"last_end": good["resolved_ns"], "incidents": [
            good, {"id": "x"}, "nonsense", {**good, "id": "open", "resolved_ns": None},
            {**good, "id": "elsewhere", "kind": "cards"}, {**good, "id": "text", "since_ns": "yesterday"}]},
        "no separator": {"incidents": []},
        "bank\x1fcards": ["not", "a", "table"],
    }}
    (tmp_path / "resolved_incidents.json").write_text(json.dumps(document))
    kept = history(tmp_path)
    with caplog.at_level(logging.ERROR, logger="prober.incidents"):
        kept.load()
    assert [i.id for i in kept.recent(10)] == ["i1"]
    assert "7 malformed entries ignored" in caplog.text


def test_the_uptime_history_names_itself_when_its_file_is_corrupt(tmp_path, caplog):
    (tmp_path / "uptime.json").write_text("{")
    with caplog.at_level(logging.ERROR, logger="prober.incidents"):
        assert StateStore(tmp_path, "uptime.json", what="uptime history", empty="bars start empty").load() == {}
    assert "uptime history" in caplog.text and "bars start empty" in caplog.text


# ── the previous cross-location ends ───────────────────────────────────────────────────

def _loop(state_dir: Path) -> CrossLocationIncidents:
    return CrossLocationIncidents(LocationsConfig(confirm=1, poll="1s", stale_after="30s"), reader=Unread(),
                                  writer=Lines(), notify=lambda message: None, location="par", instance="p",
                                  state_dir=state_dir)


async def test_previous_ends_are_saved_when_they_change_and_loaded_at_start(tmp_path):
    loop = _loop(tmp_path)
    assert loop.consensus.resolved == {}
    loop.consensus.resolved[("bank", "accounts")] = 42 * S
    await loop.close()
    assert json.loads((tmp_path / "locations.json").read_text()) == {
        "version": 1, "resolved": {"bank\x1faccounts": 42 * S}}
    assert _loop(tmp_path).consensus.resolved == {("bank", "accounts"): 42 * S}


@pytest.mark.parametrize("content", [b"{", b'{"version": 7, "resolved": {}}', b'{"version": 1, "resolved": []}'])
def test_a_corrupt_or_unknown_locations_file_is_reported_and_ignored(tmp_path, caplog, content):
    (tmp_path / "locations.json").write_bytes(content)
    with caplog.at_level(logging.ERROR, logger="prober.incidents"):
        loop = _loop(tmp_path)
    assert loop.consensus.resolved == {}
    assert f"cross-location incident state {tmp_path / 'locations.json'}" in caplog.text


def test_malformed_previous_ends_are_skipped_and_the_latest_kept(tmp_path, caplog, monkeypatch):
    from prober.daemon import locations

    monkeypatch.setattr(locations, "MAX_PREVIOUS_ENDS", 2)
    (tmp_path / "locations.json").write_text(json.dumps({"version": 1, "resolved": {
        "bank\x1flogin": 1 * S, "bank\x1faccounts": 3 * S, "bank\x1fcards": 2 * S,
        "bank\x1ftransfer": "soon", "nobank": 5 * S, "bank\x1fpayments": True}}))
    with caplog.at_level(logging.ERROR, logger="prober.incidents"):
        ends = PreviousEnds(tmp_path).load()
    assert ends == {("bank", "accounts"): 3 * S, ("bank", "cards"): 2 * S}
    assert "3 malformed entries ignored" in caplog.text


def test_malformed_entries_of_the_incident_state_are_skipped_and_reported(tmp_path, caplog):
    from prober.incidents import IncidentService
    from tests.incident_helpers import simbank

    good = {"kind": "login", "window": [[True, 1], [False, 2]], "streak": 0, "successes": 1, "incident": None}
    (tmp_path / "incidents.json").write_text(json.dumps({"version": 1, "checks": {
        "simbank\x1flogin\x1flocal": good,
        "no separators": good,
        "simbank\x1faccounts\x1flocal": {"window": [[True]]},
        "simbank\x1fcards\x1flocal": {"incident": {"id": "x"}},
        "simbank\x1ftransfer\x1flocal": "nonsense",
    }}))
    config, _ = simbank("http://127.0.0.1:9")
    with caplog.at_level(logging.ERROR, logger="prober.incidents"):
        service = IncidentService(config, state_dir=tmp_path)
    assert list(service.tracker.checks) == [("simbank", "login", "local")]
    assert f"incident state {tmp_path / 'incidents.json'}: 4 malformed entries ignored" in caplog.text
