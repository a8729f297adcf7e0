"""Browser checks in ``prober run``: next to API checks in one daemon, and no Chromium
left behind when the prober stops, cleanly (SIGTERM) or not (SIGKILL)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
from pathlib import Path

import pytest

from prober.simbank import BankServer
from tests.browser_helpers import chromium_pids, web_checks_config
from tests.daemon_helpers import ProberProcess, wait_for


def _fast(text: str) -> str:
    """Every check each 5 s (and no journey budget: the machine may be busy)."""
    text = re.sub(r'^interval = "\d+s"', 'interval = "5s"', text, flags=re.M)
    text = re.sub(r'^timeout = "\d+s"', 'timeout = "5s"', text, flags=re.M)
    return re.sub(r'^max_duration = "\d+s".*$', "", text, flags=re.M)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
async def test_no_chromium_outlives_prober_run(tmp_path: Path, sig: int) -> None:
    async with BankServer(port=0) as bank:
        path = tmp_path / "prober.toml"
        path.write_text(_fast(web_checks_config(bank.url, tmp_path / "state", only=("accounts", "web-accounts"))))
        daemon = await ProberProcess(["run", "-c", str(path), "--log-level", "debug"], cwd=tmp_path).start()
        assert daemon.proc is not None
        browsers: list[int] = []
        try:
            # Both kinds of checks run in the one daemon.
            await wait_for(lambda: "run " in daemon.log and "of simbank/web-accounts: ok" in daemon.log
                           and "of simbank/accounts: ok" in daemon.log, timeout=60, interval=0.2,
                           what=f"a web and an API run ({daemon.log_path})")
            browsers = chromium_pids(daemon.proc.pid)
            assert len(browsers) == 1, browsers
            daemon.signal(sig)
            code = await daemon.wait(30)
            assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL), daemon.log[-2000:]

            async def gone() -> bool:
                return all(not Path(f"/proc/{pid}").exists() for pid in browsers)

            await wait_for(gone, timeout=15, interval=0.2, what="the prober's Chromium to exit")
        finally:
            await daemon.kill()
            for pid in browsers:  # a leaked one (the test failed): only ours, by process id
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
