"""The spool's own faults: a spool directory that cannot be created, a full disk.

Tests run as root, for whom ``chmod`` forbids nothing: an unusable directory is a path
whose parent is a regular file (``mkdir`` fails for root too), and a full disk is
``RLIMIT_FSIZE`` on a real ``prober run`` (writes past the limit fail with ``EFBIG``;
Python ignores the ``SIGXFSZ`` that comes with them).
"""

from __future__ import annotations

import asyncio
import logging
import re
import resource
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from prober.config.influxdb import influxdb_config
from prober.simbank import BankServer
from prober.writer import ResultWriter
from tests.daemon_helpers import ProberProcess, check, config_text, wait_for
from tests.fixtures.servers import InfluxDatabase
from tests.writer_helpers import FAST, make_result

pytestmark = pytest.mark.exclusive  # retries and drops counted over seconds of outage


def unusable_dir(tmp_path: Path) -> Path:
    """A spool directory nobody can create, root included: its parent is a regular file."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    return blocker / "spool"


async def test_unusable_spool_dir_still_writes_to_influxdb_and_says_so(influxdb_private, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="prober.writer")
    server = influxdb_private
    server.create_database("prober")
    config = influxdb_config(url=server.url, api="v1", database="prober", timeout="2s")
    writer = ResultWriter(config, spool_dir=unusable_dir(tmp_path), settings=FAST.replace(memory_max_points=80))
    await writer.start()  # does not raise
    for _ in range(10):
        writer.submit(make_result("no-spool"))
        await asyncio.sleep(0.02)
    assert await writer.wait_idle(10)
    assert server.count("prober", "check") == 10
    stats = writer.stats
    assert stats.write_errors >= 1 and stats.last_error.startswith("spool:") and stats.dropped_points == 0

    # InfluxDB down as well: at most memory_max_points wait in memory, the oldest beyond are dropped.
    await asyncio.to_thread(server.stop)
    for _ in range(30):
        writer.submit(make_result("no-spool-down"))
        await asyncio.sleep(0.01)
    await writer.flush()
    await asyncio.sleep(0.3)
    assert 0 < writer.stats.dropped_points <= 120 - 80  # 80 in memory, one more batch being retried
    await asyncio.to_thread(server.start)
    assert await writer.wait_idle(20)
    await writer.close()
    stats = writer.stats
    checks = server.count("prober", "check")
    assert server.count("prober", "step") == 3 * checks
    # Every result is in InfluxDB or counted as dropped. A write cut off as InfluxDB
    # stopped may have been stored although its answer was lost: the writer then counts
    # it as failed (and, past the memory bound, dropped), so the sums may exceed by a batch.
    assert 120 <= (checks - 10) * 4 + stats.dropped_points <= 120 + FAST.batch_size, (checks, stats)
    assert checks * 4 - FAST.batch_size <= stats.written_points <= checks * 4
    opened = [r for r in caplog.records if "cannot open the spool" in r.getMessage()]
    assert len(opened) == 1  # rate-limited, not one line per attempt
    assert "not durable" in opened[0].getMessage() and str(tmp_path) in opened[0].getMessage()


def _limited_prober(cwd: Path, limit: int) -> ProberProcess:
    """``prober run`` whose files cannot grow beyond ``limit`` bytes (a full disk)."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return ProberProcess(["run", "-c", "prober.toml"], cwd, preexec_fn=apply)


async def _run_then_stop(prober: ProberProcess, *waits) -> str:
    """Start ``prober``, wait for each ``(predicate, what)`` in turn, SIGTERM it: its log (exit 0)."""
    await prober.start()
    try:
        for predicate, what in waits:
            await wait_for(predicate, timeout=60, what=what)
        prober.signal(signal.SIGTERM)
        assert await prober.wait(20) == 0, prober.log[-3000:]
    finally:
        await prober.kill()
    log = prober.log
    assert "Traceback" not in log, log[-3000:]
    return log


def _stopped(log: str) -> tuple[int, int, int]:
    match = re.search(r"prober stopped: (\d+) results .*writer: (\d+) points written, (\d+) dropped", log)
    assert match, log[-3000:]
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def _daemon_config(bank: BankServer, url: str, database: str, spool_dir: str) -> str:
    return config_text(
        bank.url,
        [check("login", name=f"login-{i}", interval="100ms") for i in range(3)],
        daemon={"jitter": 0.0, "state_dir": "state"},
        influxdb={"url": url, "api": "v1", "database": database, "timeout": "2s", "spool_dir": spool_dir},
    )


@pytest.mark.servers
async def test_daemon_with_unusable_spool_dir_writes_everything(bank, influx_db: InfluxDatabase, tmp_path):
    spool_dir = str(unusable_dir(tmp_path))
    (tmp_path / "prober.toml").write_text(_daemon_config(bank, influx_db.url, influx_db.name, spool_dir))
    prober = ProberProcess(["run", "-c", "prober.toml"], tmp_path)
    log = await _run_then_stop(prober, (lambda: influx_db.count("check") >= 30, "results in InfluxDB"))
    results, _, dropped = _stopped(log)
    assert dropped == 0 and log.count("cannot open the spool") == 1
    assert influx_db.count("check") == results
    # The self-report shows the problem: write_errors from the spool, not one per tick.
    errors = [r["write_errors"] for r in influx_db.query('SELECT "write_errors" FROM "prober"')]
    assert errors and 1 <= max(errors) <= 10, errors


@pytest.mark.servers
async def test_daemon_on_a_full_disk(bank, influxdb_private, tmp_path):
    server = influxdb_private
    server.create_database("prober")
    (tmp_path / "prober.toml").write_text(_daemon_config(bank, server.url, "prober", "spool"))
    # 1. InfluxDB up: the spool fills up, results still all reach InfluxDB.
    prober = _limited_prober(tmp_path, 64 * 1024)
    full: list[int] = []

    def spool_full() -> bool:
        if "cannot write to the spool" in prober.log:
            full.append(server.count("prober", "check"))
        return bool(full)

    log = await _run_then_stop(
        prober,
        (spool_full, "a full spool"),
        (lambda: server.count("prober", "check") >= full[0] + 30, "results after the spool filled up"),
    )
    results, _, dropped = _stopped(log)
    assert dropped == 0 and server.count("prober", "check") == results
    assert re.search(r"cannot write to the spool .*OperationalError: (disk I/O error|database or disk is full)", log)

    # 2. InfluxDB down too: nothing crashes; every result is in the spool or counted as dropped.
    server.stop()
    (tmp_path / "prober.log").unlink()
    prober = _limited_prober(tmp_path, 64 * 1024)
    started: list[float] = []

    def a_second_later() -> bool:
        started.append(time.monotonic())
        return started[-1] - started[0] > 1.0

    log = await _run_then_stop(prober, (lambda: "cannot write to the spool" in prober.log, "a full spool"),
                               (a_second_later, "a second with a full spool"))
    results, written, dropped = _stopped(log)
    assert written == 0 and dropped > 0 and "could be neither written nor spooled" in log
    assert _spooled_checks(tmp_path) + dropped // 2 >= results  # each login result is 2 points (check + step)


def _spooled_checks(tmp_path: Path) -> int:
    db = sqlite3.connect(tmp_path / "spool" / "influx-spool.sqlite3")
    try:
        return sum(
            lines.count("\ncheck,") + lines.startswith("check,") for (lines,) in db.execute("SELECT lines FROM batches")
        )
    finally:
        db.close()
