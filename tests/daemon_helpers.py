"""Shared helpers of the daemon tests: configuration builders and a subprocess wrapper.

No tests here: pytest does not collect this module (its name does not start with ``test_``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prober.daemon.service import ProberService
from prober.loading import load
from prober.results import JourneyResult
from prober.writer.writer import ResultWriter

TOKEN = """
  [[sites.checks.steps]]
  name = "token"
  method = "POST"
  path = "/oauth/token"
  form = {{ grant_type = "password", username = "{{{{ username }}}}", password = "{{{{ password }}}}" }}
  status = 200
  extract = {{ token = {{ json = "access_token" }} }}
"""

CHECKS: dict[str, str] = {
    "login": """
[[sites.checks]]
name = "{name}"
kind = "login"
interval = "{interval}"
timeout = "{timeout}"
""" + TOKEN,
    "accounts": """
[[sites.checks]]
name = "{name}"
kind = "accounts"
interval = "{interval}"
timeout = "{timeout}"
""" + TOKEN + """
  [[sites.checks.steps]]
  name = "list"
  path = "/accounts"
  headers = {{ Authorization = "Bearer {{{{ token }}}}" }}
  expect = [ {{ json = "accounts", min_length = 1 }} ]
""",
    # The accounts list, then a cleanup step on the same capability that always runs:
    # with a `hang` fault on accounts, a run lasts timeout + cleanup timeout.
    "accounts-cleanup": """
[[sites.checks]]
name = "{name}"
kind = "accounts"
interval = "{interval}"
timeout = "{timeout}"
""" + TOKEN + """
  [[sites.checks.steps]]
  name = "list"
  path = "/accounts"
  headers = {{ Authorization = "Bearer {{{{ token }}}}" }}

  [[sites.checks.steps]]
  name = "cleanup"
  path = "/accounts"
  headers = {{ Authorization = "Bearer {{{{ token }}}}" }}
  timeout = "{cleanup_timeout}"
  always_run = true
""",
    "payments": """
[[sites.checks]]
name = "{name}"
kind = "payments"
interval = "{interval}"
timeout = "{timeout}"
""" + TOKEN + """
  [[sites.checks.steps]]
  name = "funds"
  method = "POST"
  path = "/funds-confirmations"
  headers = {{ Authorization = "Bearer {{{{ token }}}}" }}
  json = {{ account = {{ iban = "FR7630006000011234567890189" }}, instructedAmount = {{ amount = "10.00", currency = "EUR" }} }}
  expect = [ {{ json = "fundsAvailable", equals = true }} ]
""",  # noqa: E501 - a TOML inline table is one line
    "cards": """
[[sites.checks]]
name = "{name}"
kind = "cards"
interval = "{interval}"
timeout = "{timeout}"
""" + TOKEN + """
  [[sites.checks.steps]]
  name = "list"
  path = "/cards"
  headers = {{ Authorization = "Bearer {{{{ token }}}}" }}
  extract = {{ card_id = {{ json = "cards[0].cardId" }} }}

  [[sites.checks.steps]]
  name = "freeze"
  method = "POST"
  path = "/cards/{{{{ card_id }}}}/freeze"
  headers = {{ Authorization = "Bearer {{{{ token }}}}" }}
  expect = [ {{ json = "status", equals = "FROZEN" }} ]

  [[sites.checks.steps]]
  name = "limits"
  path = "/cards/{{{{ card_id }}}}/limits"
  headers = {{ Authorization = "Bearer {{{{ token }}}}" }}

  [[sites.checks.steps]]
  name = "unfreeze"
  method = "POST"
  path = "/cards/{{{{ card_id }}}}/unfreeze"
  headers = {{ Authorization = "Bearer {{{{ token }}}}" }}
  expect = [ {{ json = "status", equals = "ACTIVE" }} ]
  always_run = true
