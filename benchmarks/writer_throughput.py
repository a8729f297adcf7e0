"""Sustained write throughput of ResultWriter into a real InfluxDB 1.x, and CPU per point.

Command (from the repository root)::

    python benchmarks/writer_throughput.py [--points 600000] [--batch-size 5000] [--api v1] [--no-gzip]

Starts ``influxd`` on a free port with a temporary data directory (the launcher of
``tests/fixtures/servers.py``), builds journey results ahead of time (a check point plus
five step points each, distinct timestamps), then submits them as fast as the writer
takes them and waits until InfluxDB has acknowledged every point. Prints points per
second (wall clock, submit → last acknowledgement) and the prober process's CPU time per
point (``time.process_time``: serialization, batching, gzip and HTTP; InfluxDB's own CPU
is not included), then checks with ``SELECT count(*)`` that every point arrived.
Target (README, "Performance"): at least 50,000 points per second.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prober.config.influxdb import influxdb_config
from prober.results import JourneyResult, Outcome, Phases, StepResult
from prober.writer import ResultWriter, WriterSettings
from tests.fixtures.servers import InfluxDBServer

STEPS = 5


def build_results(count: int, t0: int) -> list[JourneyResult]:
    results = []
    for i in range(count):
        t = t0 + i * 1000
        steps = [
            StepResult(f"step-{j}", Outcome.OK, 12.5, Phases(0.4, 0.8, 2.1, 7.7, 1.5), 200, 2048, started_at_ns=t + j)
            for j in range(STEPS)
        ]
        results.append(
            JourneyResult(site=f"bank-{i % 20}", check=f"check-{i % 50}", kind="accounts", location="par-1",
                          outcome=Outcome.OK, started_at_ns=t, duration_ms=62.5, steps=tuple(steps))
        )
    return results


async def run(args: argparse.Namespace) -> int:
    server = InfluxDBServer()
    server.start()
    try:
        server.create_database("bench")
        config = influxdb_config(url=server.url, api="v1", database="bench", batch_size=args.batch_size,
                                flush_interval="200ms", gzip=not args.no_gzip, timeout="30s")
        per_result = 1 + STEPS
        results = build_results(args.points // per_result, time.time_ns() - 86_400 * 10**9)
        total = len(results) * per_result
        spool = tempfile.mkdtemp(prefix="bench-spool-")
        writer = ResultWriter(config, spool_dir=spool,
                              settings=WriterSettings.from_config(config, max_in_flight=args.in_flight))
        await writer.start()
        chunk = max(args.batch_size // per_result, 1)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for start in range(0, len(results), chunk):
            for result in results[start : start + chunk]:
                writer.submit(result)
            await asyncio.sleep(0)
        ok = await writer.wait_idle(300)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        await writer.close()
        stats = writer.stats
        stored = server.count("bench", "check") + server.count("bench", "step")
        print(f"command: python benchmarks/writer_throughput.py --points {args.points} --batch-size {args.batch_size}"
              f" --in-flight {args.in_flight}{' --no-gzip' if args.no_gzip else ''}")
        print(f"points submitted: {total}, written: {stats.written_points}, stored (count): {stored}, "
              f"spooled: {stats.spooled_points}, dropped: {stats.dropped_points}, errors: {stats.write_errors}")
        print(f"throughput: {total / wall:,.0f} points/s sustained over {wall:.2f} s (target >= 50,000)")
        print(f"CPU: {cpu / total * 1e6:.2f} us per point in the prober process ({cpu:.2f} s total)")
        return 0 if ok and stored == total else 1
    finally:
        server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=600_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=2)
    parser.add_argument("--no-gzip", action="store_true")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
