"""The daemon as a user runs it, side by side with blackbox_exporter, in one run.

    python benchmarks/daemon.py --skip saturation --lag-checks 1000 --window 4   # about 1 minute
    python benchmarks/daemon.py                          # everything, about 5 minutes
    python benchmarks/daemon.py --window 15 --rounds 3   # steadier figures, about 10 minutes
    python benchmarks/daemon.py --baseline /tmp/main --skip ratio --skip saturation --skip lag --skip latency
    scripts/bench daemon --skip saturation --skip lag --skip latency --profile 20   # where the CPU goes

What runs (every server on a free loopback port, every file in a temporary directory):

* **nginx** (Debian's ``nginx-light``, installed with apt-get when missing) answers the
  three endpoints of the journey with static JSON (``return 200 '…'``: the token
  endpoint is a POST, which nginx's static file module refuses) and plays InfluxDB
  Its access log counts the steps, independently of the prober.
* **prober run -c <generated config>** as a real subprocess: N checks (in sites of 10)
  of a 3-step journey shaped like a real configuration — form POST for a token (fresh
  connection), accounts (through a same-origin redirect, so the redirect guard runs),
  balances (reused connection); site secrets in the form and in a header (so the run's
  redactor holds them and the token extracted as secret), header templates with run
  values (``{{ uuid() }}``, ``{{ run.now }}``, ``{{ run.id }}-{{ run.check }}``), JMESPath
  filter expressions (``balances[?balanceType=='CLBD']…``) in assertions and extraction,
  phase timing, results written to "InfluxDB" (the sidecar). CPU from
  ``/proc/<pid>/stat`` (utime + stime, children included).
* **prometheus-blackbox-exporter** (Debian package, installed when missing) with an
  ``http`` module and a body regex, probing the balances endpoint through ``/probe`` at
  the rate the prober reached, driven two ways (``--blackbox-driver``): by ``h2load``
  (Debian's ``nghttp2-client``; HTTP/1.1, kept-alive connections, ``Accept-Encoding:
  gzip`` as Prometheus sends), a load generator outside Python, and by a small asyncio
  client. The driver's own work shows in blackbox's CPU (the Python client's many
  concurrent connections cost blackbox more), so the ratio is printed for each.
* **benchmarks/sidecar.py** (aiohttp, own process): a target that answers after a known
  delay (nginx cannot delay), and the InfluxDB every daemon writes to, which keeps the
  daemon's self-reported schedule lag (``prober`` points, every second) and the
  durations of the delayed step.

What it prints:

1. **CPU per step, prober / blackbox** — rounds of a prober window then a blackbox window
   per driver (``--rounds``, ``--window``), N = ``--checks`` every ``--interval``; the
   ratio of the totals per driver (target <= 0.5).
2. **Saturation** — the rate is ramped (more checks every ``--interval``) until the
   daemon falls behind (steps served < 95 % of planned), its CPU reaches 95 % of a core
   or the lag p99 (median of the per-second reports) exceeds 100 ms; prints steps/s per
   level and the most reached. It runs ``prober run --workers N`` with one worker per CPU
   (``--saturation-workers``): the throughput of the machine. ``--workers N`` does the
   same in the ratio and lag sections (default 1, the default of ``prober run``); CPU and
   RSS are the whole process tree's.
3. **Schedule lag** at 1,000 and 5,000 checks (``--lag-checks``), both at
   ``--lag-rate`` steps/s: p99 from the daemon's per-second self-reports
   (``schedule_lag_ms``, the p99 of the runs started in that second), their median and
   the worst within the window; p50 from the daemon's ``/status`` (its last 10,000
   runs, startup included); and
   **RSS** per check (VmRSS, and the difference between the two sizes per added check).
4. **Latency overhead under load** — with ``--latency-load`` steps/s of other checks
   running (300, where the goal is set), ``--latency-checks``
   two-step journeys whose second step waits ``--delay-ms`` at the sidecar; the step's
   duration as the daemon writes it to InfluxDB, next to a bare blocking socket timing
   the same request in this process at the same time.
5. **Side by side** (``--baseline DIR``, optional) — another tree of the project (say,
   main before a change) run at the same time as this one, the same checks each,
   steps told apart in nginx's log by User-Agent: both CPU per step from windows under
   the very same machine load, the fairest before/after on a shared machine.
6. **Where the CPU goes** (``--profile SECONDS``, optional) — the ratio's daemon once
   more, sampled by py-spy from outside for that long (``benchmarks/pyspy.py``): self
   time by function and by area (project module, library, standard library) and the
   inclusive share of each project module. py-spy is in ``requirements/bench.txt``;
   ``scripts/bench daemon …`` installs it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import pyspy
from benchmarks.support import free_port, free_port_run, proc_cpu, timed_request, wait_http

TOKEN_JSON = ('{"access_token":"eyJhbGciOiJIUzI1NiJ9.c2ltdWxhdGVkLXRva2Vu.aW4tYmVuY2htYXJr",'
              '"token_type":"Bearer","expires_in":3600}')
ACCOUNTS_JSON = json.dumps({"accounts": [
    {"resourceId": f"ACC-{i}", "iban": f"FR76300060000112345678901{i}", "currency": "EUR",
     "name": "Compte courant", "cashAccountType": "CACC", "status": "enabled",
     "_links": {"balances": {"href": f"/accounts/ACC-{i}/balances"}}} for i in range(1, 4)]},
    separators=(",", ":"))
BALANCES_JSON = json.dumps({"balances": [
    {"balanceType": "CLBD", "balanceAmount": {"amount": "1523.45", "currency": "EUR"}, "referenceDate": "2026-11-23"},
    {"balanceType": "XPCD", "balanceAmount": {"amount": "1498.10", "currency": "EUR"}, "referenceDate": "2026-11-23"}]},
    separators=(",", ":"))

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    log_format steps '$msec $status $request_method $uri $http_user_agent';
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    client_body_buffer_size 1m;
    client_max_body_size 64m;
    keepalive_requests 1000000;
    absolute_redirect off;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        default_type application/json;
        location = /oauth/token {{ access_log {tmp}/steps.log steps; return 200 '{token}'; }}
        location = /v1/accounts {{ return 302 /accounts; }}
        location = /accounts {{ access_log {tmp}/steps.log steps; return 200 '{accounts}'; }}
        location ~ ^/accounts/[^/]+/balances$ {{ access_log {tmp}/steps.log steps; return 200 '{balances}'; }}
        location = /ping {{ return 200 'ok'; }}
    }}
}}
"""

