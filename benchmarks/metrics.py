"""``/metrics`` under a real Prometheus: CPU per scrape, schedule lag, sizes, capacity.

    .venv/bin/python benchmarks/metrics.py                       # 1,000 checks, about 4 minutes
    .venv/bin/python benchmarks/metrics.py --checks 2000 --window 60

What runs (every server on a free loopback port, every file in a temporary directory):
nginx and ``benchmarks/sidecar.py`` as in ``benchmarks/daemon.py`` (the 3-step journey's
target, and the InfluxDB the daemon writes to, which keeps its per-second schedule lag
self-reports); ``prober run`` with ``--checks`` checks of that journey every
``--interval`` seconds; Debian's ``prometheus`` (installed with apt-get when missing)
scraping its ``/metrics`` every ``--scrape-interval`` seconds.

What it prints, each line with the command above it:

1. **Without scrapes**, one window: the prober's CPU (``/proc``, in cores), runs and
   points per second, schedule lag p99 (median and worst of the per-second p99s the
   daemon reports, and the p99 of its last 10,000 runs on ``/status``), RSS.
2. **CPU per scrape**: ``--scrapes`` scrapes back to back (one at a time, as Prometheus
   does), the prober's CPU over them minus what it spends probing in the same time
   (the rate of window 1), divided by the scrapes; the body's size and samples.
3. **With Prometheus scraping**, the same window again: CPU, lag, and Prometheus's own
   ``scrape_duration_seconds`` and ``scrape_samples_scraped`` of the target.
4. **Sizes for capacity planning**: series per 1,000 checks in Prometheus; bytes per
   sample from a TSDB snapshot of what Prometheus stored (its head block written as a
   block: compressed chunks, index), hence Prometheus storage per check per day at the
   scrape interval; checks per core from the CPU per run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.daemon import (  # noqa: E402
    STEPS_PER_JOURNEY, Daemons, ensure_debian, get_json, pct, proc_cpu, proc_rss_kb, start_servers, write_config,
)
from benchmarks.support import free_port, wait_http  # noqa: E402


def scrape(url: str) -> bytes:
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        return response.read()


def promql(prometheus: str, query: str) -> list[dict]:
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())["data"]["result"]


def prometheus_own(url: str, name: str) -> float:
    """The sum of a metric of Prometheus's own /metrics (it does not scrape itself here)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and line[len(name)] in " {")


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class Window:
    """The prober's CPU, runs, points and lag over ``seconds``."""

    def __init__(self, daemons: Daemons, health: str, seconds: float) -> None:
        pids = daemons.pids()
        daemons.servers.forget("lags")
        before = get_json(f"{health}/status")
        cpu0 = sum(proc_cpu(pid) for pid in pids)
        started = time.monotonic()
        time.sleep(seconds)
        self.cpu_s = sum(proc_cpu(pid) for pid in pids) - cpu0
        self.seconds = time.monotonic() - started
        after = get_json(f"{health}/status")
        self.runs = after["scheduler"]["runs"] - before["scheduler"]["runs"]
        self.points = after["writer"]["written_points"] - before["writer"]["written_points"]
        self.missed = after["scheduler"]["missed"] - before["scheduler"]["missed"]
        self.status_p99 = after["scheduler"]["schedule_lag_ms"]["p99"]
        lags = daemons.servers.figures("lags")
        self.lag_p99_median = pct(lags, 50)
        self.lag_p99_worst = max(lags, default=float("nan"))
        self.rss_kb = sum(proc_rss_kb(pid) for pid in pids)

    @property
    def cores(self) -> float:
        return self.cpu_s / self.seconds

    def describe(self) -> str:
        return (f"CPU {self.cores * 100:.1f}% of a core, {self.runs / self.seconds:.0f} runs/s, "
                f"{self.points / self.seconds:.0f} points/s written, schedule lag p99 "
                f"{self.lag_p99_median:.1f} ms (median of the per-second p99s; worst second {self.lag_p99_worst:.1f} ms; "
                f"last 10,000 runs {self.status_p99:.1f} ms), missed runs {self.missed}, RSS {self.rss_kb / 1024:.0f} MB")


