"""The notifier interface: ``async send(message)``, and the JSON-POST notifiers' base.

A notifier turns a :class:`~prober.notify.message.Message` into a delivery. It raises
:class:`NotifyError` on failure; ``retryable`` says whether another attempt can help
(connection errors, timeouts, 5xx, 429) or not (any other 4xx: the URL or the payload
is wrong). Retries, timeouts and concurrency belong to the dispatcher. Its
configuration is validated when the file is loaded, by the provider's own settings
model (:mod:`prober.notify.settings`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prober.notify.message import Message
from prober.notify.settings import NotifierSettings, SecretURLSettings

if TYPE_CHECKING:
    import aiohttp


class NotifyError(Exception):
    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Notifier:
    """One configured notifier; subclasses implement :meth:`send`."""

    def __init__(self, config: NotifierSettings, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session

    async def send(self, message: Message) -> None:
        raise NotImplementedError


class JSONPostNotifier(Notifier):
    """POSTs :meth:`payload` as JSON to the configured (secret) URL."""

    config: SecretURLSettings

    def payload(self, message: Message) -> Any:
        raise NotImplementedError

    def headers(self) -> dict[str, str]:
        return {}

    async def send(self, message: Message) -> None:
        import aiohttp  # here: validating a configuration imports this module, and needs no HTTP client

        try:
            async with self.session.post(
                self.config.url.get_secret_value(), json=self.payload(message), headers=self.headers(),
                allow_redirects=False,
            ) as response:
                await response.read()
                status = response.status
        except TimeoutError:  # asyncio's (the same class since Python 3.11)
            raise NotifyError("timeout", retryable=True) from None
        except aiohttp.ClientError as exc:
            # class name only: aiohttp messages may contain the URL
            raise NotifyError(f"connection error: {type(exc).__name__}", retryable=True) from None
        if status >= 300:
            raise NotifyError(f"HTTP {status}", retryable=status >= 500 or status == 429)
