"""Generic JSON webhook: POSTs :meth:`Message.to_json` (event, site, kind, check, step,
outcome, error, since, resolved_at, duration_s, capability state, text)."""

from __future__ import annotations

from typing import Any

from prober.config.incidents import NotifierConfig
from prober.notify.base import Notifier, check_url
from prober.notify.message import Message


class WebhookNotifier(Notifier):
    type = "webhook"

    @classmethod
    def validate(cls, config: NotifierConfig) -> None:
        check_url(config)
        if config.format is not None:
            raise ValueError(f"notifier {config.label}: `format` is for teams notifiers only")
        for name in config.headers:
            if not name or any(c in name for c in ":\r\n "):
                raise ValueError(f"notifier {config.label}: invalid header name {name!r}")

    def payload(self, message: Message) -> Any:
        return message.to_json()

    def headers(self) -> dict[str, str]:
        return {name: value.get_secret_value() for name, value in self.config.headers.items()}
