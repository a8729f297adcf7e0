"""The status page's pure parts: configuration, view, HTML escaping, badges, daily history."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from prober.config.errors import ConfigError
from prober.config.incidents import MaintenanceWindow
from prober.config.statuspage import StatusPageConfig
from prober.daemon.status import CheckStatus
from prober.incidents import CapabilityState, Incident, IncidentStatus
from prober.loading import load
from prober.results import JourneyResult, Kind, Outcome
from prober.statuspage.badge import render_badge
from prober.statuspage.feed import render_feed
from prober.statuspage.history import MAX_SERIES, DailyHistory, utc_day
from prober.statuspage.page import CONTENT_SECURITY_POLICY, render_page
from prober.statuspage.view import build_view, plain_duration
from tests.daemon_helpers import SITE
from tests.statuspage_helpers import Cells

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC).timestamp()
HOSTILE = "\"><img src=x onerror=alert(1)><script>alert(2)</script>"


def _ns(epoch_s: float) -> int:
    return int(epoch_s * 1e9)


# ── configuration ──────────────────────────────────────────────────────────────────


def test_config_defaults_and_values(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(SITE)
    settings = load(path).config.status_page
    assert settings == StatusPageConfig()
    assert (settings.enabled, settings.public, settings.listen, settings.history_days) == (True, False, "", 90)
    assert settings.listen_address() is None and settings.refresh == 30.0
    path.write_text(f'[status_page]\nlisten = "127.0.0.1:0"\npublic = true\nrefresh = "1m"\n{SITE}')
    settings = load(path).config.status_page
    assert settings.listen_address() == ("127.0.0.1", 0) and settings.public and settings.refresh == 60.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('listen = "8080"', "status_page.listen: invalid address '8080'"),
        ("history_days = 0", "status_page.history_days: Input should be greater than or equal to 1"),
        ("colour = \"red\"", "status_page.colour: unknown key"),
        ('history = "grafana"', "status_page.history: Input should be 'auto', 'influxdb' or 'local'"),
    ],
)
def test_config_invalid(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(f"[status_page]\n{line}\n{SITE}")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.problems[0].startswith(f"{path}: {message}"), info.value.problems


# ── view and page ──────────────────────────────────────────────────────────────────


def _at(iso: str) -> int:
    return _ns(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp())


def _incident(**over) -> Incident:
    fields = dict(
        id="abc123",
        site="bank-a",
        kind="transfer",
        check="sepa",
        location="paris",
        since_ns=_at("2026-03-10T11:00:00"),
        opened_ns=_at("2026-03-10T11:01:00"),
        outcome="http_status",
        failed_step="create",
        error=HOSTILE,
        rule="3 consecutive failures",
        last_failure_ns=_at("2026-03-10T11:01:00"),
    )
    return Incident(**{**fields, **over})


def _settings(**over) -> StatusPageConfig:
    return StatusPageConfig.model_validate({"title": "Status <of> banks", "history_days": 3, "refresh": "30s", **over})


def _view(public: bool = False, maintenance: list[MaintenanceWindow] | None = None):
    open_incident = _incident()
    resolved = _incident(id="def456", kind="login", since_ns=_at("2026-03-10T09:00:00"),
                         resolved_ns=_at("2026-03-10T09:30:00"))
    incidents = IncidentStatus(
        capabilities={
            ("bank-a", "login"): CapabilityState("bank-a", "login", "ok", since_ns=resolved.resolved_ns),
            ("bank-a", "transfer"): CapabilityState("bank-a", "transfer", "outage", (open_incident,),
                                                    since_ns=open_incident.since_ns),
        },
        open=(open_incident,), recent=(resolved,),
    )
    runs = [
        CheckStatus("bank-a", "sepa", "transfer", last=JourneyResult(
            site="bank-a", check="sepa", kind="transfer", location="paris", outcome=Outcome.HTTP_STATUS,
            started_at_ns=_ns(NOW - 30), duration_ms=12.34)),
        CheckStatus("bank-a", "token", "login"),
        CheckStatus("bank-b", "cards", "cards"),
    ]
    history = {("bank-a", "login"): DailyHistory.series_of({date(2026, 3, 9): (100, 0), date(2026, 3, 10): (10, 5)},
                                                           days=3, today=date(2026, 3, 10))}
    return build_view(
        _settings(public=public), incidents=incidents, runs=runs, maintenance=maintenance or [], history=history,
        history_source="the prober's local state", now=NOW,
    )


def test_internal_view_and_page_escape_everything() -> None:
    view = _view(maintenance=[MaintenanceWindow.model_validate(
        {"site": "bank-a", "start": "2026-03-10T11:30:00Z", "end": "2026-03-10T13:00:00Z", "description": HOSTILE})])
    html = render_page(view)
    assert "<script" not in html and "<img" not in html and "onerror=alert(1)>" not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html and "<title>Status &lt;of&gt; banks</title>" in html
    cells = Cells.of(html)
    assert cells[("bank-a", "transfer")].startswith("Transfers ✖ Outage since 11:00 UTC")
    assert "Transfers failing at step “create”: answers with an error status." in cells[("bank-a", "transfer")]
    assert "sepa: http_status, 12 ms, paris" in cells[("bank-a", "transfer")]
    assert cells[("bank-a", "login")].startswith("Login ? No data yet")  # configured, no result yet
    assert cells[("bank-b", "cards")].startswith("Cards ? No data yet")
    assert "In progress:" in html and "2026-03-10 11:30 UTC to 2026-03-10 13:00 UTC" in html
    assert "from 2026-03-10 11:00 UTC (1 h 00 min so far)" in html  # open: measured to now
    assert "to 2026-03-10 09:30 UTC (30 min)" in html
    assert view.headline == "bank-a: Transfers outage."
    assert "script-src" not in CONTENT_SECURITY_POLICY and "unsafe" not in CONTENT_SECURITY_POLICY
    doc = view.to_json()
    assert doc["sites"]["bank-a"]["capabilities"]["transfer"]["failing"][0]["error"] == HOSTILE
    assert doc["sites"]["bank-a"]["capabilities"]["transfer"]["checks"][0]["latency_ms"] == 12.3
    assert doc["history"]["series"][0] == {"site": "bank-a", "kind": "login", "from": "2026-03-08",
                                           "uptime": [None, 1.0, 0.5], "runs": [0, 100, 10]}
    assert (
        '<li class="none w1" title="2026-03-08 no data"></li><li class="up w1" title="2026-03-09 100.00% (100 runs)">'
        in html
    )


def test_public_view_has_names_states_and_times_only() -> None:
    view = _view(public=True)
    html = render_page(view)
    assert "onerror" not in html and "alert" not in html and "sepa" not in html and "paris" not in html
    assert "error status" not in html and "12 ms" not in html
    assert "Transfers failing at step “create”." in Cells.of(html)[("bank-a", "transfer")]
    doc = view.to_json()
    text = str(doc)
    assert "alert" not in text and "sepa" not in text and "paris" not in text and "http_status" not in text
    assert doc["open"][0] == {"id": "abc123", "site": "bank-a", "kind": "transfer", "since": "2026-03-10T11:00:00Z",
                              "resolved_at": None, "duration_s": 3600.0, "step": "create", "closed": False}
    assert "checks" not in doc["sites"]["bank-a"]["capabilities"]["transfer"]
    assert "source" not in doc["history"] and "local state" not in html  # where the data lives is internal
    feed = render_feed(view, "https://status.example/").decode()
    assert "alert" not in feed and "Ongoing: bank-a Transfers failing" in feed


def test_feed_is_valid_atom_with_escaped_text() -> None:
    body = render_feed(_view(), "https://status.example/")
    root = ET.fromstring(body)
    ns = "{http://www.w3.org/2005/Atom}"
    entries = root.findall(f"{ns}entry")
    assert [e.findtext(f"{ns}id") for e in entries] == [
        "urn:bank-prober:incident:abc123",
        "urn:bank-prober:incident:def456",
    ]
    assert entries[1].findtext(f"{ns}title") == "Resolved: bank-a Login (down 30 min)"
    assert HOSTILE in (entries[0].findtext(f"{ns}summary") or "")  # text, escaped on the wire
    assert b"<script" not in body and root.findtext(f"{ns}updated") == "2026-03-10T11:00:00Z"


def test_an_incident_closed_without_a_recovery_is_not_shown_as_back() -> None:
    closed = _incident(id="ghi789", kind="cards", since_ns=_at("2026-03-10T08:00:00"),
                       resolved_ns=_at("2026-03-10T10:00:00"), ended="its check is no longer probed")
    incidents = IncidentStatus(capabilities={}, open=(), recent=(closed,))
    for public in (False, True):
        view = build_view(_settings(public=public), incidents=incidents, runs=[], maintenance=[], history={},
                          history_source="the prober's local state", now=NOW)
        [line] = view.recent
        assert line.closed and view.to_json()["recent"][0]["closed"] is True
        html = render_page(view)
        assert "No longer monitored" in html and ">Resolved<" not in html
        assert "from 2026-03-10 08:00 UTC until monitoring stopped at 2026-03-10 10:00 UTC" in html
        root = ET.fromstring(render_feed(view, "https://status.example/"))
        ns = "{http://www.w3.org/2005/Atom}"
        [entry] = root.findall(f"{ns}entry")
        assert entry.findtext(f"{ns}title") == "No longer monitored: bank-a Cards"
        summary = entry.findtext(f"{ns}summary") or ""
        assert "no longer monitored from 2026-03-10 10:00 UTC" in summary and "back at" not in summary


def test_badge() -> None:
    svg = render_badge("bank-a", "transfer", "outage")
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and "#cf222e" in svg
    assert [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")] == ["bank-a transfer", "outage"]
    assert ">no data<" in render_badge("bank-a", "cards", "unknown")


def test_plain_duration() -> None:
    assert [plain_duration(s) for s in (5, 600, 3 * 3600 + 300, 50 * 3600)] == [
        "5 s",
        "10 min",
        "3 h 05 min",
        "2 d 2 h",
    ]


# ── daily history ──────────────────────────────────────────────────────────────────


def _result(site: str, kind: Kind, outcome: Outcome, at: float) -> JourneyResult:
    return JourneyResult(site=site, check="c", kind=kind, location="local", outcome=outcome,
                         started_at_ns=_ns(at), duration_ms=1.0)


async def test_history_counts_prunes_and_survives_a_restart(tmp_path: Path) -> None:
    clock = [NOW]
    history = DailyHistory(tmp_path, days=3, clock=lambda: _ns(clock[0]))
    await history.start()
    day = 86400
    for outcome in (Outcome.OK, Outcome.OK, Outcome.TIMEOUT, Outcome.SKIPPED):
        history.consume(_result("a", "login", outcome, NOW))
    history.consume(_result("a", "login", Outcome.OK, NOW - 10 * day))  # older than the range: pruned
    history.consume(_result("a", "login", Outcome.ASSERTION, NOW - day))
    series = history.daily()[("a", "login")]
    assert [(d.day.isoformat(), d.runs, d.failures) for d in series] == [
        ("2026-03-08", 0, 0), ("2026-03-09", 1, 1), ("2026-03-10", 3, 1)]
    assert series[2].uptime == pytest.approx(2 / 3) and series[0].uptime is None
    await history.close()
    assert (tmp_path / "uptime.json").exists()

    clock[0] = NOW + 2 * day  # two days later: 2026-03-09 is the oldest day kept
    again = DailyHistory(tmp_path, days=3, clock=lambda: _ns(clock[0]))
    await again.start()
    await again.close()
    assert [(d.day.isoformat(), d.runs) for d in again.daily()[("a", "login")]] == [
        ("2026-03-10", 3), ("2026-03-11", 0), ("2026-03-12", 0)]
    assert set(again.counts[("a", "login")]) == {date(2026, 3, 10)}


def test_history_is_bounded_and_reads_malformed_state() -> None:
    history = DailyHistory("/nonexistent", days=2, clock=lambda: _ns(NOW))
    for n in range(MAX_SERIES + 10):
        history.consume(_result(f"s{n}", "login", Outcome.OK, NOW))
    assert len(history.counts) == MAX_SERIES
    fresh = DailyHistory("/nonexistent", days=2, clock=lambda: _ns(NOW))
    fresh.restore({"a\x1flogin": {"2026-03-10": [5, 9], "junk": [1, 1], "2026-03-09": "x"}, "nokind": {}, "b\x1fc": 3})
    assert fresh.counts == {("a", "login"): {date(2026, 3, 10): [5, 5]}}
    assert utc_day(_ns(NOW)) == date(2026, 3, 10) and time.time() > NOW


def test_history_source_follows_the_configuration(tmp_path: Path) -> None:
    from prober.statuspage.influx import InfluxHistory
    from prober.statuspage.server import LocalHistory, PageSource, history_source

    influx = '[influxdb]\nurl = "http://127.0.0.1:9"\napi = "v1"\ndatabase = "p"\n'
    for section, history, expected in [
        (influx, "auto", InfluxHistory), (influx, "local", LocalHistory), (influx, "influxdb", InfluxHistory),
        ("", "auto", LocalHistory), ("", "influxdb", LocalHistory),
    ]:
        path = tmp_path / "p.toml"
        path.write_text(f'{section}[status_page]\nhistory = "{history}"\n{SITE}')
        loaded = load(path)
        source = PageSource(incidents=lambda: IncidentStatus({}, (), ()), runs=list, maintenance=list,
                            local_history=DailyHistory(tmp_path), influxdb=loaded.config.influxdb)
        assert type(history_source(source, loaded.config.status_page)) is expected, (section, history)


def test_history_segments_keep_the_page_small() -> None:
    from prober.statuspage.page import stylesheet
    from prober.statuspage.view import Bar, HistoryRow

    first = date(2026, 1, 1)
    uptimes = [None] * 80 + [1.0] * 7 + [0.9995, 0.5, 1.0]
    row = HistoryRow("a", "login", tuple(
        Bar(first + timedelta(days=n), u, 0 if u is None else 100) for n, u in enumerate(uptimes)))
    segments = row.segments
    assert [(s.level, s.days) for s in segments] == [("none", 80), ("up", 8), ("down", 1), ("up", 1)]
    assert segments[0].words == "2026-01-01 to 2026-03-21 no data"
    assert segments[1].words == "2026-03-22 to 2026-03-29 99.95% to 100.00% (800 runs)"
    assert segments[2].words == "2026-03-30 50.00% (100 runs)"
    css = stylesheet(90).decode()
    assert ".bars .w80{flex-grow:80;background-size:calc(100%/80) 100%}" in css and ".w91{" not in css


def test_maintenance_lines_weekly_and_one_off() -> None:
    from prober.statuspage.view import maintenance_lines

    windows = [
        # NOW is Tuesday 2026-03-10 12:00 UTC
        MaintenanceWindow.model_validate({"weekdays": ["tue"], "from": "11:30", "to": "12:30", "kinds": ["cards"]}),
        MaintenanceWindow.model_validate({"site": "bank-a", "weekdays": ["mon"], "from": "23:00", "to": "01:00"}),
        MaintenanceWindow(start="2026-03-10T10:00:00Z", end="2026-03-10T12:00:00Z"),  # just over: not announced
        MaintenanceWindow(start="2026-03-10T13:00:00+01:00", end="2026-03-11T09:00:00+01:00"),
    ]
    lines = maintenance_lines(windows, NOW)
    assert [(m.sites, m.kinds, m.when, m.active) for m in lines] == [
        ("all banks", "Cards", "every tue 11:30 to 12:30 UTC", True),
        ("bank-a", "all services", "every mon 23:00 to 01:00 UTC", False),
        ("all banks", "all services", "2026-03-10 12:00 UTC to 2026-03-11 08:00 UTC", True),
    ]
