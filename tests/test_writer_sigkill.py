"""SIGKILL at random moments: every run completed more than 300 ms before the kill reaches InfluxDB.

A real ``prober run`` probes the simulated bank while InfluxDB is down (stopped) or
frozen (SIGSTOP: every write hangs until its 2 s timeout), is killed at three random
moments, then restarts with InfluxDB back and replays its spool. The writer journals
new points every 50 ms whatever InfluxDB does, so only runs completed in the last
moments before a kill may be missing; ``flush_interval`` is 2 s on purpose (it used to
be how long results stayed in memory only).
"""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import pytest

from prober.simbank import BankServer
from tests.crash_cycles import AnsweredRuns, crash_config, lost_runs, run_then_kill, stored_starts
from tests.daemon_helpers import ProberProcess, wait_for
from tests.fixtures.servers import InfluxDBServer

pytestmark = pytest.mark.servers

MARGIN = 0.3  # the durability bound is ~50 ms; the rest is slack for a loaded machine
KILLS = 3


async def _kill_restart_and_count(
    bank: BankServer, server: InfluxDBServer, tmp_path: Path, seed: int, influx_back
) -> tuple[list[float], int]:
    (tmp_path / "prober.toml").write_text(crash_config(bank.url, server.url, "prober"))
    rng = random.Random(seed)
    answered = AnsweredRuns(bank).start()
    kills: list[float] = []
    try:
        for _ in range(KILLS):
            kills.append(await run_then_kill(tmp_path, answered, rng, 0.3, 2.5))
    finally:
        await answered.stop()
        influx_back()
    # Restart with InfluxDB answering: the spool is replayed.
    logins = bank.state.requests["login"]
    prober = await ProberProcess(["run", "-c", "prober.toml"], tmp_path).start()
    try:
        # Running (its signal handlers are in place before its first run): a SIGTERM sent
        # earlier, while Python starts, would end it with the default action (-15).
        await wait_for(lambda: bank.state.requests["login"] > logins, timeout=30, what="its first run")

        def old_losses() -> list[float]:
            starts = stored_starts(lambda q: server.query(q, "prober"), kills[-1])
            return [age for _, age in lost_runs(answered.times, starts, kills) if age > MARGIN]

        try:
            await wait_for(lambda: not old_losses(), timeout=40, interval=0.5, what="the spool replayed")
        except AssertionError:
            pass  # reported below with the figures
        prober.signal(signal.SIGTERM)
        assert await prober.wait(20) == 0, prober.log[-3000:]
    finally:
        await prober.kill()
    starts = stored_starts(lambda q: server.query(q, "prober"), kills[-1])
    return [age for _, age in lost_runs(answered.times, starts, kills)], len(answered.times)


async def test_sigkill_with_influxdb_down_loses_no_completed_run(bank, influxdb_private, tmp_path):
    server = influxdb_private
    server.create_database("prober")
    server.stop()
    lost, answered = await _kill_restart_and_count(bank, server, tmp_path, 1, server.start)
    assert answered >= KILLS * 3
    old = sorted(age for age in lost if age > MARGIN)
    assert not old, f"{len(old)} of {answered} runs lost, completed {old} s before a kill"
    assert len(lost) <= KILLS * 2  # only runs in flight or completed in the last moments


async def test_sigkill_with_influxdb_frozen_loses_no_completed_run(bank, influxdb_private, tmp_path):
    server = influxdb_private
    server.create_database("prober")
    pid = server.proc.pid
    os.kill(pid, signal.SIGSTOP)  # writes are accepted by the kernel and never answered
    try:
        lost, answered = await _kill_restart_and_count(
            bank, server, tmp_path, 2, lambda: os.kill(pid, signal.SIGCONT)
        )
    finally:
        os.kill(pid, signal.SIGCONT)
    assert answered >= KILLS * 3
    old = sorted(age for age in lost if age > MARGIN)
    assert not old, f"{len(old)} of {answered} runs lost, completed {old} s before a kill"
    assert len(lost) <= KILLS * 2