""",
}


def check(template: str, name: str | None = None, interval: str = "300ms", timeout: str | None = None,
          cleanup_timeout: str = "600ms") -> str:
    return CHECKS[template].format(
        name=name or template, interval=interval, timeout=timeout or interval, cleanup_timeout=cleanup_timeout
    )


def config_text(
    base_url: str,
    checks: list[str],
    *,
    daemon: dict[str, Any] | None = None,
    influxdb: dict[str, Any] | None = None,
    password: str = "s3cret-pw",
    site: str = "simbank",
) -> str:
    parts = []
    settings = {"health_listen": "", "self_report_interval": "1s", **(daemon or {})}
    parts.append("[daemon]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()))
    if influxdb:
        parts.append("[influxdb]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in influxdb.items()))
    parts.append(
        f'[[sites]]\nname = "{site}"\nbase_url = "{base_url}"\ntimeout = "2s"\n'
        f'[sites.vars]\nusername = "alice"\n[sites.secrets]\npassword = "{password}"\n'
    )
    parts.extend(checks)
    return "\n".join(parts)


class Recorder:
    """A result consumer that keeps every result (for assertions)."""

    def __init__(self) -> None:
        self.results: list[JourneyResult] = []

    def consume(self, result: JourneyResult) -> None:
        self.results.append(result)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def of(self, check: str) -> list[JourneyResult]:
        return [r for r in self.results if r.check == check]


def http_json(url: str, timeout: float = 5.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def get_json(url: str) -> tuple[int, Any]:
    return await asyncio.to_thread(http_json, url)


async def checks_failing(port: int, checks: int, runs: int = 2) -> bool:
    """Whether the ``/status`` on ``port`` lists ``checks`` checks, each with at least
    ``runs`` runs and an error (False while the daemon does not answer yet)."""
    try:
        _, doc = await get_json(f"http://127.0.0.1:{port}/status")
    except OSError:
        return False
    return len(doc["checks"]) == checks and all(c["runs"] >= runs and c["error"] for c in doc["checks"])


class ProberProcess:
    """``prober run`` (or any prober command) as a real subprocess, in ``cwd``.

    ``preexec_fn`` runs in the child before it starts (e.g. to set resource limits).
    """

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None, preexec_fn=None) -> None:
        self.args = args
        self.preexec_fn = preexec_fn
        self.cwd = cwd
        self.env = {**os.environ, **(env or {})}
        self.log_path = cwd / "prober.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> ProberProcess:
        self._log = self.log_path.open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "prober", *self.args, cwd=self.cwd, env=self.env,
            stdout=self._log, stderr=asyncio.subprocess.STDOUT, preexec_fn=self.preexec_fn,
        )
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        finally:
            self._log.close()

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
            self._log.close()


async def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05, what: str = "condition") -> None:
    """Poll ``predicate`` (sync or async) until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def service_for(tmp_path: Path, text: str, recorder: Recorder) -> ProberService:
    """A service for the configuration ``text``, results kept by ``recorder``, no database."""
    path = tmp_path / "prober.toml"
    path.write_text(text)
    return ProberService(load(path), writer=ResultWriter(None, spool_dir=tmp_path / "spool"), consumers=[recorder])


async def peak_while_running(service: ProberService, seconds: float, measure: Callable[[], int]) -> int:
    """Start ``service``, run it ``seconds``, stop it; the highest ``measure()`` seen."""
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, measure())
            await asyncio.sleep(0.005)

    await service.start()
    watcher = asyncio.create_task(watch())
    await asyncio.sleep(seconds)
    watcher.cancel()
    await service.stop(grace=2.0)
    return peak


SITE = """
[[sites]]
name = "s"
base_url = "http://127.0.0.1:8480"
[[sites.checks]]
name = "c"
kind = "login"
  [[sites.checks.steps]]
  name = "x"
  path = "/"
"""
"""The smallest valid site: one login check of one step (for configuration tests)."""
