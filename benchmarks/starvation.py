"""Starvation benchmark: healthy banks' schedule while other banks hang.

Command::

    python benchmarks/starvation.py                    # 1,000 checks, 500 of them hang
    python benchmarks/starvation.py --checks 1000 --sites 10 --seconds 30 --interval 5

Two simulated banks run in **separate processes** (``prober bank`` on free loopback
ports): one healthy, one whose ``login`` capability hangs (it never answers). Half of
the sites point at the hanging bank, half at the healthy one, the checks divided evenly
among them; each check is one ``POST /oauth/token`` step, every ``--interval`` seconds,
with a journey timeout of half the interval, so a hanging check holds its slot half of
the time. The daemon (:class:`ProberService`, the writer serializing into a sink that
discards) runs in this process with the ``[daemon]`` defaults (``--max-concurrency``
sets the cap, as a user would).

After a warm-up of one interval plus 2 s, over ``--seconds``, it prints for the healthy
checks: runs made against runs due, schedule lag p50/p99/max (start of the journey −
its planned time, jitter included), runs skipped, runs failed; for the hanging checks,
runs made and skipped; the garbage collector's pauses (count, longest and total wall
time, CPU time, longest per generation) and the prober's CPU. ``--gc-threshold 700``
and ``--no-freeze`` undo what :mod:`prober.daemon.heap` does, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scheduler import NullSink
from benchmarks.support import start_bank
from prober import eventloop
from prober.daemon.scheduler import percentile
from prober.daemon.service import ProberService
from prober.journey.plan import JourneyPlan
from prober.loading import load
from prober.results import JourneyResult, Outcome
from prober.writer.writer import ResultWriter

CHECK = """
[[sites.checks]]
name = "login-{i}"
kind = "login"
interval = "{interval_ms}ms"
timeout = "{timeout_ms}ms"

  [[sites.checks.steps]]
  name = "token"
  method = "POST"
  path = "/oauth/token"
  form = {{ grant_type = "password", username = "alice", password = "{{{{ password }}}}" }}
  status = 200
"""


class Tally:
    """Result consumer: executed, skipped and failed runs per kind of site."""

    def __init__(self, hanging: set[str]) -> None:
        self.hanging = hanging
        self.counts: Counter[tuple[bool, str]] = Counter()
        self.skip_reasons: Counter[str] = Counter()
        self.fail_reasons: Counter[str] = Counter()

    def consume(self, result: JourneyResult) -> None:
        side = result.site in self.hanging
        if result.outcome is Outcome.SKIPPED:
            self.counts[side, "skipped"] += 1
            if not side:
                self.skip_reasons[result.error] += 1
        else:
            self.counts[side, "runs"] += 1
            if not result.success:
                self.counts[side, "failed"] += 1
                if not side:
                    self.fail_reasons[f"{result.outcome.value}: {result.error}"] += 1

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class GcPauses:
    """Wall time of every garbage collection, from :data:`gc.callbacks`."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self.by_generation: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.cpu = 0.0
        self._started = self._cpu_started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started, self._cpu_started = time.perf_counter(), time.thread_time()
        else:
            pause = (time.perf_counter() - self._started) * 1000.0
            cpu = (time.thread_time() - self._cpu_started) * 1000.0
            self.cpu += cpu
            self.pauses.append(pause)
            self.by_generation[info["generation"]].append(cpu)

    def summary(self) -> str:
        return ", ".join(f"gen{g} {len(p)}x, longest {max(p, default=0.0):.1f} ms of CPU"
                         for g, p in self.by_generation.items())


