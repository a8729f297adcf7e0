"""Memory per configured check: configuration, compiled plans, scheduler jobs, status.

    python benchmarks/memory_per_check.py [--checks 1000]

Builds a configuration of N three-step checks (the accounts journey), loads it, and starts
the daemon's service on it (scheduler jobs, status store, incident tracker, a writer with
a discarding sink) with first runs spread over a long interval, so that what is measured
is the standing cost of a configured check, not of runs in flight. Python's allocations
are traced with ``tracemalloc`` from before the load to after the start; the difference
divided by N is printed, for N and for N/10 (the per-check figure should not grow with N).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
import tempfile
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.scheduler import CHECK, NullSink
from prober import eventloop
from prober.daemon.service import ProberService
from prober.loading import load
from prober.writer.writer import ResultWriter


async def measure(checks: int, workdir: Path) -> float:
    text = ['[daemon]\nhealth_listen = ""\n' f'state_dir = "{workdir / "state"}"\n',
            '[[sites]]\nname = "simbank"\nbase_url = "http://127.0.0.1:9"\n'
            '[sites.vars]\nusername = "alice"\n[sites.secrets]\npassword = "s3cret-pw"\n']
    # 10-minute intervals with the default spread: no run starts during the measurement.
    text += [CHECK.format(i=i, interval=600_000) for i in range(checks)]
    path = workdir / f"memory-{checks}.toml"
    path.write_text("\n".join(text))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    service = ProberService(load(path), writer=ResultWriter(None, sink=NullSink(), spool_dir=workdir / "spool"))
    await service.start()
    await asyncio.sleep(0.5)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    await service.stop(grace=1.0)
    return (after - before) / checks


def main() -> int:
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    args = parser.parse_args()
    print(f"command: python benchmarks/memory_per_check.py --checks {args.checks}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (max(args.checks // 10, 1), args.checks):
            per_check = eventloop.run(measure(n, Path(tmp)))
            print(f"{n:>6} checks: {per_check / 1024:.1f} KB per configured check (target <= 50 KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
