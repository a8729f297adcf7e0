"""Results lost when ``prober run`` is SIGKILLed at random moments, with InfluxDB down or frozen.

Command (from the repository root)::

    python benchmarks/sigkill_loss.py [--kills 10] [--mode down|frozen] [--flush-interval 1s] [--seed 7]

Runs the simulated bank in this process and ``prober run`` (one login check every
100 ms) as a subprocess, with InfluxDB stopped (``down``) or frozen by SIGSTOP
(``frozen``: every write hangs until its 2 s timeout). Kills the prober with SIGKILL
``--kills`` times, each a random 0.3-3 s after its first run, then brings InfluxDB back,
restarts the prober so that it replays its spool, and matches the ``check`` points in
InfluxDB with the runs the bank answered (``tests/crash_cycles.py``). Prints, per kill
and in total, the answered runs InfluxDB lacks and how long before the kill the bank
had answered them. The writer's bound: runs completed more than ~50 ms (one journal
interval, plus the commit) before a kill are never lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prober.simbank import BankServer
from tests.crash_cycles import AnsweredRuns, crash_config, lost_runs, run_then_kill, stored_starts
from tests.daemon_helpers import ProberProcess
from tests.fixtures.servers import InfluxDBServer

BUCKETS = (0.0, 0.05, 0.1, 0.3, 1.0)


async def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bench-sigkill-"))
    server = InfluxDBServer(workdir / "influxd")
    server.start()
    rng = random.Random(args.seed)
    try:
        server.create_database("prober")
        assert server.proc is not None  # started
        pid = server.proc.pid
        if args.mode == "down":
            server.stop()
        else:
            os.kill(pid, signal.SIGSTOP)
        async with BankServer(seed=1) as bank:
            (workdir / "prober.toml").write_text(crash_config(bank.url, server.url, "prober", args.flush_interval))
            answered = AnsweredRuns(bank).start()
            kills: list[float] = []
            try:
                for _ in range(args.kills):
                    kills.append(await run_then_kill(workdir, answered, rng, 0.3, 3.0))
            finally:
                await answered.stop()
                if args.mode == "down":
                    server.start()
                else:
                    os.kill(pid, signal.SIGCONT)
            prober = await ProberProcess(["run", "-c", "prober.toml"], workdir).start()
            try:
                await asyncio.sleep(args.replay_wait)  # the replay of the spool
                prober.signal(signal.SIGTERM)
                await prober.wait(30)
            finally:
                await prober.kill()
        starts = stored_starts(lambda q: server.query(q, "prober"), kills[-1])
        lost = lost_runs(answered.times, starts, kills)
        print(f"command: python benchmarks/sigkill_loss.py --kills {args.kills} --mode {args.mode} "
              f"--flush-interval {args.flush_interval} --seed {args.seed}")
        print(f"runs answered by the bank before the kills: {len(answered.times)}; points in InfluxDB: {len(starts)}")
        for i, kill in enumerate(kills):
            before = kills[i - 1] if i else 0.0
            mine = sorted(age for index, age in lost if index == i)
            count = sum(1 for t in answered.times if before < t <= kill)
            print(f"  kill {i + 1}: {count} runs answered, {len(mine)} lost"
                  + (f" (answered {', '.join(f'{a * 1000:.0f}' for a in mine)} ms before the kill)" if mine else ""))
        for low in BUCKETS:
            print(f"lost runs answered more than {low * 1000:.0f} ms before a kill: "
                  f"{sum(1 for _, age in lost if age > low)}")
        return 0 if not any(age > 0.1 for _, age in lost) else 1
    finally:
        if server.proc is not None:
            with contextlib.suppress(OSError):
                os.kill(server.proc.pid, signal.SIGCONT)
        server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--mode", choices=("down", "frozen"), default="down")
    parser.add_argument("--flush-interval", default="1s")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--replay-wait", type=float, default=8.0)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