BLACKBOX_YML = """modules:
  http_body:
    prober: http
    timeout: 5s
    http:
      method: GET
      fail_if_body_not_matches_regexp: ['"balanceType":"CLBD"']
"""

HEAD = """
[prober]
location = "bench"
instance = "bench"

[daemon]
health_listen = "127.0.0.1:{health}"
state_dir = "{tmp}/state-{tag}"
log_level = "warning"
self_report_interval = "1s"

[influxdb]
url = "{influx}"
api = "v1"
database = "bench"
spool_dir = "{tmp}/spool-{tag}"
"""

SITE = """
[[sites]]
name = "bank-{s:04d}"
base_url = "{url}"
timeout = "5s"
headers = {{ "User-Agent" = "{agent}" }}
[sites.vars]
username = "probe-user-1"
[sites.secrets]
password = "s3cret-pw"
api_key = "k-3f9a1c7e5b2d4086"
"""

JOURNEY = """
[[sites.checks]]
name = "accounts-{i}"
kind = "accounts"
interval = "{interval_ms}ms"
timeout = "{timeout_ms}ms"

  [[sites.checks.steps]]
  name = "token"
  method = "POST"
  path = "/oauth/token"
  headers = {{ "X-API-Key" = "{{{{ api_key }}}}" }}
  form = {{ grant_type = "password", username = "{{{{ username }}}}", password = "{{{{ password }}}}" }}
  status = 200
  expect = [ {{ json = "token_type", equals = "Bearer" }} ]
  extract = {{ token = {{ json = "access_token" }} }}

  [[sites.checks.steps]]
  name = "accounts"
  path = "/v1/accounts"
  headers = {{ Authorization = "Bearer {{{{ token }}}}", "X-API-Key" = "{{{{ api_key }}}}", "X-Request-ID" = "{{{{ uuid() }}}}", "X-Request-Time" = "{{{{ run.now }}}}" }}
  expect = [ {{ json = "accounts", min_length = 1 }}, {{ json = "accounts[?currency=='EUR'] | length(@)", gt = 0 }} ]
  extract = {{ account_id = {{ json = "accounts[?status=='enabled' && cashAccountType=='CACC'].resourceId | [0]" }} }}

  [[sites.checks.steps]]
  name = "balances"
  path = "/accounts/{{{{ account_id }}}}/balances"
  headers = {{ Authorization = "Bearer {{{{ token }}}}", "X-API-Key" = "{{{{ api_key }}}}", "X-Request-ID" = "{{{{ uuid() }}}}", "X-Correlation-ID" = "{{{{ run.id }}}}-{{{{ run.check }}}}" }}
  expect = [ {{ json = "balances[?balanceType=='CLBD'].balanceAmount.amount | [0]", gt = 0, description = "closing balance" }},
             {{ json = "balances[?balanceType=='XPCD'] | [0].balanceAmount.currency", equals = "EUR" }} ]
"""  # noqa: E501 - a TOML inline table is one line

