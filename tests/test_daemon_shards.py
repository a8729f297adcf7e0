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
from itertools import groupby
from pathlib import Path

import pytest

from benchmarks.support import free_port_run
from prober.daemon.scheduler import phase_of
from prober.daemon.sharding import owner
from prober.simbank import BankServer
from tests.daemon_helpers import ProberProcess, check, config_text, get_json, wait_for
from tests.fixtures.servers import InfluxDatabase

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


async def _health(base: str) -> tuple[int, dict]:
    try:
        return await get_json(base + "/healthz")
    except OSError:
        return 0, {}


async def test_the_supervisor_answers_for_every_worker_and_a_stuck_one_is_restarted(
    bank: BankServer, influx_db: InfluxDatabase, tmp_path: Path
) -> None:
    """``health_listen`` is the supervisor's: its /healthz is 200 only while every worker
    answers its own with 200, and its /status lists the workers. A worker whose event loop
    no longer turns (SIGSTOP here) keeps its process alive and its banks unprobed: the
    supervisor's /healthz turns 503 at once, and after worker_stall_timeout of silence
    the worker is killed and restarted, probes its sites again, and /healthz is 200 again."""
    port = free_port_run(3)
    text = sites_config(bank.url, influx_db).replace(
        'health_listen = ""', f'health_listen = "127.0.0.1:{port}"\nworker_stall_timeout = "2s"')
    assert f"127.0.0.1:{port}" in text
    (tmp_path / "prober.toml").write_text(text)
    base = f"http://127.0.0.1:{port}"
    prober = await ProberProcess(["run", "-c", "prober.toml", "--workers", "2"], tmp_path).start()
    assert prober.proc is not None
    seen: list[tuple[int, str, str]] = []
    """(the tree's code, the stuck worker's state, the other worker's state), as they change."""
    try:
        await wait_for(lambda: _ok(_health(base)), timeout=30, interval=0.1, what="the supervisor's /healthz: 200")
        _, status = await get_json(base + "/status")
        assert status["status"] == "ok" and status["role"] == "supervisor"
        workers = status["workers"]
        assert [(w["worker"], w["shard"], w["instance"], w["port"], w["state"], w["restarts"]) for w in workers] == [
            (1, "1/2", "probe-w1", port + 1, "ok", 0), (2, "2/2", "probe-w2", port + 2, "ok", 0)]
        assert sorted(w["pid"] for w in workers) == sorted(_children(prober.proc.pid))
        assert all(w["last_health"]["status"] == 200 for w in workers)
        for w in workers:  # each worker answers on its own port, for itself
            assert (await get_json(f"http://127.0.0.1:{w['port']}/healthz")) == (200, {"status": "ok"})
        await wait_for(lambda: len({r["site"] for r in check_points(influx_db)}) == len(SITES),
                       timeout=30, what="every site to run")

        stuck = workers[1]["pid"]
        os.kill(stuck, signal.SIGSTOP)

        async def watch() -> None:
            while True:  # /status: the tree's status (what /healthz answers with) and each worker's state
                try:
                    _, status = await get_json(base + "/status")
                    entry = (200 if status["status"] == "ok" else 503, status["workers"][1]["state"],
                             status["workers"][0]["state"])
                except OSError:
                    entry = (0, "?", "?")
                if not seen or seen[-1] != entry:
                    seen.append(entry)
                await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch())
        try:
            await wait_for(lambda: f"(pid {stuck}) has answered nothing" in prober.log, timeout=15,
                           what="the stuck worker to be found out")
            await wait_for(lambda: len(_children(prober.proc.pid)) == 2 and stuck not in _children(prober.proc.pid),
                           timeout=20, what="a new worker")
            await wait_for(lambda: seen and seen[-1] == (200, "ok", "ok") and len(seen) > 1, timeout=30,
                           what="the supervisor's /status to be ok again")
            assert await _health(base) == (200, {"status": "ok"})
        finally:
            watcher.cancel()
        _, status = await get_json(base + "/status")
        restarted = status["workers"][1]
        assert restarted["pid"] != stuck and restarted["pid"] in _children(prober.proc.pid)
        assert (restarted["state"], restarted["restarts"], restarted["stalls"], restarted["last_exit"]) == (
            "ok", 1, 1, -signal.SIGKILL)
        assert status["workers"][0]["restarts"] == 0
        since = max(r["time"] for r in check_points(influx_db))
        await wait_for(lambda: any(r["time"] > since and r["instance"] == "probe-w2"
                                   for r in check_points(influx_db)),
                       timeout=30, what="the restarted worker to probe its sites")
        prober.signal(signal.SIGTERM)
        code = await prober.wait(40)
    finally:
        await prober.kill()
    assert code == 0, prober.log[-3000:]
    assert "Traceback" not in prober.log
    assert prober.log.count(f"(pid {stuck}) has answered nothing") == 1, prober.log[-3000:]
    # The tree is ok exactly while every worker is (the other one may miss a poll on a
    # loaded machine: that is a 503 too, and not the stuck worker's episode).
    assert seen[0] == (200, "ok", "ok") and seen[-1] == (200, "ok", "ok"), seen
    assert all((code == 200) == (stuck_state == other_state == "ok") for code, stuck_state, other_state in seen), seen
    # The stuck worker: ok → answers nothing → restarting and starting → ok, once.
    episode = [state for state, _ in groupby(stuck_state for _, stuck_state, _ in seen)]
    assert episode[0] == "ok" and episode[1] == "not_answering" and episode[-1] == "ok", seen
    assert set(episode[1:-1]) <= {"not_answering", "restarting", "starting"}, seen


async def _ok(answer) -> bool:
    return (await answer)[0] == 200


async def test_a_supervisor_whose_address_is_taken_starts_no_worker(bank: BankServer, tmp_path: Path) -> None:
    """As a single prober: exit 1 with the reason, and no worker left behind."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "prober.toml").write_text(config_text(
            bank.url, [check("login", interval="1s")], daemon={"health_listen": f"127.0.0.1:{port}"}))
        prober = await ProberProcess(["run", "-c", "prober.toml", "--workers", "2"], tmp_path).start()
        try:
            code = await prober.wait(30)
        finally:
            await prober.kill()
    assert code == 1, prober.log[-3000:]
    assert "cannot start:" in prober.log and "address already in use" in prober.log
    assert "supervising" not in prober.log and "worker 1/2" not in prober.log
