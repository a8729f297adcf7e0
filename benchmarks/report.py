"""Time ``prober report`` on a quarter of one-minute probes of 100 checks in a real InfluxDB 1.x.

Command (from the repository root, with the project's environment)::

    .venv/bin/python benchmarks/report.py [--days 90] [--sites 20] [--steps 2] [--baseline-rev main]

Starts ``influxd`` on a free port with a temporary data directory (the launcher of
``tests/fixtures/servers.py``) and writes ``--days`` days (default: the first quarter of
2026, 90 days) of one run per minute of five checks per site (login, accounts, transfer,
payments, cards) for ``--sites`` sites (default 20: 100 checks, about 13 M ``check``
points) with ``--steps`` ``step`` points per run, and an outage of 12 minutes per site
every third day. Then, one after the other on the same data, each as a separate
``python -m prober report`` process over the whole range:

* ``baseline``: the report of ``--baseline-rev`` (default ``main``), exported with
  ``git archive`` into a temporary directory: today's approach (``""`` skips it);
* ``recompute``: this tree's report from the raw points (``--recompute``);
* ``write``: this tree's ``--write`` of every day of the range (the ``psd2_daily``
  points; the hourly timer writes two days, not 90);
* ``daily``: this tree's report from those points.

For each it prints the wall time, the CPU time and peak memory of the report process
(from its own rusage) and the CPU time ``influxd`` spent answering: on a shared machine
the wall time follows the load, the CPU figures much less.
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.servers import InfluxDBServer

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("login", "accounts", "transfer", "payments", "cards")
NS = 1_000_000_000
DB = "bench"


def day_lines(day: date, sites: int, steps: int) -> list[str]:
    """One day of runs: every minute, every check of every site (offset by its index)."""
    start = int(datetime.combine(day, datetime.min.time(), tzinfo=UTC).timestamp())
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
                lines.append(
                    f"check{prefix},outcome={outcome},site={site} success={ok}i,duration_ms={40.5 + minute % 17}"
                    f',failed_step="{"call" if down else ""}",error={error},steps={steps}i {ns}'
                )
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


def write_days(url: str, first: date, days: int, sites: int, steps: int) -> int:
    """Write every day of the benchmark; how many points."""
    points = 0
    for d in range(days):
        lines = day_lines(first + timedelta(days=d), sites, steps)
        write(url, lines)
        points += len(lines)
    return points


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Timing:
    """One run of ``prober report``."""

    name: str
    command: list[str]
    wall: float
    cpu: float
    rss_mb: float
    influxd_cpu: float
    output_bytes: int


def timed(name: str, command: list[str], cwd: Path, influxd_pid: int, out: Path) -> Timing:
    """Run ``command`` (its stdout into ``out``) and measure it and influxd meanwhile."""
    influxd_before = process_cpu(influxd_pid)
    began = time.monotonic()
    with open(out, "wb") as sink, open(out.with_suffix(".err"), "wb") as errors:
        proc = subprocess.Popen(command, cwd=cwd, stdout=sink, stderr=errors)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - began
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{name} failed: {out.with_suffix('.err').read_text()[-2000:]}")
    return Timing(name, command, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                  process_cpu(influxd_pid) - influxd_before, out.stat().st_size)


def export(rev: str, into: Path) -> Path:
    """The tree of ``rev`` (``git archive``) in ``into``."""
    into.mkdir()
    archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--first", type=date.fromisoformat, default=date(2026, 1, 1))
    parser.add_argument("--format", default="json", choices=["table", "csv", "json", "html"])
    parser.add_argument("--baseline-rev", default="main", help='git revision of today\'s approach ("" to skip)')
    args = parser.parse_args()
    last = args.first + timedelta(days=args.days - 1)
    print("command: python benchmarks/report.py " + " ".join(sys.argv[1:]))
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        work = Path(tmp)
        baseline = export(args.baseline_rev, work / "baseline") if args.baseline_rev else None
        server = InfluxDBServer(work / "influxd")
        server.start()
        try:
            server.create_database(DB)
            began = time.monotonic()
            # Written from a child process: the reports below are children of this one,
            # and a child's peak memory counts from its parent's size when it forked.
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                points = pool.submit(write_days, server.url, args.first, args.days, args.sites, args.steps).result()
            wrote = time.monotonic() - began
            checks = server.count(DB, "check")
            print(f"wrote {points:,} points ({checks:,} check points, {args.sites * len(KINDS)} checks, "
                  f"{args.days} days) in {wrote:.1f} s")
            config = work / "prober.toml"
            config.write_text(f'[influxdb]\nurl = "{server.url}"\napi = "v1"\ndatabase = "{DB}"\n')
            assert server.proc is not None
            pid = server.proc.pid
            time.sleep(65)  # let influxd snapshot its cache to TSM files, as for data written over a quarter
            report = [sys.executable, "-m", "prober", "report", "-c", str(config), "--from", str(args.first),
                      "--to", str(last)]
            shown = [*report, "--format", args.format]
            runs: list[Timing] = []
            if baseline is not None:
                runs.append(timed(f"baseline ({args.baseline_rev})", shown, baseline, pid, work / "baseline.out"))
            runs.append(timed("recompute", [*shown, "--recompute"], ROOT, pid, work / "recompute.out"))
            runs.append(timed("write", [*report, "--write"], ROOT, pid, work / "write.out"))
            runs.append(timed("daily", shown, ROOT, pid, work / "daily.out"))
            print(f"{'run':<16} {'wall s':>8} {'CPU s':>7} {'RSS MB':>7} {'influxd CPU s':>14} {'bytes':>11}  command")
            for run in runs:
                command = " ".join(c if "/" not in c else Path(c).name for c in run.command[1:])
                print(f"{run.name:<16} {run.wall:8.2f} {run.cpu:7.2f} {run.rss_mb:7.0f} {run.influxd_cpu:14.2f} "
                      f"{run.output_bytes:11,}  python {command}")
            print(f"load average {os.getloadavg()[0]:.1f}; {checks / runs[-3].wall:,.0f} check points per second "
                  "of wall time (recompute)")
        finally:
            server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