LATENCY_SITE = """
[[sites]]
name = "delayed"
base_url = "{url}"
timeout = "5s"
"""

LATENCY_CHECK = """
[[sites.checks]]
name = "delayed-{i}"
kind = "custom"
interval = "1s"
timeout = "1s"
  [[sites.checks.steps]]
  name = "connect"
  path = "/fast"
  [[sites.checks.steps]]
  name = "delayed"
  path = "/delay"
"""

STEPS_PER_JOURNEY = 3


# -- helpers ---------------------------------------------------------------------------

def ensure_debian(binary: str, package: str) -> str:
    """The path of ``binary``, installing Debian's ``package`` first when it is missing
    (with the same apt helper as scripts/test)."""
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin")
    if found:
        return found
    subprocess.run(["bash", "-c", f'. scripts/venv.sh && apt_install "{package}"'], cwd=ROOT, check=True)
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin")
    if not found:
        raise RuntimeError(f"{package} installed but {binary} is not on PATH")
    return found


def proc_children(pid: int) -> list[int]:
    """The child processes of ``pid`` (a supervisor's workers)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def proc_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(len(ordered) * q / 100) - 1))]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


class StepLog:
    """Counts the requests nginx served for the journey endpoints since the last mark."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def since_mark(self, agent: str | None = None) -> tuple[int, int]:
        """(requests answered 200, other answers), of one User-Agent or of all."""
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        wanted = agent.encode() if agent is not None else None
        ok = other = 0
        for line in data.splitlines():
            parts = line.split()
            if wanted is not None and parts[-1:] != [wanted]:
                continue
            if len(parts) >= 2 and parts[1] == b"200":
                ok += 1
            else:
                other += 1
        return ok, other


# -- servers ---------------------------------------------------------------------------

