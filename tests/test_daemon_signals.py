"""``prober run`` as a real subprocess: SIGTERM, a second SIGINT, SIGHUP reloads, config errors."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from prober.simbank import BankServer, Fault
from tests.daemon_helpers import ProberProcess, check, config_text, get_json, wait_for
from tests.fixtures.servers import InfluxDatabase, free_port

# servers: the real InfluxDB; exclusive: signals sent right after a start, so alone
pytestmark = [pytest.mark.servers, pytest.mark.exclusive]


def _stopped_line(log: str) -> tuple[int, int]:
    match = re.search(r"prober stopped: (\d+) results \((\d+) cancelled", log)
    assert match, log[-3000:]
    return int(match.group(1)), int(match.group(2))


async def test_sigterm_mid_journey_finishes_cleanup_and_writes_everything(
    bank: BankServer, influx_db: InfluxDatabase, tmp_path: Path
) -> None:
    # Every cards request takes 400 ms: a cards run (token, list, freeze, limits,
    # unfreeze) lasts ~1.6 s, so SIGTERM lands while the test card is frozen.
    bank.faults.set("cards", Fault(mode="slow", delay_ms=400))
    text = config_text(
        bank.url,
        [check("login", interval="500ms"), check("cards", interval="3s")],
        daemon={"jitter": 0.0, "state_dir": "state"},
        influxdb={"url": influx_db.url, "api": "v1", "database": influx_db.name, "flush_interval": "200ms",
                  "spool_dir": "spool"},
    )
    (tmp_path / "prober.toml").write_text(text)
    prober = await ProberProcess(["run", "-c", "prober.toml"], tmp_path).start()
    try:
        await wait_for(lambda: bank.state.cards["card-001"].status == "FROZEN", timeout=10, what="card frozen")
        prober.signal(signal.SIGTERM)
        code = await prober.wait(20)
    finally:
        await prober.kill()
    log = prober.log
    assert code == 0, log[-3000:]
    assert "Traceback" not in log
    # The cleanup step ran: the card is active again, and the run passed.
    assert bank.state.cards["card-001"].status == "ACTIVE"
    results, cancelled = _stopped_line(log)
    assert cancelled == 0
    # Every result is in InfluxDB (nothing left to spool with a healthy server).
    assert influx_db.count("check") == results
    rows = influx_db.query('SELECT "success", "outcome" FROM "check" WHERE "check" = \'cards\'')
    assert rows and all(r["success"] == 1 for r in rows), rows
    assert influx_db.count("prober", "checks") >= 1
    assert "points in the spool" not in log


async def test_second_sigint_forces_exit_and_still_records(
    bank: BankServer, influx_db: InfluxDatabase, tmp_path: Path
) -> None:
    bank.faults.set("accounts", Fault(mode="hang"))
    text = config_text(
        bank.url,
        [check("accounts", interval="10s")],
        daemon={"jitter": 0.0, "grace_period": "30s", "state_dir": "state"},
        influxdb={"url": influx_db.url, "api": "v1", "database": influx_db.name, "spool_dir": "spool"},
    )
    (tmp_path / "prober.toml").write_text(text)
    prober = await ProberProcess(["run", "-c", "prober.toml"], tmp_path).start()
    try:
        await wait_for(lambda: bank.state.requests["accounts"] >= 1, timeout=15, what="a hanging request")
        prober.signal(signal.SIGINT)
        await wait_for(lambda: "shutting down" in prober.log, timeout=5, what="shutdown start")
        prober.signal(signal.SIGINT)
        code = await prober.wait(10)
    finally:
        await prober.kill()
    log = prober.log
    assert code == 130, log[-3000:]
    assert "forcing the shutdown" in log
    results, cancelled = _stopped_line(log)
    assert (results, cancelled) == (1, 1)
    rows = influx_db.query('SELECT "outcome", "error" FROM "check"')
    assert len(rows) == 1 and rows[0]["outcome"] == "skipped" and rows[0]["error"].startswith("cancelled"), rows


async def test_sighup_reload_adds_removes_and_survives_an_invalid_file(bank: BankServer, tmp_path: Path) -> None:
    port = free_port()
    daemon = {"health_listen": f"127.0.0.1:{port}", "state_dir": "state"}
    path = tmp_path / "prober.toml"
    path.write_text(config_text(bank.url, [check("login", interval="300ms"), check("accounts", interval="300ms")],
                                daemon=daemon))
    status_url = f"http://127.0.0.1:{port}/status"
    prober = await ProberProcess(["run", "-c", "prober.toml"], tmp_path).start()

    async def checks() -> dict[str, dict]:
        try:
            _, doc = await get_json(status_url)
        except OSError:
            return {}
        return {c["check"]: c for c in doc["checks"]}

    async def ran(name: str, at_least: int = 1) -> bool:
        return (await checks()).get(name, {}).get("runs", 0) >= at_least

    try:
        await wait_for(lambda: ran("login"), what="login runs")
        await wait_for(lambda: ran("accounts"), what="accounts runs")
        code, body = await get_json(f"http://127.0.0.1:{port}/healthz")
        assert (code, body) == (200, {"status": "ok"})

        # Reload: accounts removed, payments added, login unchanged.
        path.write_text(config_text(bank.url, [check("login", interval="300ms"), check("payments", interval="300ms")],
                                    daemon=daemon))
        prober.signal(signal.SIGHUP)
        await wait_for(lambda: ran("payments"), what="the added check to run")
        now = await checks()
        assert "accounts" not in now
        accounts_requests = bank.state.requests_by_path.get("GET /accounts", 0)
        login_runs = now["login"]["runs"]

        # An invalid file: logged like `prober validate`, the running config goes on.
        path.write_text(path.read_text().replace('interval = "300ms"', "interval = 5", 1))
        prober.signal(signal.SIGHUP)
        await wait_for(lambda: "keeping the running configuration" in prober.log, what="the reload error")
        assert re.search(r"config error: .*prober\.toml: sites\[simbank\]\.checks\[login\]\.interval", prober.log), \
            prober.log[-2000:]
        await wait_for(lambda: ran("login", login_runs + 3), what="login to keep running")
        await wait_for(lambda: ran("payments", 3), what="payments to keep running")
        _, doc = await get_json(status_url)
        assert doc["config"]["reloads"] == 1 and "interval" in doc["config"]["last_reload_error"]
        assert bank.state.requests_by_path.get("GET /accounts", 0) <= accounts_requests + 1
        prober.signal(signal.SIGTERM)
        code = await prober.wait(20)
    finally:
        await prober.kill()
    assert code == 0, prober.log[-3000:]
    assert "Traceback" not in prober.log
    assert "configuration reloaded: 2 checks (1 added, 1 removed, 0 changed)" in prober.log


async def test_config_error_at_start_exits_2_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('[daemon]\nmax_concurrency = 0\ngrace_period = 20\n')
    prober = await ProberProcess(["run", "-c", "bad.toml"], tmp_path).start()
    code = await prober.wait(20)
    log = prober.log
    assert code == 2
    assert "Traceback" not in log
    assert "config error: bad.toml: daemon.max_concurrency" in log
    assert "config error: bad.toml: daemon.grace_period" in log
