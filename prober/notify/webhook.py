"""Generic JSON webhook: POSTs :meth:`Message.to_json` (event, site, kind, check, step,
outcome, error, since, resolved_at, duration_s, capability state, text)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from prober.notify.base import JSONPostNotifier
from prober.notify.message import Message
from prober.notify.settings import SecretURLSettings


class WebhookConfig(SecretURLSettings):
    """``type = "webhook"``: ``url``/``url_file``, and extra ``headers`` (secrets too,
    e.g. an ``Authorization`` header)."""

    type: Literal["webhook"]
    headers: dict[str, SecretStr] = Field(default_factory=dict)

    @field_validator("headers", mode="before")
    @classmethod
    def _secret_headers(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: SecretStr(v) if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name in value:
            if not name or any(c in name for c in ":\r\n "):
                raise ValueError(f"invalid header name {name!r}")
        return value


class WebhookNotifier(JSONPostNotifier):
    config: WebhookConfig

    def payload(self, message: Message) -> Any:
        return message.to_json()

    def headers(self) -> dict[str, str]:
        return {name: value.get_secret_value() for name, value in self.config.headers.items()}
