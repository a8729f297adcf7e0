"""Hostile answers through the real journey runner: outcome, time, peak memory, loop stall.

    python benchmarks/hostile.py [--timeout 5s] [--max-body 10MiB] [--case NAME ...]

The hostile server (``tests.fixtures.hostile``) runs in its own process, so its CPU is not
ours. Each case runs in a fresh Python process, so that its peak resident memory is its
own: the figure printed is the peak RSS (``VmHWM``) during the run minus the RSS just
before it. A ticker task sleeping 1 ms beside the run gives the longest stall of the event
loop (the longest gap between two ticks, minus the 1 ms). ``--max-body ""`` leaves the
site's default limit in place.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.support import ROOT, free_port, wait_http
from prober import eventloop

CASES = {
    "ok": "/ok",
    "big-200MiB": "/big?size=209715200",
    "endless-chunked": "/endless",
    "gzip-bomb-2GiB": "/gzip-bomb?size=2147483648",
    "deflate-bomb-2GiB": "/deflate-bomb?size=2147483648",
    "endless-gzip": "/endless-gzip",
    "cut-short": "/cut-short",
    "cut-chunked": "/cut-chunked",
    "bad-gzip": "/bad-gzip",
    "br-unsupported": "/br",
    "slow-body": "/slow-body?delay=0.2",
    "slow-headers": "/slow-headers?delay=0.05",
    "huge-header-1MiB": "/huge-header?size=1048576",
    "many-headers-100k": "/many-headers?size=100000",
    "bad-charset": "/bad-charset",
}


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


async def _ticker(stall: list[float], stop: asyncio.Event) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        stall[0] = max(stall[0], now - last - 0.001)
        last = now


async def _one(base_url: str, path: str, timeout: str, max_body: str) -> dict[str, object]:
    from prober.journey.runner import run_journey
    from prober.loading import load

    limit = f'max_body = "{max_body}"\n' if max_body else ""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "hostile.toml"
        config.write_text(
            f'[[sites]]\nname = "hostile"\nbase_url = "{base_url}"\ntimeout = "{timeout}"\n{limit}'
            f'[[sites.checks]]\nname = "c"\nkind = "custom"\ninterval = "1h"\ntimeout = "1h"\n'
            f'[[sites.checks.steps]]\nname = "s"\npath = "{path}"\n'
        )
        plan = load(config, environ={}).plans[0]
    # Reset the peak-RSS mark (Linux: writing 5 to clear_refs), then measure from here.
    Path("/proc/self/clear_refs").write_text("5")
    before = _rss_kib("VmRSS")
    stall = [0.0]
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(stall, stop))
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    result = await run_journey(plan)
    elapsed = time.perf_counter() - started
    stop.set()
    await ticker
    step = result.steps[0]
    return {
        "outcome": str(step.outcome),
        "error": step.error,
        "seconds": round(elapsed, 3),
        "bytes": step.bytes,
        "peak_rss_mib": round((_rss_kib("VmHWM") - before) / 1024, 1),
        "max_stall_ms": round(stall[0] * 1000, 1),
    }


def main() -> int:
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", default="5s", help="the step timeout (default 5s)")
    parser.add_argument("--max-body", default="10MiB", help='the site\'s max_body ("" for the default)')
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="only these cases")
    parser.add_argument("--one", nargs=2, metavar=("URL", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(eventloop.run(_one(args.one[0], args.one[1], args.timeout, args.max_body))))
        return 0

    shown = " ".join(f"--case {c}" for c in args.case or [])
    print(
        f"command: python benchmarks/hostile.py --timeout {args.timeout} --max-body {args.max_body!r} {shown}".rstrip()
    )
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tests.fixtures.hostile", str(port)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_http(base_url + "/ok")
        print(f"{'case':<20} {'outcome':<8} {'seconds':>8} {'bytes':>10} "
              f"{'peak RSS MiB':>13} {'max stall ms':>13}  error")
        for name in args.case or CASES:
            out = subprocess.run(
                [sys.executable, __file__, "--timeout", args.timeout, "--max-body", args.max_body,
                 "--one", base_url, CASES[name]],
                cwd=ROOT, capture_output=True, text=True, check=False,
            )
            if out.returncode != 0:
                print(f"{name:<20} failed: {out.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{name:<20} {r['outcome']:<8} {r['seconds']:>8.2f} {r['bytes']:>10} {r['peak_rss_mib']:>13.1f} "
                  f"{r['max_stall_ms']:>13.1f}  {r['error']}")
    finally:
        server.terminate()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
