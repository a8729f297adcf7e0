"""What the supervisor of ``prober run --workers N`` costs: its own CPU while it polls its
workers' health, and per ``/healthz`` it answers for the whole process tree.

    python benchmarks/supervisor.py [--workers 2] [--window 30] [--requests 2000]

``prober run --workers N`` runs against the simulated bank (in its own process), with
``worker_stall_timeout`` at its default (60 s: one health question per worker every 5 s)
and, in a second run, at 2 s (every 0.5 s). The supervisor's CPU (its own threads',
not its workers') is read from ``/proc`` over an idle window, then over ``--requests``
``GET /healthz`` sent to it one after another (each answered from its records, without
asking the workers).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.support import free_port_run, start_bank, wait_http

SITE = """
[[sites]]
name = "bank-{n}"
base_url = "{url}"
[sites.vars]
username = "alice"
[sites.secrets]
password = "s3cret-pw"
[[sites.checks]]
name = "login"
kind = "login"
interval = "5s"
timeout = "5s"
  [[sites.checks.steps]]
  name = "token"
  method = "POST"
  path = "/oauth/token"
  form = {{ grant_type = "password", username = "{{{{ username }}}}", password = "{{{{ password }}}}" }}
"""


def own_cpu(pid: int) -> float:
    """CPU time of ``pid``'s threads (not its children), in seconds: the scheduler's
    nanosecond count (``/proc/PID/task/*/schedstat``), since utime and stime move in
    10 ms ticks, about what the supervisor spends in a minute."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return total / 1e9


def measure(url: str, workers: int, stall: str, window: float, requests: int, tmp: Path) -> tuple[float, float, float]:
    port = free_port_run(workers + 1)
    config = tmp / f"prober-{stall}.toml"
    config.write_text(f'[daemon]\nhealth_listen = "127.0.0.1:{port}"\nworker_stall_timeout = "{stall}"\n'
                      f'state_dir = "state-{stall}"\n' + "".join(SITE.format(n=n, url=url) for n in range(4 * workers)))
    log = (tmp / f"prober-{stall}.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "prober", "run", "-c", str(config), "--workers", str(workers)],
                            cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=120.0)
        time.sleep(2.0)
        cpu0, t0 = own_cpu(proc.pid), time.monotonic()
        time.sleep(window)
        idle = (own_cpu(proc.pid) - cpu0) / (time.monotonic() - t0)
        cpu0 = own_cpu(proc.pid)
        started = time.monotonic()
        for _ in range(requests):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                response.read()
        elapsed = time.monotonic() - started
        per_request = (own_cpu(proc.pid) - cpu0 - idle * elapsed) / requests
        return idle, per_request, requests / elapsed
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--window", type=float, default=30.0, help="idle window, seconds")
    parser.add_argument("--requests", type=int, default=2000, help="GET /healthz sent to the supervisor")
    args = parser.parse_args()
    print("$ python benchmarks/supervisor.py " + " ".join(sys.argv[1:]))
    bank, url = start_bank()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for stall, poll in (("60s", 5.0), ("2s", 0.5)):
                idle, per_request, rate = measure(url, args.workers, stall, args.window, args.requests, Path(tmp))
                questions = args.workers / poll
                print(f"workers {args.workers}, worker_stall_timeout {stall} (a health question per worker every "
                      f"{poll:g} s): supervisor CPU idle {idle * 1000:.2f} ms/s "
                      f"({idle * 100:.3f} % of a core, {idle * 1000 / questions:.2f} ms per question); "
                      f"per /healthz answered {per_request * 1000:.3f} ms CPU ({rate:.0f} requests/s, sequential)")
    finally:
        bank.kill()
        bank.wait()


if __name__ == "__main__":
    main()
