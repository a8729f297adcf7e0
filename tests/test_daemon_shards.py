"""Several probers on one configuration, as real processes against one real InfluxDB:
three ``prober run --shard k/3`` instances, and ``prober run --workers 2``. Every check
runs exactly once per interval, and each prober writes under its own ``instance`` tag."""

from __future__ import annotations

import asyncio
import math
import os
import re
import signal
from collections import defaultdict
from pathlib import Path

import pytest

from prober.bank import BankServer
from prober.daemon.scheduler import phase_of
from prober.daemon.sharding import owner
from tests.fixtures.servers import InfluxDatabase
from tests.test_daemon_helpers import ProberProcess, check, config_text, wait_for

pytestmark = pytest.mark.servers

INTERVAL = 1.0
SITES = ["bank-a", "bank-b", "bank-c", "bank-d", "bank-e", "bank-f", "bank-g", "bank-h"]


def _site(name: str, url: str, checks: list[str]) -> str:
    return (f'[[sites]]\nname = "{name}"\nbase_url = "{url}"\ntimeout = "2s"\n'
            f'[sites.vars]\nusername = "alice"\n[sites.secrets]\npassword = "s3cret-pw"\n' + "".join(checks))


def sites_config(bank_url: str, influx_db: InfluxDatabase, kinds: tuple[str, ...] = ("login",)) -> str:
    checks = [check(kind, interval=f"{INTERVAL:g}s") for kind in kinds]
    head = config_text(
        bank_url, checks, site=SITES[0],
        daemon={"state_dir": "state", "self_report_interval": "1s"},
        influxdb={"url": influx_db.url, "api": "v1", "database": influx_db.name, "flush_interval": "200ms",
                  "spool_dir": "spool"},
    )
    return '[prober]\ninstance = "probe"\n' + head + "\n" + "\n".join(_site(s, bank_url, checks) for s in SITES[1:])


def check_points(influx_db: InfluxDatabase) -> list[dict]:
    return influx_db.query('SELECT "success", "instance", "location" FROM "check" GROUP BY "site", "check"')


def assert_once_per_interval(rows: list[dict], min_runs: int = 3) -> None:
    """Each check's points fall one per period of its interval, periods without a gap."""
    periods: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row in rows:
        phase = phase_of(row["site"], row["check"], INTERVAL, 1.0, row["location"])
        periods[(row["site"], row["check"])].append(math.floor((row["time"] / 1e9 - phase) / INTERVAL))
    for key, seen in periods.items():
        counts = {p: seen.count(p) for p in seen}
        assert all(n == 1 for n in counts.values()), (key, sorted(seen))
        assert max(seen) - min(seen) + 1 == len(seen) >= min_runs, (key, sorted(seen))


async def test_three_shards_on_one_config_run_each_check_once_per_interval(
    bank: BankServer, influx_db: InfluxDatabase, tmp_path: Path
) -> None:
    assert {owner(site, 3) for site in SITES} == {1, 2, 3}  # every shard has something to do
    (tmp_path / "prober.toml").write_text(sites_config(bank.url, influx_db, ("login", "accounts")))
    probers = []
    for k in (1, 2, 3):
        prober = ProberProcess(["run", "-c", "prober.toml", "--shard", f"{k}/3"], tmp_path)
        prober.log_path = tmp_path / f"shard-{k}.log"
        probers.append(await prober.start())
    try:
        await wait_for(lambda: len({(r["site"], r["check"]) for r in check_points(influx_db)}) == 2 * len(SITES),
                       timeout=30, what="every check to run")
        await asyncio.sleep(5 * INTERVAL)
        for prober in probers:
            prober.signal(signal.SIGTERM)
        codes = [await prober.wait(30) for prober in probers]
    finally:
        for prober in probers:
            await prober.kill()
    logs = "\n".join(prober.log for prober in probers)
    assert codes == [0, 0, 0], logs[-3000:]
    assert "Traceback" not in logs
    rows = check_points(influx_db)
    assert_once_per_interval(rows)
    # One instance per shard, each running exactly the sites it owns.
    by_site = {(r["site"], r["instance"]) for r in rows}
    assert by_site == {(site, f"probe-s{owner(site, 3)}") for site in SITES}
    reporters = {r["instance"] for r in influx_db.query('SELECT "checks", "instance" FROM "prober"')}
    assert reporters == {"probe-s1", "probe-s2", "probe-s3"}
    for k in (1, 2, 3):
        assert (tmp_path / "spool" / f"shard-{k}").is_dir() and (tmp_path / "state" / f"shard-{k}").is_dir()


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


