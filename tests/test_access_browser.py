"""The internal status page behind basic auth, in a real browser: Debian's chromium
(headless, driven by Playwright, as in tests/test_statuspage_browser.py) against a real
``prober run`` probing the simulated bank.

Without credentials the browser gets the 401 and the ``Basic`` challenge that makes it
show its login prompt (headless, Playwright answers the prompt with the context's
``http_credentials``, or not at all); with the right ones it shows the page, its
stylesheet applied and its grid filled; wrong ones are refused again, and the browser
gives up on them (``ERR_INVALID_AUTH_CREDENTIALS``).
"""

from __future__ import annotations

from pathlib import Path

import bcrypt
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Response, async_playwright, expect

from prober.simbank import BankServer
from tests.chromium_helpers import CHROMIUM, CHROMIUM_ARGS, between_refreshes
from tests.daemon_helpers import ProberProcess, check, config_text, get_json, wait_for
from tests.fixtures.servers import free_port

USER, PASSWORD = "ops", "browser-pass-41f0"


async def refused(page: Page, url: str) -> list[str]:
    """Open ``url`` in ``page``, which must get no page: only 401s, which Chromium
    either shows (the body) or gives up on (``ERR_INVALID_AUTH_CREDENTIALS``, when the
    credentials it had were refused). The ``WWW-Authenticate`` challenges received."""
    answers: list[Response] = []
    page.on("response", lambda response: answers.append(response))
    try:
        await page.goto(url)
    except PlaywrightError as exc:
        assert "ERR_INVALID_AUTH_CREDENTIALS" in str(exc), exc
    assert answers and all(a.status == 401 for a in answers), [(a.url, a.status) for a in answers]
    assert await page.locator("td.cell").count() == 0
    return sorted({await a.header_value("www-authenticate") or "" for a in answers})


async def test_the_internal_page_asks_for_a_login_then_shows(bank: BankServer, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()
    path = tmp_path / "prober.toml"
    path.write_text(config_text(bank.url, [check("login", interval="500ms"), check("accounts", interval="500ms")],
                                daemon={"health_listen": f"127.0.0.1:{port}", "state_dir": str(tmp_path / "state")})
                    + f'[status_page]\nrefresh = "2s"\n[[access.users]]\nname = "{USER}"\npassword_hash = "{hashed}"\n')
    prober = await ProberProcess(["run", "-c", str(path)], tmp_path).start()
    try:
        async def up() -> bool:
            try:
                return (await get_json(base + "healthz"))[0] == 200
            except OSError:
                return False

        await wait_for(up, timeout=60, interval=0.2, what=f"prober run ({prober.log_path})")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                # No credentials: the challenge a browser answers with its login prompt
                # (headless, nobody answers it: Chromium ends the navigation).
                anonymous = await (await browser.new_context()).new_page()
                challenges = await refused(anonymous, base)
                assert challenges == ['Basic realm="bank-prober", charset="UTF-8"']

                # Wrong ones: refused again, and the browser gives up on them.
                wrong = await (await browser.new_context(
                    http_credentials={"username": USER, "password": "not-it"})).new_page()
                assert await refused(wrong, base) == ['Basic realm="bank-prober", charset="UTF-8"']

                # Logged in: the page, styled, with its grid.
                context = await browser.new_context(http_credentials={"username": USER, "password": PASSWORD})
                page = await context.new_page()
                styles: list[int] = []
                page.on("response", lambda r: styles.append(r.status) if "/status.css" in r.url else None)
                response = await page.goto(base)
                assert response is not None and response.status == 200
                await expect(page.locator('td[data-site="simbank"][data-kind="login"]')).to_contain_text(
                    "Operational", timeout=30_000)
                await expect(page.locator('td[data-site="simbank"][data-kind="accounts"]')).to_contain_text(
                    "Operational")
                assert styles and set(styles) == {200}  # the stylesheet came through the same login

                async def stylesheet_applied() -> None:
                    rules = await page.evaluate("[...document.styleSheets].map(s => s.cssRules.length)")
                    assert len(rules) == 1 and rules[0] > 10, rules

                # (the page refreshes itself every 2 s: an evaluate across a refresh is retried)
                await between_refreshes(page, stylesheet_applied)
                # The page's own refresh keeps it logged in.
                await page.wait_for_timeout(2500)
                await expect(page.locator('td[data-site="simbank"][data-kind="login"]')).to_contain_text(
                    "Operational")
                assert response.headers["content-security-policy"].startswith("default-src 'none'")
            finally:
                await browser.close()
    finally:
        await prober.kill()
    assert PASSWORD not in prober.log and hashed not in prober.log
