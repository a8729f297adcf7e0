"""CPU per executed step with and without reading the server certificate, over https and http.

    .venv/bin/python benchmarks/tls_cpu.py [--rounds 6] [--seconds 3] [--concurrency 16]

Starts two simulated banks in separate processes (their CPU is not counted): one over
plain HTTP, one over HTTPS (``prober bank --tls-cert-days 30``, its test CA trusted with
``ca_file``). Runs the realistic ``accounts`` journey of ``config/simbank.toml`` (token
POST on a fresh connection, two GETs reusing it; assertions, phase timing and the InfluxDB
line protocol of every result included) against each, in alternated rounds:

* **with**: the code as it is: each new TLS connection's certificate read from its
  handshake (leaf, chain, TLS version), handed to every step sent on it, written as the
  ``step`` point's ``cert_*`` fields;
* **without**: the same process with the connector's certificate reading switched off
  (its ``connect`` and ``_remember_certificate`` replaced by aiohttp's and a no-op), so the
  steps carry no certificate and the points no ``cert_*`` fields: the engine as it was.

Prints CPU per step (``time.process_time()`` of this process) for each, per scheme, the
median of the rounds, and the difference with against without; and, timed alone on a
live connection, the CPU of reading one connection's certificate (what each new TLS
connection costs more). Absolute times move on a shared machine: compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.support import free_port, start_bank, wait_http
from prober import eventloop
from prober.journey import http
from prober.journey.plan import JourneyPlan
from prober.journey.runner import run_journey
from prober.loading import load
from prober.writer.points import journey_lines

WITH = (http.TracingConnector.connect, http.TracingConnector._remember_certificate)
WITHOUT = (aiohttp.TCPConnector.connect, lambda self, connection, host: None)


def reading(on: bool) -> None:
    """Switch the connector's certificate reading on or off."""
    # patches the class's methods for the measurement
    http.TracingConnector.connect, http.TracingConnector._remember_certificate = WITH if on else WITHOUT  # type: ignore[method-assign]


def start_https_bank(directory: Path) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "prober", "bank", "--port", str(port), "--tls-cert-days", "30",
                             "--tls-dir", str(directory)], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ca_file = directory / "bank-ca.pem"
    deadline = time.monotonic() + 20
    while not ca_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    url = f"https://127.0.0.1:{port}"
    while time.monotonic() < deadline:
        try:
            context = ssl.create_default_context(cafile=str(ca_file))
            urllib.request.urlopen(url + "/healthz", timeout=1, context=context).read()
            return proc, url, ca_file
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{url} did not answer")


def accounts_plan(url: str, ca_file: Path | None) -> JourneyPlan:
    """The ``accounts`` check of ``config/simbank.toml`` against ``url``, trusting
    ``ca_file`` (given to the plan's SSL context: the file's browser checks take no CA)."""
    loaded = load(REPO / "config" / "simbank.toml", {**os.environ, "SIMBANK_URL": url})
    plan = next(p for p in loaded.plans if p.check == "accounts")
    if ca_file is not None:
        plan = dataclasses.replace(plan, ssl_context=ssl.create_default_context(cafile=str(ca_file)))
    return plan


async def cpu_per_step(plan: JourneyPlan, seconds: float, concurrency: int) -> tuple[float, int, int]:
    """CPU ms per executed step over ``seconds`` of ``concurrency`` workers, the steps, and
    how many of them carried a server certificate."""
    stop_at = time.monotonic() + seconds
    steps = certified = 0

    async def worker() -> None:
        nonlocal steps, certified
        while time.monotonic() < stop_at:
            result = await run_journey(plan)
            assert result.success, result.error
            journey_lines(result)
            executed = result.executed_steps
            steps += len(executed)
            certified += sum(step.certificate is not None for step in executed)

    await run_journey(plan)
    cpu0 = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - cpu0) * 1000.0 / max(steps, 1), steps, certified


async def measure(plans: dict[str, JourneyPlan], rounds: int, seconds: float, concurrency: int) -> dict:
    figures: dict[tuple[str, bool], list[float]] = {}
    for round_no in range(rounds):
        for scheme, plan in plans.items():
            order = (True, False) if round_no % 2 == 0 else (False, True)
            for on in order:
                reading(on)
                per_step, steps, certified = await cpu_per_step(plan, seconds, concurrency)
                expected = steps if on and scheme == "https" else 0
                assert certified == expected, f"{certified} of {steps} steps carried a certificate, not {expected}"
                figures.setdefault((scheme, on), []).append(per_step)
                print(f"  round {round_no + 1} {scheme:5} {'with' if on else 'without':7} {per_step:.3f} ms/step "
                      f"({steps} steps, {certified} with a certificate)", flush=True)
    reading(True)
    return figures


def per_connection_us(url: str, ca_file: Path, count: int = 20_000) -> float:
    """CPU µs of reading one connection's certificate (leaf, verified chain, TLS version),
    timed on a live connection to the HTTPS bank, its certificates already parsed once."""
    import socket

    from prober.journey.tlspeer import describe_peer

    host, port = url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection((host, int(port))) as raw, context.wrap_socket(raw, server_hostname=host) as sock:
        assert describe_peer(sock, host) is not None
        started = time.process_time()
        for _ in range(count):
            describe_peer(sock, host)
        return (time.process_time() - started) * 1e6 / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        http_bank, http_url = start_bank()
        https_bank, https_url, ca_file = start_https_bank(work / "tls")
        try:
            wait_http(http_url + "/healthz")
            plans = {"https": accounts_plan(https_url, ca_file), "http": accounts_plan(http_url, None)}
            figures = eventloop.run(measure(plans, args.rounds, args.seconds, args.concurrency))
            reading_us = per_connection_us(https_url, ca_file)
        finally:
            for proc in (http_bank, https_bank):
                proc.terminate()
                proc.wait(10)
    print(f"\n$ .venv/bin/python benchmarks/tls_cpu.py --rounds {args.rounds} --seconds {args.seconds:g} "
          f"--concurrency {args.concurrency}   (load average {os.getloadavg()[0]:.1f})")
    print(f"reading a new connection's certificate (leaf, verified chain, TLS version): {reading_us:.1f} µs of CPU")
    for scheme in ("https", "http"):
        with_ = statistics.median(figures[(scheme, True)])
        without = statistics.median(figures[(scheme, False)])
        print(f"{scheme:5}: CPU per step {with_:.3f} ms with the certificate read, {without:.3f} ms without: "
              f"{(with_ - without) * 1000:+.1f} µs ({(with_ / without - 1) * 100:+.1f} %), medians of "
              f"{args.rounds} alternated rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
