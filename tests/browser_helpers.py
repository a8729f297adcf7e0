"""Helpers of the browser journey tests: configurations, a runner, Chromium's processes."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from aiohttp import web

from prober.config.errors import ConfigError  # noqa: F401 - re-exported for the tests
from prober.defaults import default_config
from prober.journey.dispatch import JourneyRunner
from prober.journey.plan import JourneyPlan
from prober.loading import load
from prober.results import JourneyResult, Outcome

PASSWORD = "s3cret-pw"


def only_checks(text: str, names: tuple[str, ...]) -> str:
    """The configuration ``text`` (the embedded default's layout) with only the checks
    named ``names`` enabled."""
    blocks = text.split("[[sites.checks]]")
    kept = [blocks[0]]
    for block in blocks[1:]:
        name = re.search(r'^name = "([^"]+)"', block, re.M)
        kept.append(
            block if name and name.group(1) in names else block.replace("\nkind =", "\nenabled = false\nkind =", 1)
        )
    return "[[sites.checks]]".join(kept)


def web_checks_config(bank_url: str, state_dir: Path, *, only: tuple[str, ...] = ()) -> str:
    """The embedded default with its state in ``state_dir``, and (with ``only``) only
    the named checks enabled."""
    text = default_config().read_text()
    head = f'[daemon]\nstate_dir = "{state_dir}"\nhealth_listen = ""\n\n'
    if only:
        text = only_checks(text, only)
    return head + text.replace("${SIMBANK_URL:-http://127.0.0.1:8480}", bank_url)


def plans_of(tmp_path: Path, text: str, name: str = "prober.toml") -> list[JourneyPlan]:
    path = tmp_path / name
    path.write_text(text)
    return load(path, environ={}).plans


def runner_for(tmp_path: Path, concurrency: int = 2, evidence_runs: int = 10) -> JourneyRunner:
    state = tmp_path / "state"
    return JourneyRunner.for_state_dir(state, "/usr/bin/chromium", concurrency, evidence_runs, 50 << 20)


async def warm_up(runner: JourneyRunner, pages_url: str, tmp_path: Path) -> None:
    """One passing run of a plain page on ``runner``: the browser process and Chromium
    start on a runner's first run (seconds on a loaded machine), so a test that times a
    run, or reads a page's first paint, runs it after this."""
    (plan,) = plans_of(tmp_path, config(pages_url, step("open", 'goto = "/ok"')), name="warm-up.toml")
    result = await runner(plan)
    assert result.outcome is Outcome.OK, result.error


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


PAGES = {
    "/ok": "<title>ok</title><p id=x>fine</p><img src=/missing.png><script>console.error('boom')</script>",
    "/dialog": "<title>d</title><button id=b onclick=\"alert('Are you sure?')\">go</button>",
    "/popup": "<title>p</title><button id=b onclick=\"window.open('/ok')\">go</button>",
    "/download": "<title>f</title><a id=b href=/file>statement</a>",
    "/loop": "<title>l</title><p id=x>x</p><button id=b onclick='while(true){}'>go</button>",
    "/never": "<title>n</title><p>x</p><img src=/hang.png>",
    "/away": "<title>a</title><a id=b href=\"{other}/ok\">elsewhere</a>",
}


def _answer(body: str = "", status: int = 200, content_type: str = "text/html", headers: dict | None = None):
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body, status=status, content_type=content_type, headers=headers)

    return handler


class Pages:
    """A small real web server with hostile pages, and a second one on another origin."""

    def __init__(self, extra: dict[str, str] | None = None) -> None:
        self.pages = {**PAGES, **(extra or {})}
        self.runners: list[web.AppRunner] = []
        self.url = self.other = ""
        self.stop = asyncio.Event()

    async def _serve(self, app: web.Application) -> str:
        runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.2)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    async def __aenter__(self) -> Pages:
        other = web.Application()
        other.router.add_get("/ok", _answer(PAGES["/ok"]))
        self.other = await self._serve(other)
        app = web.Application()
        for path, page in self.pages.items():
            app.router.add_get(path, _answer(page.replace("{other}", self.other)))
        app.router.add_get("/file", _answer("%PDF-1.4", content_type="application/pdf",
                                            headers={"Content-Disposition": "attachment; filename=statement.pdf"}))
        app.router.add_get("/hang.png", self._hang)
        app.router.add_get("/error", _answer("<h1>oops</h1>", status=500))
        self.url = await self._serve(app)
        return self

    async def _hang(self, request: web.Request) -> web.Response:
        await self.stop.wait()
        return web.Response(status=404)

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        for runner in self.runners:
            await runner.cleanup()


def config(url: str, steps: str, timeout: str = "3s") -> str:
    return (f'[daemon]\nhealth_listen = ""\n[[sites]]\nname = "web"\nbase_url = "{url}"\ntimeout = "{timeout}"\n'
            f'[[sites.checks]]\nname = "page"\nkind = "custom"\ntimeout = "8s"\n{steps}')


def step(name: str, body: str) -> str:
    return f'  [[sites.checks.steps]]\n  name = "{name}"\n  {body}\n'
