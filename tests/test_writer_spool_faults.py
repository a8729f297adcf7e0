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
import sys
from pathlib import Path

import pytest

from prober.bank import BankServer
from prober.config.influxdb import InfluxDBConfig
from prober.writer import ResultWriter
from tests.fixtures.servers import InfluxDatabase
from tests.test_daemon_helpers import ProberProcess, check, config_text, wait_for
from tests.test_writer_e2e import make_result

FAST = dict(flush_interval=0.05, batch_size=40, backoff_base=0.05, backoff_max=0.3)


def unusable_dir(tmp_path: Path) -> Path:
    """A spool directory nobody can create, root included: its parent is a regular file."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    return blocker / "spool"


async def test_unusable_spool_dir_still_writes_to_influxdb_and_says_so(influxdb_private, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="prober.writer")
    server = influxdb_private
    server.create_database("prober")
    config = InfluxDBConfig(url=server.url, api="v1", database="prober", timeout="2s")
    writer = ResultWriter(config, spool_dir=unusable_dir(tmp_path), memory_max_points=80, **FAST)
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
    assert (checks - 10) * 4 + stats.dropped_points == 120, (checks, stats)
    assert stats.written_points == checks * 4
    opened = [r for r in caplog.records if "cannot open the spool" in r.getMessage()]
    assert len(opened) == 1  # rate-limited, not one line per attempt
    assert "not durable" in opened[0].getMessage() and str(tmp_path) in opened[0].getMessage()


def _limit_file_size(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


class LimitedProber(ProberProcess):
    """``prober run`` whose files cannot grow beyond ``limit`` bytes (a full disk)."""

    def __init__(self, args: list[str], cwd: Path, limit: int) -> None:
        super().__init__(args, cwd)
        self.limit = limit

    async def start(self) -> LimitedProber:
        self._log = self.log_path.open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "prober", *self.args, cwd=self.cwd, env=self.env,
            stdout=self._log, stderr=asyncio.subprocess.STDOUT, preexec_fn=_limit_file_size(self.limit),
        )
        return self


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
    (tmp_path / "prober.toml").write_text(_daemon_config(bank, influx_db.url, influx_db.name, str(unusable_dir(tmp_path))))
    prober = await ProberProcess(["run", "-c", "prober.toml"], tmp_path).start()
    try:
        await wait_for(lambda: influx_db.count("check") >= 30, timeout=30, what="results in InfluxDB")
        prober.signal(signal.SIGTERM)
        assert await prober.wait(20) == 0, prober.log[-3000:]
    finally:
        await prober.kill()
    log = prober.log
    results, _, dropped = _stopped(log)
    assert "Traceback" not in log and dropped == 0
    assert log.count("cannot open the spool") == 1
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
    prober = await LimitedProber(["run", "-c", "prober.toml"], tmp_path, 64 * 1024).start()
    try:
        await wait_for(lambda: "cannot write to the spool" in prober.log, timeout=60, what="a full spool")
        full = server.count("prober", "check")
        await wait_for(lambda: server.count("prober", "check") >= full + 30, timeout=30,
                       what="results after the spool filled up")
        prober.signal(signal.SIGTERM)
        assert await prober.wait(20) == 0, prober.log[-3000:]
    finally:
        await prober.kill()
    log = prober.log
    results, _, dropped = _stopped(log)
    assert "Traceback" not in log and dropped == 0
    assert re.search(r"cannot write to the spool .*OperationalError: (disk I/O error|database or disk is full)", log), log[-3000:]
    assert server.count("prober", "check") == results

    # 2. InfluxDB down too: nothing crashes; every result is in the spool or counted as dropped.
    server.stop()
    (tmp_path / "prober.log").unlink()
    prober = await LimitedProber(["run", "-c", "prober.toml"], tmp_path, 64 * 1024).start()
    try:
        await wait_for(lambda: "cannot write to the spool" in prober.log, timeout=60, what="a full spool")
        await asyncio.sleep(1.0)
        prober.signal(signal.SIGTERM)
        assert await prober.wait(20) == 0, prober.log[-3000:]
    finally:
        await prober.kill()
    log = prober.log
    results, written, dropped = _stopped(log)
    assert "Traceback" not in log and written == 0 and dropped > 0
    assert "could be neither written nor spooled" in log
    spooled = _spooled_checks(tmp_path)
    assert spooled + dropped // 2 >= results  # each login result is 2 points (check + step)


def _spooled_checks(tmp_path: Path) -> int:
    db = sqlite3.connect(tmp_path / "spool" / "influx-spool.sqlite3")
    try:
        return sum(lines.count("\ncheck,") + lines.startswith("check,") for (lines,) in db.execute("SELECT lines FROM batches"))
    finally:
        db.close()
