"""The notifier interface: ``validate(config)`` and ``async send(message)``.

A notifier turns a :class:`~prober.notify.message.Message` into one HTTP POST. It
raises :class:`NotifyError` on failure; ``retryable`` says whether another attempt
can help (connection errors, timeouts, 5xx, 429) or not (any other 4xx: the URL or
the payload is wrong). Retries, timeouts and concurrency belong to the dispatcher.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp

from prober.config.incidents import NotifierConfig
from prober.notify.message import Message


class NotifyError(Exception):
    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def check_url(config: NotifierConfig) -> None:
    assert config.url is not None
    parts = urlsplit(config.url.get_secret_value())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # never echo the URL: it holds the secret
        raise ValueError(f"notifier {config.label}: `url` must be an http:// or https:// URL")


class Notifier:
    """Base class: subclasses set ``type`` and implement :meth:`payload`."""

    type: ClassVar[str] = ""

    def __init__(self, config: NotifierConfig, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session

    @classmethod
    def validate(cls, config: NotifierConfig) -> None:
        """Raise ``ValueError`` when ``config`` is not usable by this notifier."""
        check_url(config)
        if config.format is not None:
            raise ValueError(f"notifier {config.label}: `format` is for teams notifiers only")
        if config.headers:
            raise ValueError(f"notifier {config.label}: `headers` is for webhook notifiers only")

    def payload(self, message: Message) -> Any:
        raise NotImplementedError

    def headers(self) -> dict[str, str]:
        return {}

    async def send(self, message: Message) -> None:
        assert self.config.url is not None
        try:
            async with self.session.post(
                self.config.url.get_secret_value(), json=self.payload(message), headers=self.headers(),
                allow_redirects=False,
            ) as response:
                await response.read()
                status = response.status
        except asyncio.TimeoutError:
            raise NotifyError("timeout", retryable=True) from None
        except aiohttp.ClientError as exc:
            # class name only: aiohttp messages may contain the URL
            raise NotifyError(f"connection error: {type(exc).__name__}", retryable=True) from None
        if status >= 300:
            raise NotifyError(f"HTTP {status}", retryable=status >= 500 or status == 429)