@dataclass
class Servers:
    tmp: Path
    nginx_url: str
    steps: StepLog
    sidecar_url: str
    blackbox_url: str
    blackbox_pid: int
    procs: list[subprocess.Popen] = field(default_factory=list)

    def figures(self, what: str) -> list[float]:
        """What the sidecar kept since :meth:`forget`: ``lags`` or ``delayed``."""
        with urllib.request.urlopen(f"{self.sidecar_url}/{what}", timeout=10) as resp:
            return json.loads(resp.read())

    def forget(self, what: str) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.sidecar_url}/{what}", method="DELETE"), timeout=10)

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def start_servers(tmp: Path, delay_ms: float) -> Servers:
    nginx = ensure_debian("nginx", "nginx-light")
    blackbox = ensure_debian("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")
    procs: list[subprocess.Popen] = []
    try:
        port = free_port()
        (tmp / "nginx.conf").write_text(NGINX_CONF.format(
            tmp=tmp, port=port, token=TOKEN_JSON, accounts=ACCOUNTS_JSON, balances=BALANCES_JSON))
        procs.append(subprocess.Popen([nginx, "-c", str(tmp / "nginx.conf"), "-p", str(tmp)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        nginx_url = f"http://127.0.0.1:{port}"
        wait_http(nginx_url + "/ping")

        side_port = free_port()
        procs.append(subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "sidecar.py"), "--port",
                                       str(side_port), "--delay-ms", str(delay_ms)], cwd=ROOT))
        sidecar_url = f"http://127.0.0.1:{side_port}"
        wait_http(sidecar_url + "/fast")

        bb_port = free_port()
        (tmp / "blackbox.yml").write_text(BLACKBOX_YML)
        bb = subprocess.Popen([blackbox, f"--config.file={tmp / 'blackbox.yml'}",
                               f"--web.listen-address=127.0.0.1:{bb_port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(bb)
        blackbox_url = f"http://127.0.0.1:{bb_port}"
        wait_http(blackbox_url + "/metrics")
    except BaseException:
        for proc in procs:
            proc.kill()
        raise
    return Servers(tmp, nginx_url, StepLog(tmp / "steps.log"), sidecar_url, blackbox_url, bb.pid, procs)


# -- the daemon --------------------------------------------------------------------------

def write_config(servers: Servers, tag: str, checks: int, interval: float, *, latency_checks: int = 0,
                 agent: str = "bank-prober", workers: int = 1) -> tuple[Path, int]:
    health = free_port_run(workers + 1 if workers > 1 else 1)
    parts = [HEAD.format(health=health, tmp=servers.tmp, tag=tag, influx=servers.sidecar_url)]
    interval_ms = round(interval * 1000)
    timeout_ms = min(interval_ms, 5000)
    for i in range(checks):
        if i % 10 == 0:
            parts.append(SITE.format(s=i // 10, url=servers.nginx_url, agent=agent))
        parts.append(JOURNEY.format(i=i, interval_ms=interval_ms, timeout_ms=timeout_ms))
    if latency_checks:
        parts.append(LATENCY_SITE.format(url=servers.sidecar_url))
        parts.extend(LATENCY_CHECK.format(i=i) for i in range(latency_checks))
    path = servers.tmp / f"prober-{tag}.toml"
    path.write_text("".join(parts))
    return path, health


@dataclass
class Window:
    """What one daemon (or several) did during a measurement window."""

    seconds: float
    cpu_s: float
    steps: int
    failed_requests: int
    lag_p50: float
    lag_p99: float
    """The median of the per-second p99s the daemon reported during the window."""
    lag_p99_worst: float
    """The worst of them."""
    missed: int
    rss_kb: int
    planned_steps_per_s: float

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds

    @property
    def cpu_ms_per_step(self) -> float:
        return self.cpu_s * 1000.0 / self.steps if self.steps else float("nan")

    @property
    def cpu_share(self) -> float:
        """CPU of the prober processes together, in cores."""
        return self.cpu_s / self.seconds


class Daemons:
    """``prober run`` processes, each with its own configuration; ``workers`` above 1 runs
    each as ``prober run --workers N`` (a supervisor on the configured health port, which
    lists its workers' ports in its ``/status``)."""

    def __init__(self, servers: Servers, tag: str, configs: list[tuple[Path, int]],
                 roots: list[Path] | None = None, workers: int = 1) -> None:
        self.servers = servers
        self.tag = tag
        self.configs = configs
        self.workers = workers
        self.roots = roots or [ROOT] * len(configs)
        """The tree of the project each process runs (``--baseline`` runs another one)."""
        self.procs: list[subprocess.Popen] = []
        self.ports: list[int] = []
        """Every process's own health port (each worker's, with ``workers``)."""

    def __enter__(self) -> Daemons:
        for n, ((path, _health), root) in enumerate(zip(self.configs, self.roots, strict=True)):
            log = (self.servers.tmp / f"prober-{self.tag}-{n}.log").open("wb")
            workers = ["--workers", str(self.workers)] if self.workers > 1 else []
            self.procs.append(subprocess.Popen([sys.executable, "-m", "prober", "run", "-c", str(path), *workers],
                                               cwd=self.servers.tmp, stdout=log, stderr=subprocess.STDOUT,
                                               env={**os.environ, "PYTHONPATH": str(root)}))
        for proc, (_path, health) in zip(self.procs, self.configs, strict=True):
            self._wait(proc, health)  # a supervisor answers 200 once every worker does
            ports = self._worker_ports(health)
            for port in ports:
                self._wait(proc, port)
            self.ports.extend(ports)
        return self

    def _wait(self, proc: subprocess.Popen, port: int) -> None:
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", timeout=120.0)
        except RuntimeError:
            if proc.poll() is not None:
                log_text = (self.servers.tmp / f"prober-{self.tag}-0.log").read_text()[-2000:]
                raise RuntimeError(f"prober run exited {proc.returncode}:\n{log_text}") from None
            raise

    def _worker_ports(self, health: int) -> list[int]:
        """The health ports of the processes that probe: the supervisor's /status lists
        its workers' (a tree run as ``--baseline`` from before the supervisor answered
        there has worker k on the configured port + k - 1)."""
        if self.workers == 1:
            return [health]
        workers = get_json(f"http://127.0.0.1:{health}/status").get("workers")
        if isinstance(workers, list):
            return [w["port"] for w in workers]
        return [health + k for k in range(self.workers)]

    def __exit__(self, *_exc: object) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def health_ports(self) -> list[int]:
        """Every process's own health port (each worker's, with ``workers``)."""
        return list(self.ports)

    def pids(self) -> list[int]:
        """Every prober process: the ones started, and their workers."""
        return [pid for proc in self.procs for pid in [proc.pid, *proc_children(proc.pid)]]

    def measure(self, warmup: float, seconds: float, planned_steps_per_s: float) -> Window:
        time.sleep(warmup)
        self.servers.steps.mark()
        self.servers.forget("lags")
        pids = self.pids()
        cpu0 = [proc_cpu(pid) for pid in pids]
        t0 = time.monotonic()
        time.sleep(seconds)
        cpu1 = [proc_cpu(pid) for pid in pids]
        elapsed = time.monotonic() - t0
        ok, other = self.servers.steps.since_mark()
        lags = self.servers.figures("lags")
        statuses = [get_json(f"http://127.0.0.1:{health}/status")["scheduler"] for health in self.health_ports()]
        return Window(
            seconds=elapsed,
            cpu_s=sum(cpu1) - sum(cpu0),
            steps=ok,
            failed_requests=other,
            lag_p50=max(s["schedule_lag_ms"]["p50"] for s in statuses),
            lag_p99=pct(lags, 50),
            lag_p99_worst=max(lags, default=float("nan")),
            missed=sum(s["missed"] for s in statuses),
            rss_kb=sum(proc_rss_kb(pid) for pid in pids),
            planned_steps_per_s=planned_steps_per_s,
        )


def journey_passes(servers: Servers) -> None:
    """Run the measured journey once with ``prober check``: a benchmark of a journey whose
    assertions fail would measure the failure path. Raises with the output otherwise."""
    path, _health = write_config(servers, "sanity", 1, 2.0)
    done = subprocess.run([sys.executable, "-m", "prober", "check", "-c", str(path), "--json"],
                          cwd=servers.tmp, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise RuntimeError(f"the benchmark's journey does not pass:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")


def run_daemon(servers: Servers, tag: str, checks: int, interval: float, args: argparse.Namespace,
               warmup: float | None = None, workers: int | None = None) -> Window:
    """``prober run`` (with ``--workers``, or ``workers``) on ``checks`` checks, one measured window."""
    workers = workers or args.workers
    configs = [write_config(servers, tag, checks, interval, workers=workers)]
    with Daemons(servers, tag, configs, workers=workers) as daemons:
        return daemons.measure(args.warmup if warmup is None else warmup, args.window,
                               checks * STEPS_PER_JOURNEY / interval)


def paired_window(servers: Servers, tag: str, baseline: Path, args: argparse.Namespace) -> tuple[float, float]:
    """This tree and ``baseline`` side by side, the same checks each, one window:
    (CPU ms per step of this tree, of the baseline)."""
    configs = [write_config(servers, f"{tag}-{who}", args.checks, args.interval, agent=f"bank-prober-{who}")
               for who in ("this", "base")]
    with Daemons(servers, tag, configs, roots=[ROOT, baseline]) as daemons:
        time.sleep(args.warmup)
        servers.steps.mark()
        cpu0 = [proc_cpu(p.pid) for p in daemons.procs]
        time.sleep(args.window)
        cpu1 = [proc_cpu(p.pid) for p in daemons.procs]
        steps = [servers.steps.since_mark(f"bank-prober-{who}")[0] for who in ("this", "base")]
    this, base = ((b - a) * 1000.0 / max(n, 1) for a, b, n in zip(cpu0, cpu1, steps, strict=True))
    return this, base


def profile_daemon(servers: Servers, args: argparse.Namespace) -> list[str]:
    """The ratio's daemon (``--checks`` every ``--interval``) sampled by py-spy for
    ``--profile`` seconds after the warm-up: the printable summary."""
    configs = [write_config(servers, "profile", args.checks, args.interval)]
    with Daemons(servers, "profile", configs) as daemons:
        time.sleep(args.warmup)
        servers.steps.mark()
        cpu0 = proc_cpu(daemons.procs[0].pid)
        raw = pyspy.record(daemons.procs[0].pid, args.profile, args.profile_raw or servers.tmp / "profile.raw")
        cpu = proc_cpu(daemons.procs[0].pid) - cpu0
        steps, _ = servers.steps.since_mark()
    summary = pyspy.summarize(raw, ROOT)
    return [f"CPU {cpu * 1000 / max(steps, 1):.3f} ms/step while sampled ({steps:,} steps)",
            *pyspy.report(summary)]


# -- blackbox ----------------------------------------------------------------------------

async def drive_blackbox(servers: Servers, rate: float, seconds: float) -> tuple[int, int]:
    """Probes at ``rate`` per second for ``seconds``; returns (successful, failed)."""
    target = f"{servers.nginx_url}/accounts/ACC-1/balances"
    url = f"{servers.blackbox_url}/probe?module=http_body&target={target}"
    ok = failed = 0
    limit = asyncio.Semaphore(256)
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def probe() -> None:
            nonlocal ok, failed
            async with limit:
                async with session.get(url) as resp:
                    body = await resp.text()
            if "probe_success 1" in body:
                ok += 1
            else:
                failed += 1

        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = []
        i = 0
        while (due := start + i / rate) < start + seconds:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(probe()))
            i += 1
        await asyncio.gather(*tasks)
    return ok, failed


H2LOAD_CLIENT_RPS = 100
"""Probes per second each h2load client (one kept-alive connection) sends at most."""


def drive_blackbox_h2load(servers: Servers, rate: float, seconds: float) -> tuple[int, int]:
    """Probes at ``rate`` per second for ``seconds`` from ``h2load`` (HTTP/1.1, kept-alive
    connections, ``Accept-Encoding: gzip`` as Prometheus scrapes); (probes answered 2xx,
    others). h2load cannot read the body, so ``probe_success`` is checked by nginx's
    count of the balances requests blackbox made (see :func:`blackbox_window`)."""
    h2load = ensure_debian("h2load", "nghttp2-client")
    clients = max(1, -(-round(rate) // H2LOAD_CLIENT_RPS))
    url = f"{servers.blackbox_url}/probe?module=http_body&target={servers.nginx_url}/accounts/ACC-1/balances"
    done = subprocess.run([h2load, "--h1", "-c", str(clients), "--rps", f"{rate / clients:.3f}",
                           "-D", f"{seconds:g}", "-H", "Accept-Encoding: gzip", url],
                          capture_output=True, text=True, check=True)
    for line in done.stdout.splitlines():
        if line.startswith("status codes:"):
            # "status codes: 600 2xx, 0 3xx, 0 4xx, 0 5xx"
            counts = [int(part.split()[0]) for part in line.removeprefix("status codes:").split(",")]
            return counts[0], sum(counts[1:])
    raise RuntimeError(f"h2load printed no status codes:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def drive(servers: Servers, driver: str, rate: float, seconds: float) -> tuple[int, int]:
    if driver == "h2load":
        return drive_blackbox_h2load(servers, rate, seconds)
    return asyncio.run(drive_blackbox(servers, rate, seconds))


def blackbox_window(servers: Servers, rate: float, seconds: float, driver: str) -> tuple[float, int, int, int]:
    """(CPU seconds, probes ok, probes failed, requests nginx served) over one window.

    With h2load "ok" is what nginx served the probes with 200 (every probe makes exactly
    one balances request), and "failed" the probes answered other than 2xx by blackbox.
    """
    drive(servers, driver, rate, 1.0)  # warm-up
    servers.steps.mark()
    cpu0 = proc_cpu(servers.blackbox_pid)
    ok, failed = drive(servers, driver, rate, seconds)
    cpu = proc_cpu(servers.blackbox_pid) - cpu0
    served, not_ok = servers.steps.since_mark()
    if driver == "h2load":
        ok, failed = min(ok, served), failed + not_ok
    return cpu, ok, failed, served


# -- latency -----------------------------------------------------------------------------

def bare_socket_timings(url: str, seconds: float, per_second: float) -> list[float]:
    """GET /delay on one kept-alive blocking socket, one at a time, the clock read just
    before sending and after the last byte: the server's delay and loopback, nothing else."""
    host, port = url.removeprefix("http://").split(":")
    request = f"GET /delay HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    durations = []
    stop = time.monotonic() + seconds
    with socket.create_connection((host, int(port))) as sock:
        while time.monotonic() < stop:
            durations.append(timed_request(sock, request))
            time.sleep(max(0.0, 1.0 / per_second - durations[-1] / 1000.0))
    return durations


# -- main --------------------------------------------------------------------------------

def main() -> int:  # noqa: C901 - one linear script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=600, help="checks for the CPU ratio and the latency load")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between runs of each check")
    parser.add_argument("--window", type=float, default=5.0, help="seconds measured per window")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds after the daemon is up before measuring")
    parser.add_argument("--rounds", type=int, default=3, help="prober/blackbox window pairs for the ratio")
    parser.add_argument("--lag-checks", type=int, action="append", help="sizes for lag and RSS (default 1000, 5000)")
    parser.add_argument(
        "--lag-rate", type=float, default=600.0, help="steps/s for the lag sizes (interval = 3 N / rate)"
    )
    parser.add_argument("--ramp", type=float, default=1.25, help="factor between saturation levels")
    parser.add_argument("--max-levels", type=int, default=4, help="saturation levels at most")
    parser.add_argument("--workers", type=int, default=1,
                        help="prober run --workers N: worker processes sharing the checks (ratio, lag)")
    parser.add_argument("--saturation-workers", type=int, default=os.cpu_count() or 1,
                        help="prober run --workers N for the saturation section (default: one per CPU, the "
                             "throughput of the machine)")
    parser.add_argument("--latency-checks", type=int, default=20, help="delayed journeys (each every 1 s)")
    parser.add_argument("--latency-load", type=float, default=300.0,
                        help="steps/s of the other checks while the latency is measured (the goal is set at 300)")
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--blackbox-driver", action="append", choices=["h2load", "python"],
                        help="what sends blackbox_exporter its probes (default: both, each its own windows)")
    parser.add_argument("--skip", action="append", default=[], choices=["ratio", "saturation", "lag", "latency"])
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another tree of the project (e.g. git archive main | tar -x -C DIR): runs it side by "
                             "side with this one, --checks each, for --rounds windows, and prints both CPU per step")
    parser.add_argument("--profile", type=float, default=0.0, metavar="SECONDS",
                        help="after the other sections, sample the ratio's daemon with py-spy for SECONDS and "
                             "print where its CPU goes (needs py-spy: scripts/bench installs it)")
    parser.add_argument("--profile-raw", type=Path, default=None, metavar="PATH",
                        help="keep py-spy's raw stacks there (flamegraph.pl and speedscope read them)")
    args = parser.parse_args()
    if args.profile:
        pyspy.py_spy()  # before minutes of other sections: exits with the fix when missing
    lag_sizes = args.lag_checks or [1000, 5000]
    drivers = args.blackbox_driver or ["h2load", "python"]
    print(f"# command: python benchmarks/{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}".rstrip())
    print(f"# python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    summary: list[str] = []

    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmpdir:
        tmp = Path(tmpdir)
        os.chmod(tmp, 0o755)
        servers = start_servers(tmp, args.delay_ms)
        try:
            journey_passes(servers)
            per_step_guess = None
            if args.baseline is not None:
                print(f"\n## This tree and {args.baseline} side by side: {args.checks} checks each every "
                      f"{args.interval:g}s, same nginx, same windows")
                mine = theirs = 0.0
                for r in range(args.rounds):
                    this, base = paired_window(servers, f"pair{r}", args.baseline.resolve(), args)
                    mine, theirs = mine + this, theirs + base
                    print(
                        f"round {r + 1}: CPU per step {this:.3f} ms here, {base:.3f} ms baseline "
                        f"({(this / base - 1) * 100:+.1f} %)",
                        flush=True,
                    )
                summary.append(f"CPU per step side by side: {mine / args.rounds:.3f} ms here, "
                               f"{theirs / args.rounds:.3f} ms baseline ({(mine / theirs - 1) * 100:+.1f} %)")
            if "ratio" not in args.skip:
                print(f"\n## CPU per step: prober run, {args.checks} checks every {args.interval:g}s "
                      f"({args.checks * 3 / args.interval:,.0f} steps/s planned), against blackbox_exporter")
                p_cpu = p_steps = 0.0
                b_cpu = dict.fromkeys(drivers, 0.0)
                b_probes = dict.fromkeys(drivers, 0)
                for r in range(args.rounds):
                    w = run_daemon(servers, f"ratio{r}", args.checks, args.interval, args)
                    p_cpu += w.cpu_s
                    p_steps += w.steps
                    print(f"round {r + 1} prober:   {w.steps_per_s:7,.0f} steps/s, CPU {w.cpu_ms_per_step:.3f} ms/step "
                          f"({w.cpu_share * 100:.0f}% of a core), lag p50 {w.lag_p50:.1f} ms p99 {w.lag_p99:.1f} ms "
                          f"(worst second {w.lag_p99_worst:.1f} ms), non-200 answers {w.failed_requests}", flush=True)
                    for driver in drivers:
                        cpu, ok, failed, served = blackbox_window(servers, w.steps_per_s, args.window, driver)
                        b_cpu[driver] += cpu
                        b_probes[driver] += ok
                        print(f"round {r + 1} blackbox ({driver:6}): {ok / args.window:7,.0f} probes/s, CPU "
                              f"{cpu * 1000 / max(ok, 1):.3f} ms/probe (failed {failed}, nginx served {served})",
                              flush=True)
                per_step = p_cpu / p_steps * 1000
                per_step_guess = per_step
                for driver in drivers:
                    per_probe = b_cpu[driver] / max(b_probes[driver], 1) * 1000
                    summary.append(f"CPU per step prober {per_step:.3f} ms / blackbox per probe {per_probe:.3f} ms "
                                   f"(driven by {driver}) = ratio {per_step / per_probe:.2f} (target <= 0.50)")

            if "saturation" not in args.skip:
                start = 1.0 / (per_step_guess or 0.8) * 1000 * 0.7
                checks = max(10, round(start * args.interval / STEPS_PER_JOURNEY / 10) * 10)
                sat_workers = args.saturation_workers
                print(f"\n## Saturation: checks every {args.interval:g}s, {sat_workers} prober process(es), "
                      f"ramped by x{args.ramp:g}")
                best = 0.0
                for level in range(args.max_levels):
                    w = run_daemon(servers, f"sat{level}", checks, args.interval, args, workers=sat_workers)
                    core = w.cpu_share / sat_workers
                    behind = w.steps_per_s < 0.95 * w.planned_steps_per_s
                    saturated = behind or core >= 0.95 or w.lag_p99 > 100.0
                    best = max(best, w.steps_per_s)
                    print(f"{checks:6} checks: planned {w.planned_steps_per_s:7,.0f} steps/s, "
                          f"served {w.steps_per_s:7,.0f}, "
                          f"CPU {core * 100:3.0f}% of a core per process, {w.cpu_ms_per_step:.3f} ms/step, "
                          f"lag p50 {w.lag_p50:.1f} ms p99 {w.lag_p99:.1f} ms (worst second {w.lag_p99_worst:.1f} ms)"
                          f"{'  <- saturated' if saturated else ''}",
                          flush=True)
                    if saturated:
                        break
                    checks = round(checks * args.ramp / 10) * 10
                summary.append(f"steps/s at saturation ({sat_workers} process(es)): {best:,.0f} (target >= 2,000)")

            if "lag" not in args.skip:
                print(f"\n## Schedule lag and memory: {', '.join(str(n) for n in lag_sizes)} checks at "
                      f"{args.lag_rate:g} steps/s")
                rss = {}
                for n in lag_sizes:
                    interval = n * STEPS_PER_JOURNEY / args.lag_rate
                    w = run_daemon(servers, f"lag{n}", n, interval, args, warmup=max(args.warmup, min(interval, 10.0)))
                    rss[n] = w.rss_kb
                    print(f"{n:6} checks every {interval:g}s: served {w.steps_per_s:,.0f} steps/s, "
                          f"lag p50 {w.lag_p50:.1f} ms p99 {w.lag_p99:.1f} ms (worst second "
                          f"{w.lag_p99_worst:.1f} ms), missed runs {w.missed}, "
                          f"CPU {w.cpu_ms_per_step:.3f} ms/step, RSS {w.rss_kb / 1024:.0f} MB "
                          f"= {w.rss_kb / n:.1f} KB/check", flush=True)
                    summary.append(
                        f"lag at {n} checks: p50 {w.lag_p50:.1f} ms, p99 {w.lag_p99:.1f} ms (worst second "
                        f"{w.lag_p99_worst:.1f} ms; target p99 <= 20 ms at 1,000)"
                    )
                if len(rss) >= 2:
                    small, big = min(rss), max(rss)
                    per_check = (rss[big] - rss[small]) / (big - small)
                    summary.append(f"RSS: {rss[small] / small:.1f} KB/check at {small}, "
                                   f"{rss[big] / big:.1f} KB/check at {big}, "
                                   f"{per_check:.1f} KB per added check (target <= 50 KB)")

            if "latency" not in args.skip:
                load_checks = max(1, round(args.latency_load * args.interval / STEPS_PER_JOURNEY))
                print(f"\n## Latency overhead under load: {load_checks} checks every {args.interval:g}s "
                      f"({load_checks * STEPS_PER_JOURNEY / args.interval:,.0f} steps/s) plus "
                      f"{args.latency_checks} journeys whose second step waits {args.delay_ms:g} ms")
                config = write_config(servers, "latency", load_checks, args.interval,
                                      latency_checks=args.latency_checks)
                with Daemons(servers, "latency", [config]):
                    time.sleep(args.warmup)
                    servers.forget("delayed")
                    reference = bare_socket_timings(servers.sidecar_url, args.window, args.latency_checks)
                    time.sleep(1.5)  # the writer's flush interval
                    measured = servers.figures("delayed")
                prober = [d - args.delay_ms for d in measured]
                bare = [d - args.delay_ms for d in reference]
                print(f"prober step duration - delay ({len(prober)} steps): p50 {pct(prober, 50):.3f} ms, "
                      f"p99 {pct(prober, 99):.3f} ms")
                print(f"bare socket - delay ({len(bare)} requests):        p50 {pct(bare, 50):.3f} ms, "
                      f"p99 {pct(bare, 99):.3f} ms")
                summary.append(f"latency overhead over a bare socket at {args.latency_load:g} steps/s: p50 "
                               f"{pct(prober, 50) - pct(bare, 50):.3f} ms, "
                               f"p99 {pct(prober, 99) - pct(bare, 99):.3f} ms "
                               "(target p99 <= 0.5 ms at 300 steps/s)")

            if args.profile:
                print(f"\n## Where the prober's CPU goes: {args.checks} checks every {args.interval:g}s, "
                      f"py-spy for {args.profile:g}s")
                for line in profile_daemon(servers, args):
                    print(line, flush=True)
        finally:
            servers.close()

    print(f"\n## Summary (load average {os.getloadavg()[0]:.2f} at the end: other work on the machine "
          "slows every process alike; compare the ratio)")
    for line in summary:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
