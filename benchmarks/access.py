"""What hammering the prober's internal endpoints does to its probing: the schedule lag
p99 while clients ask as fast as they can, with and without credentials, next to the lag
of a quiet window; and what a password check costs.

    python benchmarks/access.py [--checks 300] [--interval 3s] [--window 8] [--connections 4]

Everything on loopback, bounded in time (2 × 10 windows plus start-ups: about 3 minutes
at the default window):

* **benchmarks/sidecar.py** (own process) is the target of the checks and the InfluxDB
  ``prober run`` writes to; it keeps each second's ``schedule_lag_ms`` (the p99 of the
  runs started in that second, from the daemon's ``prober`` self-report points);
* **prober run** (own process): ``--checks`` one-step checks every ``--interval``, the
  internal status page on its health listener, ``[access]`` with a bearer token and a
  basic-auth user (bcrypt cost 12, what ``htpasswd -B -C 12`` makes);
* **the hammer** (own process, ``--connections`` kept-alive connections, each sending
  its next request as soon as the previous answer is read) asks, one window each,
  every one after a quiet window of the same length (the lag is compared in pairs):
  ``/status`` with the token; the internal page ``/`` with the right password (verified
  once, then remembered); ``/status`` with a different wrong password each time (every
  one a bcrypt, at most 8 waiting); ``/status`` without a credential (401);
  ``/healthz`` (public, never limited).

It runs the whole sequence twice: with ``[access]``'s default rate limit (20/s per client
address, burst 40; every hammer connection comes from 127.0.0.1, so beyond the burst
they get 429, each held back until the client's next request would be allowed, at most
1 s) and with ``rate_limit = 0`` (no limit: what rendering costs when nothing stops a
client). Per window it prints the answers by status, requests/s, the daemon's CPU (share
of one core; in brackets, in the quiet window before) and the lag p99: the median and the
worst of the per-second figures, hammered and quiet. A figure, not a test: compare the
pairs of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.support import ROOT, free_port, proc_cpu, wait_http

TOKEN = "bench-token-6f1e2d3c4b5a69788796"
USER, PASSWORD = "ops", "bench-password-2c4e"

CONFIG = """
[daemon]
health_listen = "127.0.0.1:{port}"
self_report_interval = "1s"
state_dir = "{tmp}/state"
log_level = "warning"

[influxdb]
url = "{sidecar}"
api = "v1"
database = "bench"
spool_dir = "{tmp}/spool"

[status_page]
history = "local"

[access]
rate_limit = {rate_limit}

[[access.tokens]]
name = "bench"
token = "{token}"

[[access.users]]
name = "{user}"
password_hash = "{hash}"
"""

SITE = """
[[sites]]
name = "site-{n}"
base_url = "{sidecar}"
"""

CHECK = """
[[sites.checks]]
name = "check-{n}"
kind = "accounts"
interval = "{interval}"
timeout = "2s"
  [[sites.checks.steps]]
  name = "fast"
  path = "/fast"
