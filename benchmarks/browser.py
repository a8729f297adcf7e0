"""What browser checks cost, and that API checks do not suffer from them.

    .venv/bin/python benchmarks/browser.py [--runs 40] [--soak 1000] [--lag-window 30]

Against the simulated bank (in its own process), the ``web-accounts`` journey of the
embedded default (login page, credentials, sign in, rendered balances), in one run:

1. **CPU per journey**, the prober's browser runner (tracing, page figures, evidence
   bookkeeping included) next to a plain Playwright script doing the same journey with
   the same browser reused (a fresh context each time, nothing else): CPU of this process
   plus the browser process, Playwright's driver and Chromium's processes, per journey, and their ratio (goal:
   at most 1.2); journeys per minute a core sustains.
2. **Memory per concurrent journey**: Chromium's resident memory (every process of it)
   with 1, 2 and 4 journeys running at once, and what each added journey costs.
3. **API checks beside browser checks**: the schedule lag p50/p99 of 1,000 API checks
   (the ``login`` journey, every 10 s) in one scheduler, alone and while browser journeys
   run at full concurrency in the same scheduler (goal: p99 at most 20 ms, as without).
4. **Soak**: ``--soak`` browser journeys in a row, the resident memory of this process, of
   the browser process and of Chromium every tenth of the way (it must not grow).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import resource
import sys
import time
from collections.abc import Awaitable, Hashable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.support import start_bank
from prober.daemon.scheduler import JourneyScheduler, percentile
from prober.defaults import default_config
from prober.journey.browser.engine import CHROMIUM_ARGS
from prober.journey.dispatch import JourneyRunner
from prober.journey.plan import JourneyPlan
from prober.loading import load

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree() -> list[int]:
    """This process and every process descending from it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [os.getpid()]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _stat(pid: int) -> tuple[float, int, str]:
    """CPU seconds (user + system), RSS bytes and command of one process."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/cmdline", "rb") as cmd:
            command = cmd.read().decode(errors="replace")
    except OSError:
        return 0.0, 0, ""
    return (int(fields[11]) + int(fields[12])) / TICK, int(fields[21]) * PAGE, command


class Meter:
    """CPU of the whole tree (live processes, plus children reaped meanwhile)."""

    def __init__(self) -> None:
        self.start = self._cpu()

    @staticmethod
    def _cpu() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        others = sum(_stat(pid)[0] for pid in _tree() if pid != os.getpid())
        return own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime + others

    def used(self) -> float:
        return self._cpu() - self.start


def _pss(pid: int) -> int:
    """Proportional set size: shared pages counted once across Chromium's processes."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def chromium_rss() -> int:
    """Chromium's memory: the PSS of all its processes (their RSS would count shared pages once each)."""
    return sum(_pss(pid) for pid in _tree() if "chromium" in _stat(pid)[2])


def own_rss() -> int:
    return _stat(os.getpid())[1]


def browser_process_rss(runner: JourneyRunner) -> int:
    """The browser process's RSS (Playwright's Python side: it drives Chromium for the prober)."""
    pid = runner.browser.pid if runner.browser is not None else None
    return _stat(pid)[1] if pid is not None else 0


async def plain_playwright(base: str, runs: int) -> float:
    """The same journey as a plain Playwright script, one browser reused: CPU per journey."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=list(CHROMIUM_ARGS),
                                           handle_sigint=False, handle_sigterm=False, handle_sighup=False)

        async def journey() -> None:
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(f"{base}/web/login")
            await page.fill("#username", "alice")
            await page.fill("#password", "s3cret-pw")
            await page.click("#sign-in")
            await page.wait_for_url("**/web/accounts")
            await page.locator("#balance-acc-001").first.wait_for(state="visible")
            await page.locator("#balance-acc-001").first.inner_text()
            await context.close()

        await journey()  # warm-up
        meter = Meter()
        for _ in range(runs):
            await journey()
        cpu = meter.used() / runs
        await browser.close()
    return cpu


async def prober_runs(runner: JourneyRunner, plan: JourneyPlan, runs: int) -> float:
    result = await runner(plan)  # warm-up: launches the browser
    assert result.success, result.error
    meter = Meter()
    for _ in range(runs):
        result = await runner(plan)
        assert result.success, result.error
    return meter.used() / runs


async def peak_rss_while(work: Awaitable[object]) -> int:
    """Chromium's peak RSS, sampled every 50 ms while ``work`` runs."""
    peak = 0
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, chromium_rss())
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    await work
    done.set()
    await watcher
    return peak


async def memory_per_concurrent(runner: JourneyRunner, plan: JourneyPlan) -> list[tuple[int, int]]:
    """(concurrent journeys, Chromium's peak RSS while they run)."""
    out = []
    for count in (1, 2, 4):
        peak = await peak_rss_while(asyncio.gather(*(runner(plan) for _ in range(count))))
        out.append((count, peak))
    return out


