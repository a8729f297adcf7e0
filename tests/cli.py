"""Run the ``prober`` command as a real subprocess from async tests."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SIMBANK_CONFIG = REPO / "config" / "simbank.toml"


def example_dir(tmp_path: Path, name: str) -> Path:
    """A config directory: the shipped example ``name`` as it is, and a state_dir in tmp_path."""
    config = tmp_path / "config"
    config.mkdir()
    shutil.copy(REPO / "config" / name, config / name)
    (config / "daemon.toml").write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n')
    return config


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def by_check(self) -> dict[str, dict[str, Any]]:
        return {r["check"]: r for r in self.json_lines()}


async def run_prober(*args: str, env: dict[str, str] | None = None, timeout: float = 60.0) -> Completed:
    """``python -m prober ARGS`` with ``env`` added to a clean environment."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SIMBANK_", "PROBER_"))}
    full_env.update(env or {})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "prober", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=full_env, cwd=REPO,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return Completed(proc.returncode or 0, out.decode(), err.decode())


async def check_simbank(bank_url: str, *checks: str, env: dict[str, str] | None = None,
                        config: Path = SIMBANK_CONFIG) -> Completed:
    """``prober check --json`` of the shipped simulated-bank config against ``bank_url``."""
    selection = [arg for name in checks for arg in ("--check", name)]
    return await run_prober("check", "-c", str(config), "--json", *selection,
                            env={"SIMBANK_URL": bank_url, **(env or {})})
