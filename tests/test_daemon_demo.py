"""``prober demo`` as a subprocess: without a terminal, on a pseudo-terminal, on SIGTERM."""

from __future__ import annotations

import os
import pty
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
    for check, kind in [("login", "login"), ("accounts", "accounts"), ("transfer", "transfer"),
                        ("cards", "cards"), ("card-authorisation", "payments")]:
        assert f"simbank/{check} ({kind}): ok" in out, out[-3000:]
    assert "results kept in the local spool" in done.stderr or "local spool only" in done.stderr
    assert (tmp_path / "var" / "spool").is_dir()
    assert "Traceback" not in done.stderr


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
    assert "bank-prober demo" in text and "site" in text and "payments" in text
    assert "● login ok" in text
