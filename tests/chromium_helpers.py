"""Helpers of the tests that drive Debian's Chromium through Playwright: where it is, how it
is started, and acting on a page between its own refreshes."""

from __future__ import annotations

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


async def between_refreshes(page: Page, action, attempts: int = 6):
    """Run ``action()``; the page's own meta refresh may replace the document in the middle
    of it (a detached element, an aborted navigation), so a failed attempt is retried
    after the next load. A layout that is wrong fails every attempt."""
    failure: AssertionError | None = None
    for attempt in range(attempts):
        try:
            await page.wait_for_load_state("load")
            return await action()
        except AssertionError as exc:
            failure = exc
        except PlaywrightError:
            if attempt == attempts - 1 and failure is None:
                raise
        await page.wait_for_timeout(300)
    assert failure is not None
    raise failure
