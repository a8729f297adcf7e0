"""CPU per executed step of the journey engine, compared with blackbox_exporter in one run.

A micro-benchmark: it times the code in this process, not ``prober run`` as a user runs
it (``benchmarks/daemon.py`` measures the daemon).

    python benchmarks/journey_cpu.py [--seconds 10] [--concurrency 32]

Starts the simulated bank in a separate process (its CPU is not counted), then measures
in this process, with ``time.process_time()``:

1. the realistic journey: the ``accounts`` check of ``config/simbank.toml`` (token POST on
   a fresh connection, then two GETs reusing it; assertions, extraction, phase tracing
   and InfluxDB line-protocol serialization of every result included) → CPU per step;
2. a one-step journey, GET ``/healthz`` on a fresh connection → CPU per probe, the same
   work as one blackbox_exporter HTTP probe;
3. Debian's ``prometheus-blackbox-exporter`` probing the same ``/healthz`` (its CPU read
   from ``/proc/PID/stat``), when installed → CPU per probe and the ratio;
4. latency overhead: the bank delays ``/accounts`` by a known 20 ms; the step's measured
   duration minus 20 ms, p50/p99, next to the same figure from a bare blocking socket
   (the server's own handling and timer are in both; the difference is the prober's).

Absolute times move from run to run on shared machines; compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.support import free_port, start_bank, timed_request, wait_http
from prober import eventloop
from prober.journey.plan import JourneyPlan
from prober.journey.runner import run_journey
from prober.loading import load
from prober.results import JourneyResult
from prober.writer.points import journey_lines

HEALTH_CONFIG = """
[[sites]]
name = "static"
base_url = "{url}"
[[sites.checks]]
name = "healthz"
kind = "custom"
[[sites.checks.steps]]
name = "get"
path = "/healthz"
"""


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive_journeys(plan: JourneyPlan, seconds: float,
                         concurrency: int) -> tuple[int, int, float, list[JourneyResult]]:
    """Run ``plan`` in a loop from ``concurrency`` workers; returns journeys, steps, CPU s, results."""
    results: list[JourneyResult] = []
    stop_at = time.monotonic() + seconds
    steps = journeys = 0

    async def worker() -> None:
        nonlocal steps, journeys
        while time.monotonic() < stop_at:
            result = await run_journey(plan)
            journey_lines(result)
            journeys += 1
            steps += len(result.executed_steps)
            if len(results) < 5000:
                results.append(result)

    await run_journey(plan)  # warm-up: imports, first connection
    cpu0 = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return journeys, steps, time.process_time() - cpu0, results


async def sequential_runs(plan: JourneyPlan, count: int) -> list[JourneyResult]:
    """``count`` runs one after the other (no competition for the loop or the CPU)."""
    return [await run_journey(plan) for _ in range(count)]


async def drive_blackbox(bb_url: str, target: str, seconds: float, concurrency: int) -> int:
    probes = 0
    stop_at = time.monotonic() + seconds
    url = f"{bb_url}/probe?module=http_2xx&target={target}"
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            nonlocal probes
            while time.monotonic() < stop_at:
                async with session.get(url) as resp:
                    body = await resp.text()
                    if "probe_success 1" not in body:
                        raise RuntimeError("blackbox probe failed")
                probes += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return probes


def pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, max(0, round(len(sorted_values) * q / 100) - 1))]


def raw_reference(bank_url: str, count: int) -> list[float]:
    """The same request timed by the leanest client there is: a blocking socket on a
    kept-alive connection, the clock read just before sending and just after the last
    byte. What the bank itself adds (its handling, its timer) is in both figures."""
    host, port = bank_url.removeprefix("http://").split(":")
    form = b"grant_type=password&username=alice&password=s3cret-pw"
    token_request = urllib.request.Request(f"{bank_url}/oauth/token", data=form)
    token = json.loads(urllib.request.urlopen(token_request).read())["access_token"]
    request = (f"GET /accounts HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
    durations = []
    with socket.create_connection((host, int(port))) as sock:
        for _ in range(count):
            durations.append(timed_request(sock, request))
    return sorted(durations)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-runs", type=int, default=300,
                        help="journeys for the latency overhead (enough samples for a p99)")
    parser.add_argument("--traceparent-rounds", type=int, default=0,
                        help="then alternate this many rounds of the accounts journey with and without the "
                             "traceparent header (--seconds each) and print the CPU per step of each")
    args = parser.parse_args()

    bank, bank_url = start_bank()
    bb = None
    try:
        os.environ["SIMBANK_URL"] = bank_url
        accounts = next(p for p in load(REPO / "config" / "simbank.toml").plans if p.check == "accounts")
        tmp = Path(tempfile.mkdtemp())
        (tmp / "health.toml").write_text(HEALTH_CONFIG.format(url=bank_url))
        health = load(tmp / "health.toml").plans[0]

        print(f"# python benchmarks/journey_cpu.py --seconds {args.seconds:g} --concurrency {args.concurrency} "
              f"--latency-runs {args.latency_runs}"
              + (f" --traceparent-rounds {args.traceparent_rounds}" if args.traceparent_rounds else ""))
        journeys, steps, cpu, _ = eventloop.run(drive_journeys(accounts, args.seconds, args.concurrency))
        per_step_ms = cpu / steps * 1000
        print(f"accounts journey (3 steps, fresh connection then reuse): {journeys} journeys, {steps} steps "
              f"in {args.seconds:g}s = {steps / args.seconds:,.0f} steps/s; CPU {per_step_ms:.3f} ms/step")

        if args.traceparent_rounds:
            untraced = dataclasses.replace(accounts, traceparent=False)
            totals = {"with": [0.0, 0], "without": [0.0, 0]}
            for r in range(args.traceparent_rounds):
                for label, plan in (("with", accounts), ("without", untraced)):
                    _, steps, cpu, _ = eventloop.run(drive_journeys(plan, args.seconds, args.concurrency))
                    totals[label][0] += cpu
                    totals[label][1] += steps
                    print(f"round {r + 1} {label:7} traceparent: CPU {cpu / steps * 1000:.4f} ms/step", flush=True)
            on, off = (totals[k][0] / totals[k][1] * 1000 for k in ("with", "without"))
            print(f"traceparent: {on:.4f} ms/step with, {off:.4f} without = {(on - off) * 1000:+.1f} us per step "
                  f"({(on / off - 1) * 100:+.1f} %)")

        journeys, steps, cpu, _ = eventloop.run(drive_journeys(health, args.seconds, args.concurrency))
        per_probe_ms = cpu / steps * 1000
        print(f"one-step GET /healthz on a fresh connection: {steps / args.seconds:,.0f} probes/s; "
              f"CPU {per_probe_ms:.3f} ms/probe")

        binary = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
        if binary:
            bb_port = free_port()
            (tmp / "blackbox.yml").write_text("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n")
            bb = subprocess.Popen([binary, f"--config.file={tmp / 'blackbox.yml'}",
                                   f"--web.listen-address=127.0.0.1:{bb_port}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            bb_url = f"http://127.0.0.1:{bb_port}"
            wait_http(f"{bb_url}/metrics")
            asyncio.run(drive_blackbox(bb_url, f"{bank_url}/healthz", 1.0, args.concurrency))  # warm-up
            cpu0 = proc_cpu_seconds(bb.pid)
            probes = asyncio.run(drive_blackbox(bb_url, f"{bank_url}/healthz", args.seconds, args.concurrency))
            bb_ms = (proc_cpu_seconds(bb.pid) - cpu0) / probes * 1000
            print(f"blackbox_exporter http probe of the same target: {probes / args.seconds:,.0f} probes/s; "
                  f"CPU {bb_ms:.3f} ms/probe")
            print(f"ratio prober CPU per journey step / blackbox CPU per probe: {per_step_ms / bb_ms:.2f} "
                  f"(target <= 0.50); one-step probe ratio: {per_probe_ms / bb_ms:.2f}")
        else:
            print("blackbox_exporter not installed (apt-get install prometheus-blackbox-exporter): no comparison")

        set_fault = urllib.request.Request(f"{bank_url}/admin/faults/accounts", method="PUT",
                                           data=json.dumps({"mode": "slow", "delay_ms": 20}).encode())
        urllib.request.urlopen(set_fault).read()
        results = eventloop.run(sequential_runs(accounts, args.latency_runs))
        prober_ms = sorted(r.steps[1].duration_ms - 20.0 for r in results if r.steps[1].success)
        reference_ms = sorted(d - 20.0 for d in raw_reference(bank_url, len(prober_ms)))
        print(f"latency over a known 20 ms server delay, accounts list step, one request at a time "
              f"({len(prober_ms)} runs): prober p50 {pct(prober_ms, 50):.3f} ms p99 {pct(prober_ms, 99):.3f} ms; "
              f"bare-socket reference p50 {pct(reference_ms, 50):.3f} ms p99 {pct(reference_ms, 99):.3f} ms; "
              f"prober minus reference p50 {pct(prober_ms, 50) - pct(reference_ms, 50):.3f} ms, "
              f"p99 {pct(prober_ms, 99) - pct(reference_ms, 99):.3f} ms (target <= 0.5 ms)")
    finally:
        bank.terminate()
        if bb is not None:
            bb.terminate()
        bank.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
