"""Log level and format of real ``prober run`` and ``prober check`` processes, read from
their stderr: ``prober --log-level L run`` (global), ``prober run --log-level L`` (the
command's own) and ``[daemon] log_level``.

Precedence (README, Commands): the command's option, then the global one, then
``[daemon]``; its default is ``info`` for ``prober run`` and ``warning`` elsewhere.
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest

from prober.simbank import BankServer
from tests.cli import run_prober
from tests.daemon_helpers import ProberProcess, check, config_text, wait_for

pytestmark = pytest.mark.servers

LEVEL = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR) ", re.MULTILINE)
JOURNEY_DEBUG = re.compile(r"DEBUG +prober\.journey: run \w+ of simbank/accounts: ok in [\d.]+ ms, 2 steps")


async def _run_log(bank: BankServer, tmp_path: Path, options: list[str], daemon: dict[str, str]) -> str:
    """Everything a ``prober OPTIONS`` (a ``run`` command line) process logged over a few
    runs of its check, and its clean stop."""
    (tmp_path / "prober.toml").write_text(
        config_text(bank.url, [check("accounts", interval="300ms")], daemon={"jitter": 0.0, **daemon}))
    prober = await ProberProcess(options, tmp_path).start()
    try:
        await wait_for(lambda: bank.state.requests["accounts"] >= 3, timeout=30, what="three runs")
        prober.signal(signal.SIGTERM)
        assert await prober.wait(20) == 0, prober.log[-3000:]
    finally:
        await prober.kill()
    assert "Traceback" not in prober.log
    return prober.log


RUN = ["run", "-c", "prober.toml"]

# (id, command line, [daemon] settings, the lowest level expected in the log)
LEVEL_CASES = [
    ("default-is-info", RUN, {}, "INFO"),
    ("global-option", ["--log-level", "debug", *RUN], {}, "DEBUG"),
    ("command-option", [*RUN, "--log-level", "debug"], {}, "DEBUG"),
    ("daemon-section", RUN, {"log_level": "debug"}, "DEBUG"),
    ("global-option-beats-daemon-section", ["--log-level", "warning", *RUN], {"log_level": "debug"}, "WARNING"),
    ("command-option-beats-daemon-section", [*RUN, "--log-level", "debug"], {"log_level": "warning"}, "DEBUG"),
    ("command-option-beats-global-option-down", ["--log-level", "debug", *RUN, "--log-level", "warning"], {},
     "WARNING"),
    ("command-option-beats-global-option-up", ["--log-level", "error", *RUN, "--log-level", "debug"], {}, "DEBUG"),
]


@pytest.mark.parametrize(("options", "daemon", "lowest"), [c[1:] for c in LEVEL_CASES],
                         ids=[c[0] for c in LEVEL_CASES])
async def test_run_log_level(bank: BankServer, tmp_path: Path, options: list[str], daemon: dict[str, str],
                             lowest: str) -> None:
    log = await _run_log(bank, tmp_path, options, daemon)
    levels = set(LEVEL.findall(log))
    order = ["DEBUG", "INFO", "WARNING", "ERROR"]
    assert not levels & set(order[: order.index(lowest)]), log[-3000:]
    assert lowest in levels, log[-3000:]
    if lowest == "DEBUG":  # the prober's own debug line, one per run, not only a library's
        assert JOURNEY_DEBUG.search(log), log[-3000:]


@pytest.mark.parametrize(("options", "daemon", "json_lines"), [
    (["--log-format", "json", *RUN], {}, True),
    ([*RUN, "--log-format", "json"], {}, True),
    (RUN, {"log_format": "json"}, True),
    (["--log-format", "plain", *RUN], {"log_format": "json"}, False),
    (["--log-format", "plain", *RUN, "--log-format", "json"], {}, True),
], ids=["global-option", "command-option", "daemon-section", "global-option-beats-daemon-section",
        "command-option-beats-global-option"])
async def test_run_log_format(bank: BankServer, tmp_path: Path, options: list[str], daemon: dict[str, str],
                              json_lines: bool) -> None:
    lines = (await _run_log(bank, tmp_path, options, daemon)).splitlines()
    assert lines
    if json_lines:
        assert all(json.loads(line)["level"] for line in lines), lines[:5]
    else:
        assert all(LEVEL.match(line) for line in lines if not line.startswith(" ")), lines[:5]


async def test_check_log_level(bank: BankServer, tmp_path: Path) -> None:
    """``prober check`` has no [daemon] default: the global option, else warnings only."""
    config = tmp_path / "prober.toml"
    config.write_text(config_text(bank.url, [check("accounts")], daemon={"log_level": "debug"}))
    quiet = await run_prober("check", "-c", str(config))
    loud = await run_prober("--log-level", "debug", "check", "-c", str(config))
    assert quiet.returncode == loud.returncode == 0, quiet.stderr + loud.stderr
    assert quiet.stderr == ""
    assert JOURNEY_DEBUG.search(loud.stderr), loud.stderr
    as_json = await run_prober("--log-level", "debug", "--log-format", "json", "check", "-c", str(config))
    [line] = [json.loads(line) for line in as_json.stderr.splitlines() if "simbank/accounts" in line]
    assert (line["level"], line["logger"]) == ("debug", "prober.journey")
