"""A reload while a run of a removed check is in flight: the run is written, and the
removed check does not come back in the daemon's live state when its result arrives."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from prober.daemon.service import ProberService
from prober.loading import load
from prober.simbank import BankServer, Fault
from prober.writer.spool import SPOOL_FILENAME
from prober.writer.writer import ResultWriter
from tests.daemon_helpers import Recorder, check, config_text, wait_for


async def test_a_late_result_of_a_removed_check_is_written_but_not_brought_back(
    bank: BankServer, tmp_path: Path,
) -> None:
    bank.faults.set("accounts", Fault(mode="hang"))
    path = tmp_path / "prober.toml"
    daemon = {"state_dir": str(tmp_path / "state")}
    path.write_text(config_text(
        bank.url,
        [check("login", interval="300ms"), check("accounts", name="hanging", interval="2s", timeout="1500ms")],
        daemon=daemon,
    ))
    recorder = Recorder()
    spool = tmp_path / "spool"
    service = ProberService(load(path), writer=ResultWriter(None, spool_dir=spool), consumers=[recorder])
    await service.start()
    try:
        def hanging_in_flight() -> bool:
            return any(name == "hanging" for _, name in service.scheduler.running)

        await wait_for(hanging_in_flight, interval=0.01, what="the hanging run to start")
        path.write_text(config_text(
            bank.url, [check("login", interval="300ms"), check("payments", interval="300ms")], daemon=daemon,
        ))
        added, removed, _ = service.reload(await asyncio.to_thread(load, path))
        assert removed == [("simbank", "hanging")] and added == [("simbank", "payments")]
        assert hanging_in_flight(), "the run must still be in flight after the reload for this test to mean anything"

        await wait_for(lambda: recorder.of("hanging"), timeout=10, what="the removed check's run to end")
        [late] = recorder.of("hanging")
        assert late.outcome.value == "timeout"
        await wait_for(lambda: recorder.of("payments"), what="the added check to run")

        names = {c["check"] for c in service.status.snapshot()}
        assert names == {"login", "payments"}
        assert ("simbank", "hanging") not in service.journey_metrics.checks
        assert all(kind != "accounts" for _, kind, _ in service.journey_metrics.durations)
        assert ("simbank", "accounts") not in service.history.counts  # the daily uptime bars
        assert any(done_ns == late.started_at_ns for _, done_ns in service.lockout.sites["simbank"].window), \
            "a run that reached the bank counts for the lockout protection, whatever its check"
    finally:
        await service.stop()

    with sqlite3.connect(spool / SPOOL_FILENAME) as db:
        lines = "\n".join(text for (text,) in db.execute("SELECT lines FROM batches"))
    assert "check=hanging" in lines, "the removed check's completed run must still be written"


async def test_incidents_of_checks_removed_by_a_reload_or_while_stopped_are_closed(
    bank: BankServer, tmp_path: Path,
) -> None:
    bank.faults.set("accounts", Fault(mode="down"))
    bank.faults.set("cards", Fault(mode="down"))
    path = tmp_path / "prober.toml"
    daemon = {"state_dir": str(tmp_path / "state")}

    def service_of(*checks: str) -> ProberService:
        path.write_text(config_text(bank.url, [check(name, interval="300ms") for name in checks], daemon=daemon))
        return ProberService(load(path), writer=ResultWriter(None, spool_dir=tmp_path / "spool"))

    def open_checks(service: ProberService) -> set[str]:
        return {i.check for i in service.incidents.status().open}

    service = service_of("login", "accounts", "cards")
    await service.start()
    try:
        await wait_for(lambda: open_checks(service) == {"accounts", "cards"}, what="both incidents to open")
        service_of("login", "cards")
        service.reload(await asyncio.to_thread(load, path))
        assert open_checks(service) == {"cards"}
        assert ("simbank", "accounts") not in service.incidents.status().capabilities
        [closed] = [i for i in service.incidents.status().recent if i.check == "accounts"]
        assert "no longer probed" in closed.ended
    finally:
        await service.stop()

    # Removed while the prober was stopped: closed once the next one has started.
    again = service_of("login")
    await again.start()
    try:
        assert open_checks(again) == set()
        assert ("simbank", "cards") not in again.incidents.status().capabilities
    finally:
        await again.stop()
