"""The status page in a real browser: Debian's chromium (headless, driven by Playwright)
against a real ``prober run`` and the simulated bank replaying ``zero-balances``.

Timeline of the scenario with the default time scale: accounts answer 200 with zero
balances from 5 s to 15 s of every 20 s cycle. Every check runs each 0.5 s. A second bank
answers every request with a ``<script>`` in its body, which ends up in its failing
step's error text. The test asserts that

* the page shows the outage on the accounts capability while it lasts (in words, with
  colour), then its resolution, reached by the page's own meta refresh;
* the grid is readable at phone (375 px) and desktop (1280 px) widths: no horizontal
  overflow, every cell inside the viewport (from the boxes the browser laid out, and
  the screenshot's size);
* the injected script never runs (no dialog, no console message, not even a CSP
  violation report: it never became markup) and is shown as text.

``BANK_PROBER_SCREENSHOT=docs/status-page.png`` also writes the desktop screenshot taken
during the incident there (the README's picture).
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

from playwright.async_api import Dialog, Page, async_playwright, expect

from prober.defaults import default_config
from prober.simbank import BankServer
from tests.chromium_helpers import CHROMIUM, CHROMIUM_ARGS, between_refreshes
from tests.daemon_helpers import ProberProcess, get_json, wait_for
from tests.fixtures.servers import free_port
from tests.statuspage_helpers import SCRIPT, EvilBank, evil_site

WIDTHS = {"phone": (375, 812), "desktop": (1280, 900)}


def fast_default_config(bank_url: str, evil_url: str, state_dir: Path, port: int) -> str:
    """The embedded default (every capability of the simulated bank) with 0.5 s intervals,
    a status page on ``port`` refreshing every second, and the hostile bank."""
    text = default_config().read_text()
    # The page is what this test looks at: the web checks (seconds per run) stay out.
    text = re.sub(r'^(name = "web-[a-z]+")$', r'\1\nenabled = false', text, flags=re.M)
    text = re.sub(r'^interval = "\d+s"', 'interval = "500ms"', text, flags=re.M)
    text = re.sub(r'^timeout = "\d+s"(\s*#.*)?$', 'timeout = "500ms"', text, flags=re.M)
    text = re.sub(r'^max_duration = "\d+s"(\s*#.*)?$', 'max_duration = "500ms"', text, flags=re.M)
    head = (
        f'[daemon]\nhealth_listen = ""\nstate_dir = "{state_dir}"\nself_report_interval = "1s"\n\n'
        f'[status_page]\nlisten = "127.0.0.1:{port}"\nrefresh = "1s"\ntitle = "Bank status"\n\n'
    )
    return head + text + evil_site(evil_url, "500ms")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


MIN_CELL_WIDTH = 120
"""Pixels: a narrower text column (about 15 characters) is not readable."""


MEASURE = """() => ({
    scrollWidth: document.documentElement.scrollWidth,
    cells: [...document.querySelectorAll("td.cell[data-site]")].map(td => {
        const box = td.getBoundingClientRect();
        const state = td.querySelector(".state").getBoundingClientRect();
        const style = getComputedStyle(td);
        return {
            text: td.innerText.slice(0, 40), x: box.x, width: box.width, height: box.height,
            visible: style.visibility !== "hidden" && style.display !== "none",
            stateHeight: state.height,
            lineHeight: parseFloat(getComputedStyle(td.querySelector(".state")).lineHeight),
        };
    }),
})"""
"""Measured in one call, so that all figures come from the same document (the page
replaces itself every second)."""


async def check_layout(page: Page, width: int) -> None:
    """No horizontal scrolling; every cell of a checked capability laid out inside the
    viewport, wide enough to read, its state on one line."""
    layout = await page.evaluate(MEASURE)
    assert layout["scrollWidth"] <= width, f"horizontal overflow at {width}px: {layout['scrollWidth']}px"
    assert len(layout["cells"]) >= 6
    for cell in layout["cells"]:
        assert cell["visible"] and cell["width"] >= MIN_CELL_WIDTH and cell["height"] > 10, (width, cell)
        assert cell["x"] >= 0 and cell["x"] + cell["width"] <= width + 0.5, (width, cell)
        assert cell["stateHeight"] < 1.6 * cell["lineHeight"], (width, cell)


async def test_status_page_in_chromium(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    evil = await EvilBank().start()
    bank = BankServer(port=0, scenario="zero-balances")
    await bank.start()
    path = tmp_path / "prober.toml"
    path.write_text(fast_default_config(bank.url, evil.url, tmp_path / "state", port))
    daemon = await ProberProcess(["run", "-c", str(path)], cwd=tmp_path, env={"SIMBANK_URL": bank.url}).start()
    dialogs: list[str] = []
    console: list[str] = []
    try:
        async def page_up() -> bool:
            assert daemon.proc is not None and daemon.proc.returncode is None, daemon.log
            try:
                code, _ = await get_json(base + "api/v1/status")
            except OSError:
                return False
            return code == 200

        await wait_for(page_up, timeout=60, interval=0.2, what=f"the status page of prober run ({daemon.log_path})")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                context = await browser.new_context(viewport={"width": 1280, "height": 900})
                page = await context.new_page()

                async def dismiss(dialog: Dialog) -> None:
                    dialogs.append(dialog.message)
                    await dialog.dismiss()

                page.on("dialog", dismiss)
                page.on("console", lambda m: console.append(m.text))
                page.on("pageerror", lambda e: console.append(str(e)))
                await page.goto(base)
                accounts = page.locator('td[data-site="simbank"][data-kind="accounts"]')

                # During the incident (the page reloads itself every second).
                await expect(accounts).to_contain_text("Outage", timeout=45_000)
                await expect(accounts).to_contain_text("Accounts failing at step “balances”")
                await expect(accounts).to_contain_text(re.compile(r"since \d\d:\d\d UTC"))
                colour = await accounts.evaluate("e => getComputedStyle(e).backgroundColor")
                assert colour == "rgb(255, 235, 233)", colour
                for kind in ("login", "transfer", "cards", "payments"):
                    await expect(page.locator(f'td[data-site="simbank"][data-kind="{kind}"]')).to_contain_text(
                        "Operational")

                # The hostile bank's script: shown as text, never run, never markup.
                evil_cell = page.locator('td[data-site="evilbank"][data-kind="custom"]')
                await expect(evil_cell).to_contain_text("Outage")
                assert "<script>alert('pwned')" in await evil_cell.locator("code.error").inner_text()
                assert await evil_cell.locator("code.error").get_attribute("title") == (
                    f"assertion failed: json state: expected UP, got {SCRIPT}")
                listed = page.locator("li.incident.open").filter(has_text="evilbank")
                assert SCRIPT in await listed.locator("code.error").inner_text()
                assert await page.locator("script").count() == 0

                for name, (width, height) in WIDTHS.items():
                    await page.set_viewport_size({"width": width, "height": height})

                    async def laid_out(width: int = width) -> bytes:
                        await check_layout(page, width)
                        shot = await page.screenshot(full_page=True)
                        assert png_size(shot)[0] == width
                        return shot

                    (tmp_path / f"status-{name}.png").write_bytes(await between_refreshes(page, laid_out))
                if target := os.environ.get("BANK_PROBER_SCREENSHOT"):
                    await page.set_viewport_size({"width": 1100, "height": 620})
                    Path(target).write_bytes(await between_refreshes(page, page.screenshot))

                # After: back to operational, the incident listed as resolved (meta refresh only).
                await page.set_viewport_size({"width": 1280, "height": 900})
                await expect(accounts).to_contain_text("Operational", timeout=45_000)
                await expect(page.locator("li.incident.resolved").filter(has_text="simbank · Accounts").first
                             ).to_contain_text("Resolved")
                await between_refreshes(page, lambda: check_layout(page, 1280))

                # Without JavaScript the page is the same page.
                nojs = await browser.new_context(java_script_enabled=False, viewport={"width": 375, "height": 812})
                plain = await nojs.new_page()
                await plain.goto(base)
                await expect(plain.locator('td[data-site="simbank"][data-kind="login"]')).to_contain_text("Operational")
                await nojs.close()
            finally:
                await browser.close()
        assert dialogs == [] and console == [], (dialogs, console)
    finally:
        await daemon.kill()
        await bank.stop()
        await evil.stop()
