"""Time ``prober report`` on a quarter of one-minute probes of 20 checks in a real InfluxDB 1.x.

Command (from the repository root)::

    python benchmarks/report.py [--days 90] [--sites 4] [--steps 2] [--format json]

Starts ``influxd`` on a free port with a temporary data directory (the launcher of
``tests/fixtures/servers.py``) and writes ``--days`` days (default: the first quarter of
2026, 90 days) of one run per minute of five checks per site (login, accounts, transfer,
payments, cards) for ``--sites`` sites (default 4: 20 checks, about 2.6 M ``check``
points) with ``--steps`` ``step`` points per run, and an outage of 12 minutes per site
every third day. Then runs ``python -m prober report`` over the whole range as a separate
process and prints its wall time, its CPU time (user + system, from the child's rusage)
and its peak memory, and the CPU time ``influxd`` spent answering it (most of it goes
to the exact ``percentile()`` of TTFB and total time per interface and day): on a shared
machine the wall time follows the load, the two CPU figures do not.
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.servers import InfluxDBServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("login", "accounts", "transfer", "payments", "cards")
NS = 1_000_000_000
DB = "bench"


def day_lines(day: date, sites: int, steps: int) -> list[str]:
    """One day of runs: every minute, every check of every site (offset by its index)."""
    start = int(datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc).timestamp())
    outage = day.toordinal() % 3 == 0
    lines: list[str] = []
    for s in range(sites):
        site = f"bank-{s}"
        for k, kind in enumerate(KINDS):
            prefix = f",check={kind},kind={kind},location=par-1"
            for minute in range(1440):
                t = start + minute * 60 + k * 7 + s
                down = outage and 600 + 3 * s <= minute < 612 + 3 * s and kind != "cards"
                outcome = "http_status" if down else "ok"
                ok = 0 if down else 1
                ns = t * NS
                error = '"HTTP 503"' if down else '""'
                lines.append(f"check{prefix},outcome={outcome},site={site} success={ok}i,duration_ms={40.5 + minute % 17}"
                             f',failed_step="{"call" if down else ""}",error={error},steps={steps}i {ns}')
                for j in range(steps):
                    ttfb = 10.0 + (minute + j) % 23
                    lines.append(f"step{prefix},outcome={outcome if j == steps - 1 else 'ok'},site={site},step=s{j} "
                                 f"success={ok if j == steps - 1 else 1}i,duration_ms={ttfb + 5.5},ttfb_ms={ttfb},"
                                 f'http_status={503 if down and j == steps - 1 else 200}i,bytes=512i,error="" '
                                 f"{ns + j * 1_000_000}")
    return lines


def write(url: str, lines: list[str], batch: int = 100_000) -> None:
    for i in range(0, len(lines), batch):
        body = gzip.compress("\n".join(lines[i:i + batch]).encode(), 1)
        request = urllib.request.Request(f"{url}/write?db={DB}&precision=ns", data=body, method="POST",
                                         headers={"Content-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=300) as response:
            if response.status != 204:
                raise RuntimeError(f"write answered {response.status}")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--first", type=date.fromisoformat, default=date(2026, 1, 1))
    parser.add_argument("--format", default="json", choices=["table", "csv", "json", "html"])
    args = parser.parse_args()
    last = args.first + timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        server = InfluxDBServer(Path(tmp) / "influxd")
        server.start()
        try:
            server.create_database(DB)
            began = time.monotonic()
            points = 0
            for d in range(args.days):
                lines = day_lines(args.first + timedelta(days=d), args.sites, args.steps)
                write(server.url, lines)
                points += len(lines)
            wrote = time.monotonic() - began
            checks = server.count(DB, "check")
            print(f"wrote {points:,} points ({checks:,} check points, {args.sites * len(KINDS)} checks, "
                  f"{args.days} days) in {wrote:.1f} s")
            config = Path(tmp) / "prober.toml"
            config.write_text(f'[influxdb]\nurl = "{server.url}"\napi = "v1"\ndatabase = "{DB}"\n')
            out = Path(tmp) / f"report.{args.format}"
            command = [sys.executable, "-m", "prober", "report", "-c", str(config), "--from", str(args.first),
                       "--to", str(last), "--format", args.format, "-o", str(out)]
            assert server.proc is not None
            time.sleep(65)  # let influxd snapshot its cache to TSM files, as for data written over a quarter
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            influxd_before = process_cpu(server.proc.pid)
            began = time.monotonic()
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            wall = time.monotonic() - began
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            influxd_cpu = process_cpu(server.proc.pid) - influxd_before
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            shown = " ".join(c if "/" not in c else Path(c).name for c in command[1:])
            print(f"command: python {shown}")
            print(f"prober report over {args.days} days: {wall:.2f} s wall, {cpu:.2f} s CPU (report process), "
                  f"peak RSS {after.ru_maxrss / 1024:.0f} MB, {out.stat().st_size:,} bytes of {args.format}; "
                  f"influxd {influxd_cpu:.2f} s CPU answering; load average {os.getloadavg()[0]:.1f}")
            print(f"figure: {checks / wall:,.0f} check points per second of wall time")
        finally:
            server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
