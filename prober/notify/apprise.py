"""Apprise: e-mail, PagerDuty, Opsgenie, Telegram, Mattermost, Google Chat, Discord,
ntfy and 100 more services, each behind one URL (``mailtos://…``, ``pagerduty://…``,
``tgram://…``; the list: https://github.com/caronc/apprise/wiki).

Apprise (a maintained library speaking every one of them) delivers the title and the
plain text of the message; ``urls`` are secrets like webhook URLs: held as
``SecretStr``, checked at load without echoing them, and Apprise's own log lines,
which may quote a URL, are not passed on. A delivery that fails for any of the URLs
is reported as one retryable failure naming how many failed, never which URL.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from prober.config.types import secret_from_file
from prober.notify.base import Notifier, NotifyError
from prober.notify.message import Message
from prober.notify.settings import NotifierSettings

if TYPE_CHECKING:
    import aiohttp

# Apprise itself is imported where it is used: a configuration without an apprise
# notifier (and `prober validate` of one) never pays for its hundred plugins.
# Apprise, and urllib3 under it, log per-request details with the URL, whose path or
# user part is the service's secret; the dispatcher reports every outcome instead.
for _name in ("apprise", "urllib3"):
    logging.getLogger(_name).setLevel(logging.CRITICAL + 1)


def _url_lines(text: str) -> list[str]:
    """The URLs of a ``urls_file``: one a line, blank lines and ``#`` comments left out."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


class AppriseConfig(NotifierSettings):
    """``type = "apprise"``: ``urls`` (a list) or ``urls_file`` (one URL a line)."""

    type: Literal["apprise"]
    urls: list[SecretStr] = Field(default_factory=list)
    urls_file: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _urls_from_file(cls, data: object) -> object:
        return secret_from_file(data, "urls", "an apprise notifier", required=True, parse=_url_lines)

    @field_validator("urls", mode="before")
    @classmethod
    def _secret(cls, value: object) -> object:
        if isinstance(value, list):
            return [SecretStr(v) if isinstance(v, str) else v for v in value]
        return value

    @field_validator("urls")
    @classmethod
    def _understood(cls, value: list[SecretStr]) -> list[SecretStr]:
        if not value:
            raise ValueError("an apprise notifier needs at least one URL in `urls` or `urls_file`")
        import apprise

        for index, url in enumerate(value, start=1):
            if not apprise.Apprise().add(url.get_secret_value()):
                # never echo the URL: it holds the secret
                raise ValueError(f"URL #{index} is not one Apprise understands (see its wiki for the schemes)")
        return value


class AppriseNotifier(Notifier):
    config: AppriseConfig

    def __init__(self, config: AppriseConfig, session: aiohttp.ClientSession) -> None:
        super().__init__(config, session)
        import apprise

        self._apprise = apprise.Apprise()
        for url in config.urls:
            self._apprise.add(url.get_secret_value())

    async def send(self, message: Message) -> None:
        import apprise

        if message.event == "resolved":
            kind = apprise.NotifyType.SUCCESS if message.recovered else apprise.NotifyType.INFO
        else:
            kind = apprise.NotifyType.FAILURE
        try:
            result = await self._apprise.async_notify(title=message.title, body=message.text, notify_type=kind)
        except Exception as exc:  # a plugin bug: its message may quote the URL
            raise NotifyError(f"apprise: {type(exc).__name__}", retryable=True) from None
        if not result:
            failed = getattr(result, "failed_count", None) or len(self.config.urls)
            raise NotifyError(f"apprise: {failed} of {len(self.config.urls)} services failed", retryable=True)
