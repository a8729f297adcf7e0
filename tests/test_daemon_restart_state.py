"""What a restart must not forget, with real ``prober run`` processes stopped and started
again: the status page's resolved incidents (and a capability's "operational since"),
and, across locations, the end of the previous incident that bounds the runs pooled to
date the next one. A state file that is corrupt or of an unknown format is reported and
ignored: the prober starts all the same."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Literal

import pytest

from prober.results import JourneyResult, Outcome
from prober.simbank import BankServer, Fault
from prober.timefmt import utc_iso_ns
from prober.writer.points import incident_point, journey_lines
from tests.daemon_helpers import ProberProcess, check, config_text, get_json, wait_for
from tests.fixtures.servers import InfluxDatabase, free_port
from tests.statuspage_helpers import get

S = 1_000_000_000


async def _start(workdir: Path, port: int, log_name: str) -> ProberProcess:
    prober = ProberProcess(["run", "-c", "prober.toml"], workdir)
    prober.log_path = workdir / log_name
    await prober.start()

    async def healthy() -> bool:
        try:
            return (await get_json(f"http://127.0.0.1:{port}/healthz"))[0] == 200
        except OSError:
            return False

    try:
        await wait_for(healthy, timeout=30, interval=0.1, what="the prober to answer /healthz")
    except AssertionError:
        await prober.kill()
        raise AssertionError(prober.log[-3000:]) from None
    return prober


async def _stop(prober: ProberProcess) -> None:
    prober.signal(signal.SIGTERM)
    assert await prober.wait(30) == 0, prober.log[-3000:]
    assert "Traceback" not in prober.log


async def test_resolved_incidents_and_operational_since_survive_a_restart(bank: BankServer, tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "prober.toml").write_text(config_text(
        bank.url, [check("accounts", interval="300ms")],
        daemon={"health_listen": f"127.0.0.1:{port}", "state_dir": "state", "grace_period": "2s"}))
    page = f"http://127.0.0.1:{port}/api/v1/status"
    prober = await _start(tmp_path, port, "first.log")
    try:
        bank.faults.set("accounts", Fault(mode="down"))

        async def accounts(state: str) -> bool:
            _, doc = await get_json(page)
            return doc["sites"].get("simbank", {}).get("capabilities", {}).get("accounts", {}).get("state") == state

        await wait_for(lambda: accounts("outage"), timeout=20, interval=0.1, what="the accounts outage")
        bank.faults.clear("accounts")
        await wait_for(lambda: accounts("ok"), timeout=20, interval=0.1, what="the accounts incident to resolve")
        _, before = await get_json(page)
        await _stop(prober)
    finally:
        await prober.kill()
    (resolved,) = before["recent"]
    # whole seconds: an outage shorter than one (a loaded machine) has since == resolved_at
    assert resolved["resolved_at"] and resolved["since"] <= resolved["resolved_at"] and resolved["duration_s"] > 0
    ok_since = before["sites"]["simbank"]["capabilities"]["accounts"]["since"]
    assert ok_since == resolved["resolved_at"]

    prober = await _start(tmp_path, port, "second.log")
    try:
        _, after = await get_json(page)
        _, status = await get_json(f"http://127.0.0.1:{port}/status")
        _, _, feed = await get(f"http://127.0.0.1:{port}/feed.atom")
        await _stop(prober)
    finally:
        await prober.kill()
    assert after["recent"] == before["recent"]  # the same incident, the same dates
    assert after["sites"]["simbank"]["capabilities"]["accounts"]["since"] == ok_since
    assert [i["id"] for i in status["incidents"]["recent"]] == [resolved["id"]]
    assert "Resolved: simbank Accounts" in feed

    # A corrupt history and an old-format one are reported, ignored, never fatal.
    history = tmp_path / "state" / "resolved_incidents.json"
    for broken, message in ((b'{"version": 1, "capabilities": {"simbank', "is unreadable"),
                            (b'{"version": 0, "recent": []}', "has an unknown format")):
        history.write_bytes(broken)
        prober = await _start(tmp_path, port, "broken.log")
        try:
            _, doc = await get_json(page)
            await _stop(prober)
        finally:
            await prober.kill()
        assert doc["recent"] == []
        assert f"resolved incident history state/resolved_incidents.json {message}" in prober.log, prober.log[-3000:]


# ── across locations ─────────────────────────────────────────────────────────────────

def _run(at_ns: int, failed: bool) -> JourneyResult:
    return JourneyResult(site="ghost", check="accounts", kind="accounts", location="fra",
                         outcome=Outcome.HTTP_STATUS if failed else Outcome.OK, started_at_ns=at_ns, duration_ms=9.0,
                         failed_step="list" if failed else "", error="HTTP 503" if failed else "")


def _runs(pattern: str, first_ns: int, every_s: float = 2.0) -> list[str]:
    """``check`` lines of the bank ``ghost`` at location fra: ``X`` failed, ``.`` passed."""
    return [line for i, c in enumerate(pattern) for line in
            journey_lines(_run(first_ns + int(i * every_s * S), c == "X"), instance="prober-fra")]


def _incident(state: Literal["open", "resolved"], at_ns: int) -> str:
    return incident_point(site="ghost", check="accounts", kind="accounts", location="fra", state=state,
                          reason="http_status: HTTP 503 (3 consecutive failures)", failed_step="list",
                          duration_s=0.0, time_ns=at_ns)


def _written(db: InfluxDatabase) -> list[dict]:
    return db.query('SELECT "id", "state" FROM "incident_locations" WHERE "site" = \'ghost\'')


@pytest.mark.servers
async def test_the_previous_cross_location_end_survives_a_restart(
    bank: BankServer, influx_db: InfluxDatabase, tmp_path: Path
) -> None:
    """Incident A of bank ``ghost`` (written into InfluxDB as another prober process of
    location fra would) is confirmed and resolved by the real prober of fra, which is then
    restarted (and A's ``incident_locations`` points are deleted, so that only the
    prober's state can remember A's end). Incident B follows A closely: the pooled runs read around B's start
    reach back into A, whose runs, with calm ones before them, would make A's start
    the most likely start of B (and B would get A's id). Read from after A's end, as
    before the restart, B starts at its own first failure."""
    port = free_port()
    text = config_text(
        bank.url, [check("login", interval="1s")],
        daemon={"health_listen": f"127.0.0.1:{port}", "self_report_interval": "300ms", "state_dir": "state",
                "grace_period": "2s"},
        influxdb={"url": influx_db.url, "api": "v1", "database": influx_db.name, "flush_interval": "100ms"},
    )
    (tmp_path / "prober.toml").write_text(
        text + '\n[prober]\nlocation = "fra"\ninstance = "prober-fra"\n'
        '\n[incidents.locations]\nconfirm = 1\npoll = "300ms"\nstale_after = "5s"\n')
    t0 = time.time_ns() // 1_000_000 * 1_000_000
    a_start, a_end, b_start = t0 - 110 * S, t0 - 90 * S, t0 - 80 * S
    # 45 calm runs, A: 10 failed runs, 5 calm ones (A ends at the first), then B.
    influx_db.server.write_lines(
        influx_db.name, _runs("." * 45 + "X" * 10, t0 - 200 * S) + [_incident("open", a_start)]
    )

    prober = await _start(tmp_path, port, "first.log")
    try:
        await wait_for(lambda: [r["state"] for r in _written(influx_db)] == ["open"], timeout=20, interval=0.1,
                       what="incident A to be confirmed")
        influx_db.server.write_lines(influx_db.name, _runs("." * 5, a_end) + [_incident("resolved", a_end)])
        await wait_for(lambda: [r["state"] for r in _written(influx_db)] == ["open", "resolved"], timeout=20,
                       interval=0.1, what="incident A to be resolved")
        _, status = await get_json(f"http://127.0.0.1:{port}/status")
        await _stop(prober)
    finally:
        await prober.kill()
    (view,) = [c for c in status["incidents"]["locations"]["capabilities"] if c["site"] == "ghost"]
    opened_a, resolved_a = _written(influx_db)
    assert (opened_a["time"], resolved_a["time"]) == (a_start, a_end)
    # The incident_locations points of A are gone (a short retention, another database):
    # A's end is then known from this instance's own state only.
    influx_db.server.raw_query('DELETE FROM "incident_locations" WHERE "site" = \'ghost\'', influx_db.name,
                               post=True)
    assert _written(influx_db) == []

    async def ghost() -> dict | None:
        _, status = await get_json(f"http://127.0.0.1:{port}/status")
        return next((c for c in status["incidents"]["locations"]["capabilities"] if c["site"] == "ghost"), None)

    prober = await _start(tmp_path, port, "second.log")
    try:
        await wait_for(lambda: _has_ghost(ghost()), timeout=20, interval=0.1, what="the first decision")
        restarted = await ghost()
        assert restarted is not None
        influx_db.server.write_lines(influx_db.name, _runs("X" * 40, b_start) + [_incident("open", b_start)])
        await wait_for(lambda: _opened(ghost()), timeout=20, interval=0.1, what="incident B to be confirmed")
        b_view = await ghost()
        assert b_view is not None
        b = b_view["incident"]
        await _stop(prober)  # its writer flushes B's point
    finally:
        await prober.kill()
    assert b["since"] == utc_iso_ns(b_start), "B's start reaches back before A's end"
    assert b["id"] != opened_a["id"]
    assert [(r["state"], r["time"], r["id"]) for r in _written(influx_db)] == [("open", b_start, b["id"])]
    assert restarted["previous_end"] == view["previous_end"] == utc_iso_ns(a_end)


async def _has_ghost(view) -> bool:
    try:
        return await view is not None
    except (KeyError, OSError):
        return False


async def _opened(view) -> bool:
    found = await view
    return found is not None and found["incident"] is not None