async def test_workers_split_the_sites_reload_restart_and_stop_together(
    bank: BankServer, influx_db: InfluxDatabase, tmp_path: Path
) -> None:
    path = tmp_path / "prober.toml"
    path.write_text(sites_config(bank.url, influx_db))
    prober = await ProberProcess(["run", "-c", "prober.toml", "--workers", "2"], tmp_path).start()
    assert prober.proc is not None
    try:
        await wait_for(lambda: len({r["site"] for r in check_points(influx_db)}) == len(SITES),
                       timeout=30, what="every site to run")
        workers = _children(prober.proc.pid)
        assert len(workers) == 2

        # SIGHUP reaches every worker: each reloads, and the added check runs in both.
        path.write_text(sites_config(bank.url, influx_db, ("login", "payments")))
        prober.signal(signal.SIGHUP)
        await wait_for(lambda: len(re.findall(r"configuration reloaded: \d+ checks \(\d+ added", prober.log)) == 2,
                       timeout=20, what="both workers to reload")
        await wait_for(
            lambda: {r["instance"] for r in check_points(influx_db) if r["check"] == "payments"} == {"probe-w1",
                                                                                                    "probe-w2"},
            timeout=20, what="the added check to run in both workers")

        # A worker that dies is restarted.
        os.kill(workers[0], signal.SIGKILL)
        await wait_for(lambda: "restarting it in 1s" in prober.log, timeout=10, what="the restart to be logged")
        await wait_for(lambda: len(_children(prober.proc.pid)) == 2 and workers[0] not in _children(prober.proc.pid),
                       timeout=20, what="a new worker")
        await asyncio.sleep(4 * INTERVAL)
        prober.signal(signal.SIGTERM)
        code = await prober.wait(40)
    finally:
        await prober.kill()
    log = prober.log
    assert code == 0, log[-3000:]
    assert "Traceback" not in log
    assert len(re.findall(r"prober stopped: \d+ results", log)) == 2, log[-3000:]
    for k in (1, 2):  # every line of a worker names it
        assert f"[probe-w{k}] prober.daemon: prober stopped:" in log, log[-3000:]
    assert "all 2 workers stopped" in log
    rows = check_points(influx_db)
    # The killed worker's last run may be lost with it: look at the runs since the restart
    # too, on their own, and at the other worker's whole history.
    assert_once_per_interval([r for r in rows if r["instance"] != f"probe-w{_index_of(log, workers[0])}"])
    assert {(r["site"], r["instance"]) for r in rows if r["check"] == "login"} == {
        (site, f"probe-w{owner(site, 2, 'worker')}") for site in SITES}


def _index_of(log: str, pid: int) -> int:
    match = re.search(rf"worker (\d+) \(pid {pid}\) exited", log)
    assert match, log[-3000:]
    return int(match.group(1))


def _two_free_ports() -> int:
    """A port ``p`` with ``p`` and ``p + 1`` free (the health ports of two workers)."""
    import socket

    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise RuntimeError("no two consecutive free ports")


async def test_a_stuck_worker_is_killed_and_restarted(bank: BankServer, influx_db: InfluxDatabase, tmp_path: Path) -> None:
    """A worker whose event loop no longer turns (SIGSTOP here) keeps its process alive and
    its banks unprobed: the supervisor, hearing nothing from its health endpoint for
    worker_stall_timeout, kills it, and the restarted worker probes its sites again."""
    port = _two_free_ports()
    text = sites_config(bank.url, influx_db).replace(
        'health_listen = ""', f'health_listen = "127.0.0.1:{port}"\nworker_stall_timeout = "2s"')
    assert f"127.0.0.1:{port}" in text
    (tmp_path / "prober.toml").write_text(text)
    prober = await ProberProcess(["run", "-c", "prober.toml", "--workers", "2"], tmp_path).start()
    assert prober.proc is not None
    try:
        await wait_for(lambda: len({r["site"] for r in check_points(influx_db)}) == len(SITES),
                       timeout=30, what="every site to run")
        stuck = _children(prober.proc.pid)[1]
        os.kill(stuck, signal.SIGSTOP)
        await wait_for(lambda: f"(pid {stuck}) has answered nothing" in prober.log, timeout=15,
                       what="the stuck worker to be found out")
        await wait_for(lambda: len(_children(prober.proc.pid)) == 2 and stuck not in _children(prober.proc.pid),
                       timeout=20, what="a new worker")
        index = _index_of(prober.log, stuck)
        since = max(r["time"] for r in check_points(influx_db))
        await wait_for(lambda: any(r["time"] > since and r["instance"] == f"probe-w{index}"
                                   for r in check_points(influx_db)),
                       timeout=30, what="the restarted worker to probe its sites")
        prober.signal(signal.SIGTERM)
        code = await prober.wait(40)
    finally:
        await prober.kill()
    assert code == 0, prober.log[-3000:]
    assert "Traceback" not in prober.log
    assert prober.log.count("has answered nothing") == 1, prober.log[-3000:]