def start_prometheus(tmp: Path, target: str, interval: float) -> tuple[subprocess.Popen, str]:
    binary = ensure_debian("prometheus", "prometheus")
    port = free_port()
    (tmp / "prometheus.yml").write_text(
        f"global:\n  scrape_interval: {interval:g}s\n  scrape_timeout: {interval:g}s\n"
        f"scrape_configs:\n  - job_name: bank-prober\n    static_configs:\n      - targets: ['{target}']\n")
    proc = subprocess.Popen([binary, f"--config.file={tmp / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp / 'prometheus-data'}", f"--web.listen-address=127.0.0.1:{port}",
                             "--web.enable-admin-api", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/-/ready", timeout=30)
    return proc, url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between runs of each check")
    parser.add_argument("--window", type=float, default=60.0, help="seconds per measured window")
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--scrapes", type=int, default=30, help="back-to-back scrapes for the CPU per scrape")
    parser.add_argument("--scrape-interval", type=float, default=5.0)
    args = parser.parse_args()
    print(f"# command: python benchmarks/{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}".rstrip())
    print(f"# python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    print(f"# prober run: {args.checks} checks of a {STEPS_PER_JOURNEY}-step journey every {args.interval:g}s "
          f"({args.checks * STEPS_PER_JOURNEY / args.interval:,.0f} steps/s), one process")
    summary: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmpdir:
        tmp = Path(tmpdir)
        os.chmod(tmp, 0o755)
        servers = start_servers(tmp, 20.0)
        prometheus = None
        try:
            config = write_config(servers, "metrics", args.checks, args.interval)
            health = f"http://127.0.0.1:{config[1]}"
            with Daemons(servers, "metrics", [config]) as daemons:
                time.sleep(args.warmup)
                (pid,) = daemons.pids()

                print("\n## 1. Without scrapes")
                quiet = Window(daemons, health, args.window)
                print(quiet.describe(), flush=True)

                print(f"\n## 2. CPU per scrape: {args.scrapes} scrapes of /metrics back to back")
                sizes = []
                cpu0, t0 = proc_cpu(pid), time.monotonic()
                for _ in range(args.scrapes):
                    sizes.append(len(scrape(health)))
                elapsed = time.monotonic() - t0
                spent = proc_cpu(pid) - cpu0 - quiet.cores * elapsed
                per_scrape_ms = spent * 1000 / args.scrapes
                body = scrape(health).decode()
                samples = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
                print(f"{per_scrape_ms:.1f} ms of the prober's CPU per scrape (over probing), "
                      f"{elapsed * 1000 / args.scrapes:.1f} ms wall per scrape, {sum(sizes) / len(sizes) / 1024:.0f} KiB, "
                      f"{samples:,} samples", flush=True)
                summary.append(f"CPU per scrape at {args.checks} checks: {per_scrape_ms:.1f} ms (target <= 100 ms); "
                               f"{samples:,} samples, {sizes[-1] / 1024:.0f} KiB uncompressed")

                print(f"\n## 3. With Prometheus scraping every {args.scrape_interval:g}s")
                prometheus, prom_url = start_prometheus(tmp, f"127.0.0.1:{config[1]}", args.scrape_interval)
                time.sleep(2 * args.scrape_interval)
                scraped = Window(daemons, health, args.window)
                print(scraped.describe())
                duration = promql(prom_url, 'avg_over_time(scrape_duration_seconds{job="bank-prober"}[5m])')
                scraped_samples = promql(prom_url, 'scrape_samples_scraped{job="bank-prober"}')
                series = promql(prom_url, 'count({job="bank-prober"})')
                series_n = float(series[0]["value"][1]) if series else float("nan")
                print(f"Prometheus: scrape duration {float(duration[0]['value'][1]) * 1000:.0f} ms on average, "
                      f"{float(scraped_samples[0]['value'][1]):,.0f} samples per scrape, {series_n:,.0f} series", flush=True)
                scrapes_in_window = args.window / args.scrape_interval
                extra = (scraped.cpu_s - quiet.cores * scraped.seconds) * 1000 / scrapes_in_window
                summary.append(f"schedule lag p99 at {args.checks} checks: {quiet.lag_p99_median:.1f} ms without scrapes, "
                               f"{scraped.lag_p99_median:.1f} ms with Prometheus scraping every {args.scrape_interval:g}s "
                               f"(worst second {scraped.lag_p99_worst:.1f} ms; last 10,000 runs {scraped.status_p99:.1f} ms; "
                               f"target <= 20 ms); CPU {quiet.cores * 100:.1f}% -> {scraped.cores * 100:.1f}% of a core "
                               f"(~{extra:.0f} ms per scrape by difference of two noisy windows)")

                print("\n## 4. Sizes for capacity planning")
                request = urllib.request.Request(f"{prom_url}/api/v1/admin/tsdb/snapshot", method="POST")
                with urllib.request.urlopen(request, timeout=60) as response:
                    name = json.loads(response.read())["data"]["name"]
                snapshot = tmp / "prometheus-data" / "snapshots" / name
                appended = prometheus_own(prom_url, "prometheus_tsdb_head_samples_appended_total")
                chunks = sum(dir_bytes(d) for d in snapshot.rglob("chunks") if d.is_dir())
                index = sum(f.stat().st_size for f in snapshot.rglob("index"))
                per_sample = chunks / appended
                per_series_block = index / series_n
                per_check = series_n / args.checks
                # A day: 86,400 / scrape interval samples per series in chunks, and the
                # series in the index of each of the day's twelve 2-hour blocks.
                day = per_check * (86400 / args.scrape_interval * per_sample + 12 * per_series_block)
                print(f"Prometheus TSDB snapshot: chunks {chunks / 1024:.0f} KiB for {appended:,.0f} samples = "
                      f"{per_sample:.2f} bytes/sample; index {index / 1024:.0f} KiB = {per_series_block:.0f} bytes per "
                      f"series and block (a few minutes of data: chunks not yet full, so bytes/sample is high)")
                cpu_per_run = quiet.cpu_s / max(quiet.runs, 1) * 1000
                summary.append(f"per 1,000 checks: {series_n / args.checks * 1000:,.0f} Prometheus series "
                               f"({per_check:.1f} per check); Prometheus storage {day / 1024:.0f} KiB per check per day "
                               f"at a {args.scrape_interval:g}s scrape ({per_sample:.2f} bytes/sample in chunks, "
                               f"{per_series_block:.0f} bytes per series per 2-hour block in the index)")
                summary.append(f"CPU per run of the {STEPS_PER_JOURNEY}-step journey: {cpu_per_run:.2f} ms, so one core "
                               f"runs about {60_000 / cpu_per_run * 0.7:,.0f} such checks every 60 s at 70% "
                               f"(RSS {quiet.rss_kb / 1024:.0f} MB with {args.checks} checks)")
        finally:
            if prometheus is not None:
                prometheus.terminate()
                prometheus.wait(30)
            servers.close()
    print(f"\n## Summary (load average {os.getloadavg()[0]:.2f} at the end)")
    for line in summary:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