"""


def config_text(tmp: Path, port: int, sidecar: str, checks: int, interval: str, rate_limit: int, hashed: str) -> str:
    parts = [CONFIG.format(port=port, tmp=tmp, sidecar=sidecar, rate_limit=rate_limit, token=TOKEN, user=USER,
                           hash=hashed)]
    for n in range(checks):
        if n % 10 == 0:
            parts.append(SITE.format(n=n // 10, sidecar=sidecar))
        parts.append(CHECK.format(n=n, interval=interval))
    return "".join(parts)


# -- the hammer (runs in its own process) ------------------------------------------------

async def _connection(host: str, port: int, path: str, auth: str, until: float, counts: Counter[int],
                      wrong: bool, index: int) -> None:
    reader = writer = None
    n = 0
    while time.monotonic() < until:
        if writer is None:
            reader, writer = await asyncio.open_connection(host, port)
        assert reader is not None
        header = auth
        if wrong:
            n += 1
            header = "Basic " + base64.b64encode(f"{USER}:guess-{index}-{n}".encode()).decode()
        request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        if header:
            request += f"Authorization: {header}\r\n"
        writer.write((request + "\r\n").encode())
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            writer = None
            continue
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")), 0)
        await reader.readexactly(length)
        counts[status] += 1
        if any(line.lower() == "connection: close" for line in lines):
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def _hammer(url: str, auth: str, seconds: float, connections: int, wrong: bool) -> dict[int, int]:
    host_port, _, path = url.removeprefix("http://").partition("/")
    host, _, port = host_port.partition(":")
    counts: Counter[int] = Counter()
    until = time.monotonic() + seconds
    await asyncio.gather(*(_connection(host, int(port), "/" + path, auth, until, counts, wrong, i)
                           for i in range(connections)))
    return dict(counts)


def hammer_main(args: argparse.Namespace) -> None:
    counts = asyncio.run(_hammer(args.hammer, args.auth, args.seconds, args.connections, args.wrong))
    print(json.dumps(counts))


# -- the benchmark -------------------------------------------------------------------------

def lags(sidecar: str, forget: bool = False) -> list[float]:
    if forget:
        urllib.request.urlopen(urllib.request.Request(f"{sidecar}/lags", method="DELETE"), timeout=10)
        return []
    with urllib.request.urlopen(f"{sidecar}/lags", timeout=10) as response:
        return json.loads(response.read())


WINDOWS = [
    ("/status, bearer token", "/status", f"Bearer {TOKEN}", False),
    ("/ internal page, basic auth", "/", "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(), False),
    ("/status, wrong passwords", "/status", "", True),
    ("/status, no credential", "/status", "", False),
    ("/healthz (public)", "/healthz", "", False),
]
"""Each hammered window follows a quiet one of the same length: the lag is compared in
pairs, since the load of a shared machine moves from minute to minute."""


def window(args: argparse.Namespace, sidecar: str, pid: int, base: str, route: str | None, auth: str,
           wrong: bool) -> tuple[dict[str, int], float, float, list[float]]:
    """One window: (answers by status, requests/s, the daemon's CPU share, per-second lag p99s)."""
    lags(sidecar, forget=True)
    cpu = proc_cpu(pid)
    started = time.monotonic()
    counts: dict[str, int] = {}
    if route is None:
        time.sleep(args.window)
    else:
        done = subprocess.run(
            [sys.executable, __file__, "--hammer", base + route, "--auth", auth, "--seconds",
             str(args.window), "--connections", str(args.connections), *(["--wrong"] if wrong else [])],
            capture_output=True, text=True, check=True)
        counts = json.loads(done.stdout)
    elapsed = time.monotonic() - started
    used = (proc_cpu(pid) - cpu) / elapsed
    return counts, sum(counts.values()) / elapsed, used, lags(sidecar)[1:]  # the first second straddles the change


def run_windows(args: argparse.Namespace, tmp: Path, sidecar: str, rate_limit: int, hashed: str) -> None:
    port = free_port()
    path = tmp / f"prober-{rate_limit}.toml"
    path.write_text(config_text(tmp, port, sidecar, args.checks, args.interval, rate_limit, hashed))
    prober = subprocess.Popen([sys.executable, "-m", "prober", "run", "-c", str(path)], cwd=tmp,
                              stdout=subprocess.DEVNULL, stderr=(tmp / f"prober-{rate_limit}.log").open("wb"))
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz", timeout=60)
        time.sleep(args.window)  # first runs spread over the interval; let it settle
        limit = f"rate_limit = {rate_limit}" + (" (off)" if rate_limit == 0 else " per client (the default)")
        print(f"\n## {args.checks} checks every {args.interval}, {limit}, {args.connections} connections")
        print("lag p99: median (worst) of the per-second p99s, hammered window | the quiet window just before")
        print(f"{'window':30} {'answers':30} {'req/s':>6} {'daemon CPU':>10}  {'lag p99 hammered':>18} | quiet")
        for name, route, auth, wrong in WINDOWS:
            _, _, quiet_cpu, quiet = window(args, sidecar, prober.pid, base, None, "", False)
            counts, rate, used, hammered = window(args, sidecar, prober.pid, base, route, auth, wrong)
            answered = ", ".join(f"{status}: {count}" for status, count in sorted(counts.items())) or "-"
            print(f"{name:30} {answered:30} {rate:6.0f} {used * 100:5.0f}% ({quiet_cpu * 100:.0f}%) "
                  f"{_lag(hammered):>18} | {_lag(quiet)}", flush=True)
    finally:
        prober.terminate()
        prober.wait(30)


def _lag(seconds: list[float]) -> str:
    if not seconds:
        return "-"
    return f"{statistics.median(seconds):.1f} ({max(seconds):.1f}) ms"


def bcrypt_figures() -> None:
    """The cost of a basic-auth check: a bcrypt verification, and a remembered one."""
    import bcrypt

    from prober.access.credentials import Authenticator
    from prober.config.access import AccessConfig

    print("\n## Basic auth: what one check costs")
    for cost in (10, 12):
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(cost))
        started = time.process_time()
        bcrypt.checkpw(PASSWORD.encode(), hashed)
        print(f"bcrypt verification at cost {cost}: {(time.process_time() - started) * 1000:.0f} ms of CPU")
    auth = Authenticator(AccessConfig.model_validate({"users": [{"name": USER, "password_hash": hashed.decode()}]}))
    header = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    async def remembered(n: int) -> float:
        await auth.check(header)  # the one verification
        started = time.process_time()
        for _ in range(n):
            await auth.check(header)
        return (time.process_time() - started) / n

    per = asyncio.run(remembered(20_000))
    auth.close()
    print(f"a remembered success (an HMAC and a table look-up): {per * 1e6:.1f} µs of CPU; "
          f"a scraper every 5 s costs one verification a minute")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=300)
    parser.add_argument("--interval", default="3s")
    parser.add_argument("--window", type=float, default=8.0, help="seconds per window")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--hammer", help=argparse.SUPPRESS)
    parser.add_argument("--auth", default="", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=5.0, help=argparse.SUPPRESS)
    parser.add_argument("--wrong", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hammer:
        hammer_main(args)
        return
    print("$ python benchmarks/access.py " + shlex.join(sys.argv[1:]))
    import bcrypt

    bcrypt_figures()
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(12)).decode()
    with tempfile.TemporaryDirectory(prefix="bench-access-") as name:
        tmp = Path(name)
        side_port = free_port()
        sidecar_proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "sidecar.py"), "--port",
                                         str(side_port), "--delay-ms", "0"], stdout=subprocess.DEVNULL)
        sidecar = f"http://127.0.0.1:{side_port}"
        try:
            wait_http(sidecar + "/fast")
            for rate_limit in (20, 0):
                run_windows(args, tmp, sidecar, rate_limit, hashed)
        finally:
            sidecar_proc.terminate()
            sidecar_proc.wait(10)


if __name__ == "__main__":
    main()
