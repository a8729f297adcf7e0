"""``/metrics`` under a real Prometheus: CPU per scrape, schedule lag, sizes, capacity.

    .venv/bin/python benchmarks/metrics.py                       # 1,000 checks, about 6 minutes
    .venv/bin/python benchmarks/metrics.py --checks 2000 --window 60

What runs (every server on a free loopback port, every file in a temporary directory):
nginx and ``benchmarks/sidecar.py`` as in ``benchmarks/daemon.py`` (the 3-step journey's
target, and the InfluxDB the daemon writes to, which keeps its per-second schedule lag
self-reports); ``prober run`` with ``--checks`` checks of that journey every
``--interval`` seconds; Debian's ``prometheus`` (installed with apt-get when missing)
scraping its ``/metrics`` every ``--scrape-interval`` seconds.

What it prints, each line with the command above it:

1. ``--rounds`` rounds of a window without scrapes, then one with Prometheus scraping
   (started for it, its start-up left out of the window): the prober's CPU (``/proc``),
   runs and points per second, and the schedule lag: the share of the window's runs
   that started more than 20 ms late (from the ``bank_prober_schedule_lag_seconds``
   histogram before and after: p99 <= 20 ms means at most 1 %), and the median and worst
   of the per-second p99s the daemon reports; Prometheus's own ``scrape_duration_seconds``
   and ``scrape_samples_scraped``.
2. **Sizes for capacity planning**: series per 1,000 checks in Prometheus; bytes per
   sample in the chunks and bytes per series in the index, from a TSDB snapshot of what
   Prometheus stored (its head block written as a block), hence Prometheus storage per
   check per day at the scrape interval; CPU per run and checks per core.
3. **CPU per scrape**: Prometheus stopped, ``--scrapes`` scrapes back to back (one at a
   time, as Prometheus does); the prober's CPU over them minus what it spends probing in
   the same time (measured just before), divided by the scrapes; the page's size and
   samples.
4. **The page written in this process** over a snapshot of as many checks: the CPU of
   a render and the longest CPU stretch between two turns of the event loop (what a
   scrape can delay a run by), independent of the machine's load.
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
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.daemon import (
    STEPS_PER_JOURNEY,
    Daemons,
    ensure_debian,
    get_json,
    pct,
    proc_cpu,
    proc_rss_kb,
    start_servers,
    write_config,
)
from benchmarks.support import free_port, wait_http
from prober.daemon.metrics import SLICE


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


def lag_counts(health: str) -> tuple[float, float]:
    """(runs started, runs whose schedule lag was at most 20 ms) so far, from /metrics."""
    text = scrape(health).decode()
    total = within = 0.0
    for line in text.splitlines():
        if line.startswith("bank_prober_schedule_lag_seconds_count"):
            total = float(line.rsplit(" ", 1)[1])
        elif line.startswith('bank_prober_schedule_lag_seconds_bucket{le="0.02"}'):
            within = float(line.rsplit(" ", 1)[1])
    return total, within


class Window:
    """The prober's CPU, runs, points and lag over ``seconds``."""

    def __init__(self, daemons: Daemons, health: str, seconds: float) -> None:
        pids = daemons.pids()
        daemons.servers.forget("lags")
        before = get_json(f"{health}/status")
        lag_before = lag_counts(health)
        cpu0 = sum(proc_cpu(pid) for pid in pids)
        started = time.monotonic()
        time.sleep(seconds)
        self.cpu_s = sum(proc_cpu(pid) for pid in pids) - cpu0
        self.seconds = time.monotonic() - started
        lag_after = lag_counts(health)
        after = get_json(f"{health}/status")
        self.runs = after["scheduler"]["runs"] - before["scheduler"]["runs"]
        self.points = after["writer"]["written_points"] - before["writer"]["written_points"]
        self.missed = after["scheduler"]["missed"] - before["scheduler"]["missed"]
        started_runs = lag_after[0] - lag_before[0]
        self.late_share = 1 - (lag_after[1] - lag_before[1]) / started_runs if started_runs else float("nan")
        """The share of the window's runs that started more than 20 ms late (p99 <= 20 ms: at most 1 %)."""
        lags = daemons.servers.figures("lags")
        self.lag_p99_median = pct(lags, 50)
        self.lag_p99_worst = max(lags, default=float("nan"))
        self.rss_kb = sum(proc_rss_kb(pid) for pid in pids)

    @property
    def cores(self) -> float:
        return self.cpu_s / self.seconds

    def describe(self) -> str:
        return (f"CPU {self.cores * 100:.1f}% of a core, {self.runs / self.seconds:.0f} runs/s, "
                f"{self.points / self.seconds:.0f} points/s written; schedule lag: {self.late_share * 100:.2f} % of "
                f"the runs over 20 ms, p99 {self.lag_p99_median:.1f} ms (median of the per-second p99s; worst second "
                f"{self.lag_p99_worst:.1f} ms); missed runs {self.missed}, RSS {self.rss_kb / 1024:.0f} MB")


