"""Scheduler benchmark: sustained journeys/s, steps/s, schedule lag and CPU per step.

A micro-benchmark: it times the code in this process, not ``prober run`` as a user runs
it (``benchmarks/daemon.py`` measures the daemon).

Command::

    python benchmarks/scheduler.py                       # N = 10, 100, 1000
    python benchmarks/scheduler.py --checks 1000 --seconds 20

The simulated bank runs in a **separate process** (``prober bank`` on a free loopback
port), so the CPU time measured (``time.process_time()`` of this process) is the
prober's alone: scheduling, the journey runner (aiohttp, phase tracing, assertions,
extraction), result consumers (live status, lockout) and InfluxDB line-protocol
serialization in the writer (its sink accepts and discards each batch, so no database
time is counted).

Each check is a 3-step journey of the ``accounts`` kind: ``POST /oauth/token`` (fresh
connection), ``GET /accounts``, ``GET /accounts/{id}/balances`` (kept-alive connection),
with assertions and extractions. Intervals per N (overridable with ``--interval``) keep
the bank (one Python process on this 2-core machine) well below saturation:
N=10 → 0.2 s, N=100 → 0.5 s, N=1000 → 2 s. After a warm-up of one interval plus 2 s,
the figures are measured over ``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.support import start_bank
from prober import eventloop
from prober.daemon.scheduler import percentile
from prober.daemon.service import ProberService
from prober.loading import load
from prober.results import JourneyResult, Outcome
from prober.writer.sinks import OK, WriteResult
from prober.writer.writer import ResultWriter

DEFAULT_INTERVALS = {10: 0.2, 100: 0.5, 1000: 2.0}

CHECK = """
[[sites.checks]]
name = "accounts-{i}"
kind = "accounts"
interval = "{interval}ms"
timeout = "{interval}ms"

  [[sites.checks.steps]]
  name = "token"
  method = "POST"
  path = "/oauth/token"
  form = {{ grant_type = "password", username = "{{{{ username }}}}", password = "{{{{ password }}}}" }}
  status = 200
  expect = [ {{ json = "token_type", equals = "Bearer" }} ]
  extract = {{ token = {{ json = "access_token" }} }}

  [[sites.checks.steps]]
  name = "list"
  path = "/accounts"
  headers = {{ Authorization = "Bearer {{{{ token }}}}" }}
  expect = [ {{ json = "accounts", min_length = 1 }} ]
  extract = {{ account_id = {{ json = "accounts[0].resourceId" }} }}

  [[sites.checks.steps]]
  name = "balances"
  path = "/accounts/{{{{ account_id }}}}/balances"
  headers = {{ Authorization = "Bearer {{{{ token }}}}" }}
  expect = [ {{ json = "balances[?balanceType=='CLBD'] | [0].balanceAmount.amount", gt = 0 }} ]
"""


class NullSink:
    """Accepts every batch (the points were serialized; no database time is counted)."""

    description = "null sink"

    def __init__(self) -> None:
        self.points = 0

    async def start(self) -> None:
        return None

    async def write(self, body: str, points: int) -> WriteResult:
        self.points += points
        return OK

    async def close(self) -> None:
        return None


class Counter:
    """Result consumer counting executed journeys and steps."""

    def __init__(self) -> None:
        self.journeys = self.steps = self.failed = self.skipped = 0

    def consume(self, result: JourneyResult) -> None:
        if result.outcome is Outcome.SKIPPED:
            self.skipped += 1
            return
        self.journeys += 1
        self.steps += sum(1 for s in result.steps if s.executed)
        if not result.success:
            self.failed += 1

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


async def measure(bank_url: str, checks: int, interval: float, seconds: float, workdir: Path) -> dict[str, float]:
    text = ['[daemon]\nhealth_listen = ""\nself_report_interval = "1s"\n'
            f'state_dir = "{workdir / "state"}"\n',
            f'[[sites]]\nname = "simbank"\nbase_url = "{bank_url}"\ntimeout = "5s"\n'
            '[sites.vars]\nusername = "alice"\n[sites.secrets]\npassword = "s3cret-pw"\n']
    text += [CHECK.format(i=i, interval=int(interval * 1000)) for i in range(checks)]
    path = workdir / f"bench-{checks}.toml"
    path.write_text("\n".join(text))
    counter = Counter()
    sink = NullSink()
    writer = ResultWriter(None, sink=sink, spool_dir=workdir / "spool")
    service = ProberService(load(path), writer=writer, consumers=[counter])
    await service.start()
    await asyncio.sleep(interval + 2.0)
    service.scheduler.take_window()
    j0, s0, f0, k0 = counter.journeys, counter.steps, counter.failed, counter.skipped
    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    j1, s1, f1, k1 = counter.journeys, counter.steps, counter.failed, counter.skipped
    cpu1, t1 = time.process_time(), time.monotonic()
    window = service.scheduler.take_window()
    await service.stop(grace=5.0)
    elapsed = t1 - t0
    steps = s1 - s0
    return {
        "checks": checks,
        "interval_s": interval,
        "journeys_per_s": (j1 - j0) / elapsed,
        "expected_per_s": checks / interval,
        "steps_per_s": steps / elapsed,
        "lag_p50_ms": percentile(window, 50),
        "lag_p99_ms": percentile(window, 99),
        "lag_max_ms": max(window) if window else 0.0,
        "cpu_ms_per_step": (cpu1 - cpu0) * 1000.0 / steps if steps else float("nan"),
        "cpu_share": (cpu1 - cpu0) / elapsed,
        "failed": f1 - f0,
        "skipped": k1 - k0,
        "points_written": sink.points,
    }


def main() -> int:
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, action="append", help="N (repeatable; default 10, 100, 1000)")
    parser.add_argument("--interval", type=float, default=None, help="seconds between runs of each check")
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window (default 10)")
    args = parser.parse_args()
    sizes = args.checks or [10, 100, 1000]
    print(f"command: {' '.join([os.path.relpath(sys.argv[0], os.getcwd()), *sys.argv[1:]])}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; bank in a separate process")
    bank, url = start_bank()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            header = (f"{'checks':>6} {'interval':>8} {'journeys/s':>10} {'(planned)':>9} {'steps/s':>8} "
                      f"{'lag p50':>8} {'lag p99':>8} {'lag max':>8} {'CPU/step':>9} {'CPU %':>6} "
                      f"{'failed':>6} {'skipped':>7}")
            print(header)
            for n in sizes:
                interval = args.interval or DEFAULT_INTERVALS.get(n, 1.0)
                r = eventloop.run(measure(url, n, interval, args.seconds, Path(tmp)))
                print(f"{n:>6} {interval:>7g}s {r['journeys_per_s']:>10.1f} {r['expected_per_s']:>9.1f} "
                      f"{r['steps_per_s']:>8.1f} {r['lag_p50_ms']:>6.2f}ms {r['lag_p99_ms']:>6.2f}ms "
                      f"{r['lag_max_ms']:>6.1f}ms {r['cpu_ms_per_step']:>7.3f}ms {r['cpu_share'] * 100:>5.0f}% "
                      f"{r['failed']:>6} {r['skipped']:>7}", flush=True)
    finally:
        bank.terminate()
        bank.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
