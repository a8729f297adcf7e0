"""What happens on a page while a step runs: its events, counted and kept for the verdict.

:class:`PageWatch` listens to one page (console, uncaught errors, responses and failed
requests, dialogs, popups, downloads, navigations, a crash) and keeps, for the step in
progress (:meth:`PageWatch.begin`), what the verdict and the step's figures need. The
handlers only record: the runner decides what each event means for the step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from prober.journey.checks import _SECRET_NAME
from prober.redact import Redactor

log = logging.getLogger("prober.journey.browser")

ABORTED = "net::ERR_ABORTED"
"""A request the page itself gave up (a navigation away): not a failure of the bank."""


@dataclass(slots=True)
class StepEvents:
    """What happened on the page during one step."""

    console_errors: int = 0
    page_errors: int = 0
    failed_requests: int = 0
    last_page_error: str = ""
    document_status: int | None = None
    """HTTP status of the main document loaded during the step (the last one)."""
    document_failure: str = ""
    """A main document request that got no answer (``net::ERR_…``)."""
    dialogs: list[str] = field(default_factory=list)
    """Dialogs the step did not expect, as ``type: message``."""
    popups: list[str] = field(default_factory=list)
    """Origins of popups the page opened (closed at once)."""
    downloads: list[str] = field(default_factory=list)
    """Suggested names of downloads the page started (cancelled)."""
    foreign_origin: str = ""
    """Another origin the page navigated to."""
    crashed: bool = False


class PageWatch:
    """Listens to ``page`` for the whole run, recording into the current step's events."""

    def __init__(self, page: Any, origins: frozenset[str], redact: Redactor) -> None:
        self.page = page
        self.origins = origins
        self.redact = redact
        self.events = StepEvents()
        self.dialog_answer: str | None = None
        """How the current step answers a dialog it expects (``accept``/``dismiss``)."""
        page.on("console", self._console)
        page.on("pageerror", self._page_error)
        page.on("response", self._response)
        page.on("requestfailed", self._request_failed)
        page.on("dialog", self._dialog)
        page.on("popup", self._popup)
        page.on("download", self._download)
        page.on("framenavigated", self._navigated)
        page.on("crash", self._crash)

    def begin(self, dialog: str | None) -> StepEvents:
        """Start recording a new step; returns the previous step's events."""
        done, self.events = self.events, StepEvents()
        self.dialog_answer = dialog
        return done

    # -- handlers ----------------------------------------------------------------
    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.events.console_errors += 1

    def _page_error(self, error: Any) -> None:
        self.events.page_errors += 1
        self.events.last_page_error = " ".join(str(getattr(error, "message", "") or error).split())[:300]

    def _is_document(self, request: Any) -> bool:
        try:
            return request.is_navigation_request() and request.frame == self.page.main_frame
        except Exception:  # noqa: BLE001 - a frame already detached
            return False

    def _response(self, response: Any) -> None:
        request = response.request
        if self._is_document(request):
            self.events.document_status = response.status
        elif response.status >= 400:
            self.events.failed_requests += 1

    def _request_failed(self, request: Any) -> None:
        failure = request.failure or ""
        if failure == ABORTED or failure.startswith(f"{ABORTED} "):
            return
        if self._is_document(request):
            self.events.document_failure = failure
        else:
            self.events.failed_requests += 1

    async def _dialog(self, dialog: Any) -> None:
        answer = self.dialog_answer
        try:
            if answer == "accept":
                await dialog.accept()
            else:
                await dialog.dismiss()
        except Exception:  # noqa: BLE001 - the page went away meanwhile
            pass
        if answer is None:
            self.events.dialogs.append(f"{dialog.type}: {' '.join(dialog.message.split())[:120]}")

    async def _popup(self, popup: Any) -> None:
        self.events.popups.append(_origin(popup.url) or "about:blank")
        try:
            await popup.close()
        except Exception:  # noqa: BLE001 - a popup already gone is closed enough
            pass

    async def _download(self, download: Any) -> None:
        self.events.downloads.append(download.suggested_filename[:80])
        try:
            await download.cancel()
        except Exception:  # noqa: BLE001 - a download already over needs no cancelling
            pass

    def _navigated(self, frame: Any) -> None:
        if frame != self.page.main_frame:
            return
        url = frame.url
        self._learn_secrets(url)
        origin = _origin(url)
        if origin and origin not in self.origins and not url.startswith(("about:", "data:", "chrome-error:")):
            self.events.foreign_origin = origin

    def _crash(self, _page: Any) -> None:
        self.events.crashed = True

    def _learn_secrets(self, url: str) -> None:
        """A token in a page's URL (``?session=…``, ``#access_token=…``) is a secret from
        now on: every message and artifact of the run masks it."""
        parts = urlsplit(url)
        for name, value in parse_qsl(parts.query) + parse_qsl(parts.fragment):
            if _SECRET_NAME.search(name) or name in ("code", "state", "sid"):
                self.redact.add(value)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme in ("http", "https") else ""