def loop_holds(checks: int, renders: int = 5) -> tuple[float, float]:
    """In this process, the real :class:`~prober.daemon.metrics.Exposition` over a
    snapshot of ``checks`` checks (3-step results, one site per 10 checks): the CPU of a
    render, and the longest CPU stretch between two turns of the event loop during it
    (what a scrape can delay a run by, whatever the machine's load), in ms; the best of
    ``renders`` after one to fill the label cache."""
    import asyncio

    from prober.daemon import metrics
    from prober.daemon.histogram import JOURNEY_BUCKETS, LAG_BUCKETS, Histogram
    from prober.results import JourneyResult, Outcome, Phases, StepResult

    steps = tuple(StepResult(name, Outcome.OK, 10.0, Phases(1.0, 2.0, 0.0, 6.0, 1.0)) for name in ("a", "b", "c"))
    rows = []
    for i in range(checks):
        result = JourneyResult(f"bank-{i // 10:04d}", f"accounts-{i}", "accounts", "bench", Outcome.OK,
                               time.time_ns(), 30.0, steps)
        counts = (5,) + (0,) * (len(metrics.OUTCOMES) - 1)
        rows.append(metrics._CheckRow((result.site, result.check, "accounts", "bench"), 10.0, counts, result, 0))
    snapshot = metrics.Snapshot(
        info={"prober_instance": "bench", "location": "bench", "version": "bench"}, scheduling=True, checks=rows,
        durations=[((f"bank-{i:04d}", "accounts", "bench"), Histogram(JOURNEY_BUCKETS)) for i in range(checks // 10)],
        capabilities=[(f"bank-{i:04d}", "accounts", "ok", 0) for i in range(checks // 10)], lockout=[],
        scheduler=dict.fromkeys(("checks", "running", "max_concurrency", "started", "missed", "overlap", "slot_wait",
                                 "lockout"), 0),
        lag=Histogram(LAG_BUCKETS),
        writer=dict.fromkeys(("written", "dropped", "errors", "spooled", "queued", "healthy"), 0.0),
        notifications={}, config={"reloads": 0, "ok": 1.0, "loaded_at": 0.0})
    exposition = metrics.Exposition()
    turns: list[float] = []
    real_sleep = asyncio.sleep

    async def turn(delay: float) -> None:
        turns.append(time.process_time())
        await real_sleep(delay)

    async def measure() -> tuple[float, float]:
        await exposition.render(snapshot)
        best_cpu = best_hold = float("inf")
        metrics.asyncio.sleep = turn  # type: ignore[assignment]  # counts the event loop's turns
        try:
            for _ in range(renders):
                turns.clear()
                turns.append(time.process_time())
                await exposition.render(snapshot)
                turns.append(time.process_time())
                best_cpu = min(best_cpu, turns[-1] - turns[0])
                best_hold = min(best_hold, max(b - a for a, b in pairwise(turns)))
        finally:
            metrics.asyncio.sleep = real_sleep  # restored
        return best_cpu * 1000, best_hold * 1000

    return asyncio.run(measure())


def start_prometheus(tmp: Path, data: Path, target: str, interval: float) -> tuple[subprocess.Popen, str]:
    binary = ensure_debian("prometheus", "prometheus")
    port = free_port()
    (tmp / "prometheus.yml").write_text(
        f"global:\n  scrape_interval: {interval:g}s\n  scrape_timeout: {interval:g}s\n"
        f"scrape_configs:\n  - job_name: bank-prober\n    static_configs:\n      - targets: ['{target}']\n")
    proc = subprocess.Popen([binary, f"--config.file={tmp / 'prometheus.yml'}",
                             f"--storage.tsdb.path={data}", f"--web.listen-address=127.0.0.1:{port}",
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
    parser.add_argument("--rounds", type=int, default=2, help="rounds of a window without and one with scrapes")
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

                print(f"\n## 1. Rounds of a window without scrapes, then one with Prometheus scraping every "
                      f"{args.scrape_interval:g}s ({args.window:g}s each)")
                quiet_windows: list[Window] = []
                scraped_windows: list[Window] = []
                for r in range(args.rounds):
                    if prometheus is not None:
                        prometheus.terminate()
                        prometheus.wait(30)
                        prometheus = None
                        time.sleep(args.scrape_interval)
                    quiet_windows.append(Window(daemons, health, args.window))
                    print(f"round {r + 1} without scrapes: {quiet_windows[-1].describe()}", flush=True)
                    data = tmp / f"prometheus-data-{r + 1}"  # a fresh TSDB: its sample count is this round's
                    prometheus, prom_url = start_prometheus(tmp, data, f"127.0.0.1:{config[1]}", args.scrape_interval)
                    time.sleep(2 * args.scrape_interval)  # Prometheus's own start-up, out of the window
                    scraped_windows.append(Window(daemons, health, args.window))
                    print(f"round {r + 1} with Prometheus:  {scraped_windows[-1].describe()}", flush=True)
                duration = promql(prom_url, 'avg_over_time(scrape_duration_seconds{job="bank-prober"}[1m])')
                scraped_samples = promql(prom_url, 'scrape_samples_scraped{job="bank-prober"}')
                series = promql(prom_url, 'count({job="bank-prober"})')
                series_n = float(series[0]["value"][1]) if series else float("nan")
                print(f"Prometheus: scrape duration {float(duration[0]['value'][1]) * 1000:.0f} ms on average (wall, "
                      f"the page written in slices between runs), {float(scraped_samples[0]['value'][1]):,.0f} samples "
                      f"per scrape, {series_n:,.0f} series", flush=True)
                quiet = quiet_windows[0]

                def lag_line(windows: list[Window]) -> str:
                    return ", ".join(f"{w.late_share * 100:.2f} % over 20 ms (p99 {w.lag_p99_median:.1f} ms, worst "
                                     f"second {w.lag_p99_worst:.1f} ms)" for w in windows)

                summary.append(f"schedule lag at {args.checks} checks, per round: "
                               f"without scrapes {lag_line(quiet_windows)}; "
                               f"with Prometheus scraping every {args.scrape_interval:g}s {lag_line(scraped_windows)} "
                               f"(target: p99 <= 20 ms, i.e. at most 1 % of the runs over 20 ms)")

                print("\n## 2. Sizes for capacity planning")
                request = urllib.request.Request(f"{prom_url}/api/v1/admin/tsdb/snapshot", method="POST")
                with urllib.request.urlopen(request, timeout=60) as response:
                    name = json.loads(response.read())["data"]["name"]
                snapshot = data / "snapshots" / name
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
                               f"({per_check:.1f} per check); "
                               f"Prometheus storage {day / 1024:.0f} KiB per check per day "
                               f"at a {args.scrape_interval:g}s scrape ({per_sample:.2f} bytes/sample in chunks, "
                               f"{per_series_block:.0f} bytes per series per 2-hour block in the index)")
                summary.append(f"CPU per run of the {STEPS_PER_JOURNEY}-step journey: {cpu_per_run:.2f} ms, "
                               f"so one core "
                               f"runs about {60_000 / cpu_per_run * 0.7:,.0f} such checks every 60 s at 70% "
                               f"(RSS {quiet.rss_kb / 1024:.0f} MB with {args.checks} checks)")
                print(f"\n## 3. CPU per scrape: {args.scrapes} scrapes of /metrics back to back (Prometheus stopped)")
                assert prometheus is not None  # the last round's
                prometheus.terminate()
                prometheus.wait(30)
                prometheus = None
                time.sleep(args.scrape_interval)
                rate = Window(daemons, health, min(args.window, 20.0)).cores
                sizes = []
                cpu0, t0 = proc_cpu(pid), time.monotonic()
                for _ in range(args.scrapes):
                    sizes.append(len(scrape(health)))
                elapsed = time.monotonic() - t0
                spent = proc_cpu(pid) - cpu0 - rate * elapsed
                per_scrape_ms = spent * 1000 / args.scrapes
                body = scrape(health).decode()
                samples = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
                print(f"{per_scrape_ms:.1f} ms of the prober's CPU per scrape "
                      f"(over probing at {rate * 100:.1f}% of a core), "
                      f"{elapsed * 1000 / args.scrapes:.1f} ms wall per scrape, "
                      f"{sum(sizes) / len(sizes) / 1024:.0f} KiB, "
                      f"{samples:,} samples", flush=True)
                summary.insert(0, f"CPU per scrape at {args.checks} checks: {per_scrape_ms:.1f} ms (target <= 100 ms); "
                                  f"{samples:,} samples, {sizes[-1] / 1024:.0f} KiB uncompressed")
                print(f"\n## 4. The page written in this process, {args.checks} checks "
                      "(CPU time, so the machine's load does not count)")
                render_ms, hold_ms = loop_holds(args.checks)
                print(f"render {render_ms:.1f} ms of CPU; longest stretch between two turns of the event loop "
                      f"{hold_ms:.1f} ms", flush=True)
                summary.insert(1, f"a scrape holds the event loop at most {hold_ms:.1f} ms at a time (render "
                                  f"{render_ms:.1f} ms of CPU in slices of {SLICE} checks): "
                                  "a run due meanwhile starts at most that late")
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