async def lag(api: JourneyPlan, browser: JourneyPlan | None, runner: JourneyRunner, window: float,
              concurrency: int) -> tuple[float, float, int]:
    """Schedule lag p50/p99 of 1,000 API checks (every 10 s), with browser journeys at full
    concurrency beside them or not."""
    lags: list[float] = []
    scheduler = JourneyScheduler(lambda result: None, runner=runner)
    scheduler.on_start = lambda plan, ms: lags.append(ms) if plan.browser is None else None
    plans: dict[tuple[str, str], tuple[JourneyPlan, Hashable]] = {}
    for n in range(1000):
        plan = dataclasses.replace(api, check=f"api-{n}", interval=10.0, timeout=10.0)
        plans[plan.key] = (plan, n)
    if browser is not None:
        for n in range(concurrency * 2):  # more than the slots: always one waiting
            plan = dataclasses.replace(browser, check=f"web-{n}", interval=2.0, timeout=2.0)
            plans[plan.key] = (plan, -n - 1)
    limits = {api.site: 2000}
    scheduler.apply(plans, limits)
    await scheduler.start()
    await asyncio.sleep(window)
    scheduler.stop_scheduling()
    await scheduler.drain(10.0)
    return percentile(lags, 50), percentile(lags, 99), len(lags)


async def main(args: argparse.Namespace) -> None:
    bank, base = start_bank()
    state = Path(args.state)
    try:
        loaded = load(default_config(), {**os.environ, "SIMBANK_URL": base})
        plans = {p.check: p for p in loaded.plans}
        web, api = plans["web-accounts"], plans["login"]
        print(f"$ {' '.join(sys.argv)}")
        print(f"machine: {os.cpu_count()} cores; journey: web-accounts of the embedded default "
              f"({len(web.browser.steps) if web.browser else 0} steps) against the simulated bank")

        plain = await plain_playwright(base, args.runs)
        runner = JourneyRunner.for_state_dir(state, "/usr/bin/chromium", args.concurrency, 10, 50 << 20)
        try:
            ours = await prober_runs(runner, web, args.runs)
            print("\n1. CPU per journey (this process + the browser process + Playwright's driver + Chromium), "
                  f"{args.runs} journeys in a row")
            print(f"   plain Playwright script   {plain * 1000:8.1f} ms  ({60 / plain:6.0f} journeys/min per core)")
            print(f"   prober browser runner     {ours * 1000:8.1f} ms  ({60 / ours:6.0f} journeys/min per core)")
            print(f"   ratio                     {ours / plain:8.2f}     (goal: at most 1.2)")

            wide = JourneyRunner.for_state_dir(state / "wide", "/usr/bin/chromium", 4, 10, 50 << 20)
            try:
                await wide(web)
                memory = await memory_per_concurrent(wide, web)
            finally:
                await wide.close()
            print("\n2. Chromium's memory (PSS of all its processes) while journeys run at once")
            base_rss = memory[0][1]
            for count, peak in memory:
                extra = (peak - base_rss) / (count - 1) / 2**20 if count > 1 else 0.0
                print(f"   {count} at once: {peak / 2**20:7.1f} MiB" + (f"  (+{extra:5.1f} MiB per added journey)"
                                                                    if count > 1 else ""))
            print(f"   this process: {own_rss() / 2**20:.1f} MiB; the browser process: "
                  f"{browser_process_rss(runner) / 2**20:.1f} MiB")

            alone = await lag(api, None, runner, args.lag_window, args.concurrency)
            beside = await lag(api, web, runner, args.lag_window, args.concurrency)
            print(f"\n3. schedule lag of 1,000 API checks (every 10 s), {args.lag_window:g} s windows")
            print(f"   alone                        p50 {alone[0]:6.1f} ms  p99 {alone[1]:6.1f} ms  ({alone[2]} runs)")
            print(f"   beside {args.concurrency} browser journeys    p50 {beside[0]:6.1f} ms  p99 {beside[1]:6.1f} ms  "
                  f"({beside[2]} runs; goal: p99 at most 20 ms)")

            if args.soak:
                print(f"\n4. soak: {args.soak} browser journeys in a row; resident memory")
                step = max(1, args.soak // 10)
                started = time.monotonic()
                for n in range(1, args.soak + 1):
                    result = await runner(web)
                    if not result.success:
                        print(f"   run {n}: {result.outcome.value} {result.error}")
                    if n % step == 0:
                        print(f"   after {n:5d}: prober {own_rss() / 2**20:7.1f} MiB  browser process "
                              f"{browser_process_rss(runner) / 2**20:7.1f} MiB  Chromium "
                              f"{chromium_rss() / 2**20:7.1f} MiB  ({n / (time.monotonic() - started):.1f} journeys/s)",
                              flush=True)
        finally:
            await runner.close()
    finally:
        bank.terminate()
        bank.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40, help="journeys per CPU measurement (default 40)")
    parser.add_argument("--concurrency", type=int, default=2, help="max_browser_concurrency (default 2)")
    parser.add_argument("--lag-window", type=float, default=30.0, help="seconds per lag window (default 30)")
    parser.add_argument("--soak", type=int, default=0, help="browser journeys of the soak (e.g. 1000; default none)")
    parser.add_argument("--state", default="/tmp/bank-prober-browser-bench", help="state_dir of the runner")
    asyncio.run(main(parser.parse_args()))