def hang_login(bank_url: str) -> None:
    request = urllib.request.Request(f"{bank_url}/admin/faults/login", data=json.dumps({"mode": "hang"}).encode(),
                                     method="PUT", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()


def config_text(healthy: str, hanging: str, checks: int, sites: int, interval: float, cap: int | None,
                workdir: Path) -> tuple[str, set[str]]:
    daemon = f'[daemon]\nhealth_listen = ""\nself_report_interval = "5s"\nstate_dir = "{workdir / "state"}"\n'
    if cap is not None:
        daemon += f"max_concurrency = {cap}\n"
    parts, hanging_sites = [daemon], set()
    per_site = checks // sites
    for s in range(sites):
        hangs = s % 2 == 1
        name = f"{'stuck' if hangs else 'bank'}-{s}"
        if hangs:
            hanging_sites.add(name)
        parts.append(f'[[sites]]\nname = "{name}"\nbase_url = "{hanging if hangs else healthy}"\ntimeout = "5s"\n'
                     '[sites.secrets]\npassword = "s3cret-pw"\n')
        ms = int(interval * 1000)
        parts += [CHECK.format(i=i, interval_ms=ms, timeout_ms=ms // 2) for i in range(per_site)]
    return "\n".join(parts), hanging_sites


async def measure(args: argparse.Namespace, healthy: str, hanging: str, workdir: Path) -> None:
    text, hanging_sites = config_text(healthy, hanging, args.checks, args.sites, args.interval,
                                      args.max_concurrency, workdir)
    path = workdir / "starvation.toml"
    path.write_text(text)
    tally = Tally(hanging_sites)
    writer = ResultWriter(None, sink=NullSink(), spool_dir=workdir / "spool")
    service = ProberService(load(path), writer=writer, consumers=[tally])
    lags: list[float] = []
    measuring = False

    def on_start(plan: JourneyPlan, lag: float) -> None:
        if measuring and plan.site not in hanging_sites:
            lags.append(lag)

    service.scheduler.on_start = on_start
    pauses = GcPauses()
    await service.start()
    if args.gc_threshold is not None:  # what the service chose, for comparison
        gc.set_threshold(args.gc_threshold, *gc.get_threshold()[1:])
    if args.no_freeze:
        gc.unfreeze()
    await asyncio.sleep(args.interval + 2.0)
    gc.callbacks.append(pauses)
    before = Counter(tally.counts)
    measuring = True
    cpu0 = time.process_time()
    await asyncio.sleep(args.seconds)
    cpu = time.process_time() - cpu0
    measuring = False
    after = Counter(tally.counts)
    gc.callbacks.remove(pauses)
    await service.stop(grace=args.interval)
    got = after - before
    healthy_checks = args.checks // args.sites * (args.sites - len(hanging_sites))
    due = healthy_checks * args.seconds / args.interval
    print(f"sites {args.sites} ({len(hanging_sites)} hanging), checks {args.checks} "
          f"({args.checks - healthy_checks} hanging), interval {args.interval:g}s, timeout {args.interval / 2:g}s, "
          f"max_concurrency {service.scheduler.max_concurrency} "
          f"({'set' if args.max_concurrency else 'sized from the config'}), measured {args.seconds:g}s")
    print(f"healthy checks: runs {got[False, 'runs']} of ~{due:.0f} due, skipped {got[False, 'skipped']}, "
          f"failed {got[False, 'failed']}")
    print(f"healthy lag: p50 {percentile(lags, 50):.2f} ms, p99 {percentile(lags, 99):.2f} ms, "
          f"max {max(lags, default=0.0):.1f} ms (over {len(lags)} runs)")
    print(f"hanging checks: runs {got[True, 'runs']}, skipped {got[True, 'skipped']}")
    print(f"gc pauses: {len(pauses.pauses)}, longest {max(pauses.pauses, default=0.0):.1f} ms, "
          f"total {sum(pauses.pauses):.0f} ms, {pauses.cpu:.0f} ms of CPU ({pauses.summary()}); "
          f"prober CPU {cpu / args.seconds * 100:.0f}% of one core")
    for reason, count in tally.skip_reasons.most_common(3):
        print(f"  healthy skipped x{count}: {reason}")
    for reason, count in tally.fail_reasons.most_common(3):
        print(f"  healthy failed x{count}: {reason}")


def main() -> int:
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000, help="checks in all (default 1000)")
    parser.add_argument("--sites", type=int, default=10, help="sites, every other one hanging (default 10)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between runs of a check (default 5)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement window (default 30)")
    parser.add_argument("--max-concurrency", type=int, default=None, help="[daemon] max_concurrency (default unset)")
    parser.add_argument("--gc-threshold", type=int, default=None,
                        help="youngest generation's threshold instead of the service's (CPython's default: 700)")
    parser.add_argument("--no-freeze", action="store_true", help="give the frozen heap back to the collector")
    args = parser.parse_args()
    print(f"command: {' '.join([os.path.relpath(sys.argv[0], os.getcwd()), *sys.argv[1:]])}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; banks in separate processes")
    healthy_bank, healthy = start_bank()
    hanging_bank, hanging = start_bank()
    try:
        hang_login(hanging)
        with tempfile.TemporaryDirectory() as tmp:
            eventloop.run(measure(args, healthy, hanging, Path(tmp)))
    finally:
        for bank in (healthy_bank, hanging_bank):
            bank.terminate()
            bank.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
