"""What every notifier's configuration has: routing, retries, reminders, a secret URL.

Each provider module subclasses :class:`NotifierSettings` with its own ``type`` and
fields, so that a provider's options live with the code that uses them; the union of
them all is :data:`prober.notify.providers.NotifierConfig`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from prober.config.types import STRICT, Duration, secret_from_file
from prober.results import Kind


class NotifierSettings(BaseModel):
    """Fields shared by every ``[[notifiers]]`` entry.

    ``sites``/``kinds`` route: empty means every site / capability. Each attempt is
    bounded by ``timeout``; failures another attempt can fix are retried ``retries``
    times with exponential backoff from ``backoff`` up to ``backoff_max``.
    """

    model_config = STRICT

    type: str
    name: str | None = None
    sites: list[str] = Field(default_factory=list)
    kinds: list[Kind] = Field(default_factory=list)
    timeout: Duration = 10.0
    retries: int = Field(default=3, ge=0, le=20)
    backoff: Duration = 1.0
    backoff_max: Duration = 30.0
    reminders: bool = True
    """Send reminders while an incident stays open (``[incidents] remind_every``)."""

    @property
    def label(self) -> str:
        """How logs name this notifier: its name or type, never its URL."""
        return self.name or self.type


class SecretURLSettings(NotifierSettings):
    """A notifier posting to one URL, itself a secret: ``url`` or ``url_file``.

    Webhook URLs carry their credentials in the path, so the URL is held as a
    ``SecretStr``, never logged, never echoed in errors. ``url_file`` is read once, at
    load, into ``url``.
    """

    url: SecretStr
    url_file: str | None = None
    schemes: ClassVar[tuple[str, ...]] = ("http", "https")

    @model_validator(mode="before")
    @classmethod
    def _url_from_file(cls, data: Any) -> Any:
        return secret_from_file(data, "url", "a notifier", required=True)

    @field_validator("url", mode="before")
    @classmethod
    def _secret(cls, value: object) -> object:
        return SecretStr(value) if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: SecretStr) -> SecretStr:
        from urllib.parse import urlsplit

        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in cls.schemes or not parts.hostname:
            # never echo the URL: it holds the secret
            raise ValueError(f"`url` must be an {' or '.join(s + '://' for s in cls.schemes)} URL")
        return value
