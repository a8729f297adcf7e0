"""InfluxDB storage and series per check: a day of results written into a real InfluxDB 1.x.

    .venv/bin/python benchmarks/capacity.py                    # 100 checks, one day, about 3 minutes
    .venv/bin/python benchmarks/capacity.py --checks 200 --interval 30

Starts ``influxd`` on a free port with a temporary data directory (the launcher of
``tests/fixtures/servers.py``) and writes one day of runs of ``--checks`` checks (a
3-step journey every ``--interval`` seconds, sites of 10 checks, 2 % of runs failing at
a step with ``http_status``, realistic phase timings and jitter), serialized by the
writer's own code (``prober.writer.points.journey_lines``: the ``check`` point and one
``step`` point per step, as ``prober run`` writes them). It waits until InfluxDB has
written its whole cache to TSM files and emptied its WAL (``cache-snapshot-write-cold-duration``,
one minute),
then prints the points and series per check, the bytes on disk (TSM files: compressed
columns and index) per point and per check per day, and series per 1,000 checks.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prober.results import JourneyResult, Outcome, Phases, StepResult
from prober.writer.points import journey_lines
from tests.fixtures.servers import InfluxDBServer

DB = "capacity"
STEPS = ("token", "accounts", "balances")


def day_of_runs(checks: int, interval: float, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    start_ns = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
    runs = int(86400 / interval)
    lines: list[str] = []
    for c in range(checks):
        site, check = f"bank-{c // 10:03d}", f"accounts-{c}"
        phase = rng.uniform(0, interval)
        for n in range(runs):
            started = start_ns + int((phase + n * interval + rng.uniform(0, min(1.0, interval * 0.05))) * 1e9)
            failing = rng.random() < 0.02
            steps = []
            for i, name in enumerate(STEPS):
                fail_here = failing and i == 1
                phases = Phases(dns_ms=rng.uniform(0.5, 3) if i == 0 else 0.0,
                                connect_ms=rng.uniform(5, 30) if i == 0 else 0.0,
                                tls_ms=rng.uniform(20, 80) if i == 0 else 0.0,
                                ttfb_ms=rng.uniform(40, 400), transfer_ms=rng.uniform(0.1, 5))
                steps.append(StepResult(name, Outcome.HTTP_STATUS if fail_here else Outcome.OK,
                                        duration_ms=phases.total_ms, phases=phases,
                                        http_status=503 if fail_here else 200, bytes=rng.randint(200, 4000),
                                        error="HTTP 503 (expected 2xx)" if fail_here else "", attempts=1,
                                        started_at_ns=started))
                if fail_here:
                    break
            outcome = Outcome.HTTP_STATUS if failing else Outcome.OK
            lines.extend(journey_lines(JourneyResult(
                site=site, check=check, kind="accounts", location="paris", outcome=outcome,
                started_at_ns=started, duration_ms=sum(s.duration_ms for s in steps), steps=tuple(steps),
                failed_step="accounts" if failing else "", error=steps[-1].error), "ns", "prober-1-s1"))
    return lines


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=100)
    parser.add_argument("--interval", type=float, default=60.0)
    args = parser.parse_args()
    print(f"# command: python benchmarks/{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}".rstrip())
    print(f"# {args.checks} checks of a {len(STEPS)}-step journey every {args.interval:g}s, one day, into InfluxDB 1.x")
    lines = day_of_runs(args.checks, args.interval)
    server = InfluxDBServer()
    try:
        server.start()
        server.create_database(DB)
        for start in range(0, len(lines), 20_000):
            server.write_lines(DB, lines[start:start + 20_000])
        points = server.count(DB, "check") + server.count(DB, "step")
        series = sum(int(row["count"]) for row in server.query("SHOW SERIES EXACT CARDINALITY", DB))  # per measurement
        shard = server.workdir / "data" / DB
        deadline = time.monotonic() + 300
        # The cache goes to TSM files in pieces while writing (at 25 MB), the rest once
        # cold for a minute; the WAL segments are removed as their points are in TSM.
        while time.monotonic() < deadline and dir_bytes(server.workdir / "wal" / DB) > 64 * 1024:
            time.sleep(5)
        time.sleep(5)
        tsm = sum(f.stat().st_size for f in shard.rglob("*.tsm"))
        wal = dir_bytes(server.workdir / "wal" / DB)
    finally:
        server.close()
    per_check_day = tsm / args.checks
    print(f"points: {points:,} ({points / args.checks:,.0f} per check per day, "
          f"{points / args.checks / 86400 * 1000:,.2f} per check per 1,000 s)")
    print(
        f"series: {series:,} ({series / args.checks:.1f} per check; 2 % failing runs add the failing outcome's series)"
    )
    print(f"TSM files: {tsm / 1024 / 1024:.1f} MiB = {tsm / points:.1f} bytes per point "
          f"(WAL left: {wal / 1024:.0f} KiB)")
    print("\n## Summary")
    print(f"InfluxDB storage: {per_check_day / 1024:.0f} KiB per check per day at a {args.interval:g}s interval "
          f"({tsm / points:.1f} bytes per point, {points / args.checks:,.0f} points per check per day)")
    print(
        f"InfluxDB series per 1,000 checks: {series / args.checks * 1000:,.0f} "
        f"({len(STEPS)}-step journeys; each outcome a check has had adds one series per point kind)"
    )
    print(f"points per second per 1,000 checks: {points / args.checks * 1000 / 86400:,.1f} "
          f"at a {args.interval:g}s interval")
    return 0


if __name__ == "__main__":
    sys.exit(main())
