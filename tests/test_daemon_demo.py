"""``prober demo`` as a subprocess: without a terminal, on a pseudo-terminal, on SIGTERM."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import time
from pathlib import Path


def _demo(tmp_path: Path, *args: str, timeout: float = 40.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prober", "demo", "--port", "0", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=timeout,
    )


def test_demo_without_a_tty_prints_plain_summaries(tmp_path: Path) -> None:
    done = _demo(tmp_path, "--duration", "6", "--interval", "0.5")
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "simulated bank at http://127.0.0.1:" in out
    assert re.search(r"status page at http://127\.0\.0\.1:\d+/ ", out), out[:500]
    for check, kind in [("login", "login"), ("accounts", "accounts"), ("transfer", "transfer"),
                        ("cards", "cards"), ("card-authorisation", "payments")]:
        assert f"simbank/{check} ({kind}): ok" in out, out[-3000:]
    # Isolated: nothing of the demo stays where a later `prober run` would find it.
    assert not (tmp_path / "var").exists(), sorted(p.name for p in tmp_path.rglob("*"))
    assert "Traceback" not in done.stderr


def test_demo_ignores_influxdb_and_state_of_the_config_it_runs(tmp_path: Path) -> None:
    """A config with [influxdb] and a state_dir: the demo writes to neither."""
    from prober.defaults import default_config

    config = tmp_path / "with-influx.toml"
    config.write_text(default_config().read_text() + """
[influxdb]
url = "http://127.0.0.1:9"
api = "v1"
database = "prod"

[daemon]
state_dir = "prod-state"
health_listen = ""
""")
    done = _demo(tmp_path, "-c", str(config), "--duration", "3", "--interval", "0.5")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "simbank/accounts (accounts): ok" in done.stdout, done.stdout[-2000:]
    assert "127.0.0.1:9" not in done.stderr  # never tried the configured InfluxDB
    assert not (tmp_path / "prod-state").exists() and not (tmp_path / "var").exists()


def test_demo_shows_an_incident_open_on_its_capability_then_resolved(tmp_path: Path) -> None:
    """zero-balances: accounts answer 200 with wrong data from 5 s to 15 s of the cycle."""
    done = _demo(tmp_path, "--duration", "21", "--interval", "0.5", "--scenario", "zero-balances", timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    summaries = done.stdout.split("\n[")
    during = [s for s in summaries if "OPEN simbank/accounts since" in s]
    assert during, done.stdout[-4000:]
    assert "simbank: login ok, accounts outage, transfer ok" in during[0]
    assert "fails at balances (assertion)" in during[0]
    assert "RESOLVED simbank/accounts" in summaries[-1], summaries[-1]
    assert "OPEN" not in summaries[-1]
    assert not [line for line in done.stdout.splitlines() if "OPEN" in line and "accounts" not in line]


def test_demo_scenario_reaches_the_bank(tmp_path: Path) -> None:
    done = _demo(tmp_path, "--scenario", "nope", timeout=20)
    assert done.returncode == 2 and "unknown scenario 'nope'" in done.stderr
    from prober.bank import SCENARIOS

    name = next(iter(SCENARIOS))
    done = _demo(tmp_path, "--duration", "2", "--interval", "0.5", "--scenario", name)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"(scenario: {name})" in done.stdout


def test_demo_live_view_on_a_terminal_and_sigterm(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "prober", "demo", "--port", "0", "--interval", "0.5"],
        cwd=tmp_path, stdin=slave, stdout=slave, stderr=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "160", "LINES": "40", "TERM": "xterm"},
    )
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline and b"ok" not in output.split(b"bank-prober demo", 1)[-1]:
            try:
                output += os.read(master, 65536)
            except OSError:
                break
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = output.decode(errors="replace")
    assert code == 0, text[-2000:]
    assert "bank-prober demo" in text and "capability × bank" in text and "payments" in text
    assert "● OK" in text and "login ok" in text
