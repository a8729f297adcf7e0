"""Helpers of the browser journey tests: configurations, a runner, Chromium's processes."""

from __future__ import annotations

import os
import re
from pathlib import Path

from prober.config.errors import ConfigError  # noqa: F401 - re-exported for the tests
from prober.defaults import default_config
from prober.journey.dispatch import JourneyRunner
from prober.journey.plan import JourneyPlan
from prober.loading import load
from prober.results import JourneyResult

PASSWORD = "s3cret-pw"


def web_checks_config(bank_url: str, state_dir: Path, *, only: tuple[str, ...] = ()) -> str:
    """The embedded default with its state in ``state_dir``, and (with ``only``) only
    the named checks enabled."""
    text = default_config().read_text()
    head = f'[daemon]\nstate_dir = "{state_dir}"\nhealth_listen = ""\n\n'
    if only:
        blocks = text.split("[[sites.checks]]")
        kept = [blocks[0]]
        for block in blocks[1:]:
            name = re.search(r'^name = "([^"]+)"', block, re.M)
            kept.append(
                block if name and name.group(1) in only else block.replace("\nkind =", "\nenabled = false\nkind =", 1)
            )
        text = "[[sites.checks]]".join(kept)
    return head + text.replace("${SIMBANK_URL:-http://127.0.0.1:8480}", bank_url)


def plans_of(tmp_path: Path, text: str, name: str = "prober.toml") -> list[JourneyPlan]:
    path = tmp_path / name
    path.write_text(text)
    return load(path, environ={}).plans


def runner_for(tmp_path: Path, concurrency: int = 2, evidence_runs: int = 10) -> JourneyRunner:
    state = tmp_path / "state"
    return JourneyRunner.for_state_dir(state, "/usr/bin/chromium", concurrency, evidence_runs, 50 << 20)


async def run_named(runner: JourneyRunner, plans: list[JourneyPlan], check: str) -> JourneyResult:
    return await runner(next(p for p in plans if p.check == check))


def chromium_pids(root: int | None = None) -> list[int]:
    """Chromium's browser processes (not its renderers) descending from ``root`` (default:
    this process)."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    commands: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmd:
                commands[int(entry)] = cmd.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            todo.append(child)
            command = commands.get(child, "")
            if "chromium" in command and "--type=" not in command:
                found.append(child)
    return found


def all_chromium_browsers() -> set[int]:
    """Every Chromium browser process on the machine whose profile is Playwright's."""
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as cmd:
                    command = cmd.read().decode(errors="replace")
            except OSError:
                continue
            if "chromium" in command and "--type=" not in command and "playwright" in command:
                pids.add(int(entry))
    return pids


def without_browser_checks(config):  # noqa: ANN001, ANN201 - a Config
    """``config`` with its API checks only: tests of the API journeys' incidents, which
    fault the API alone (a web check of the same capability passing would make it
    degraded, not down)."""
    sites = [site.model_copy(update={"checks": [c for c in site.checks if not c.is_browser]}) for site in config.sites]
    return config.model_copy(update={"sites": sites})
