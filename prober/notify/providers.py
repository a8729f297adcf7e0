"""The one table of notifier types: ``type`` → (settings model, notifier class).

Adding a provider is one new module (its settings model and its notifier) and one line
here. :data:`NotifierConfig` is the discriminated union that ``[[notifiers]]`` entries
are validated against: the ``type`` picks the model, and errors name the field of that
provider.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, TypeAdapter

from prober.config.unions import tagged_union
from prober.notify.apprise import AppriseConfig, AppriseNotifier
from prober.notify.base import Notifier
from prober.notify.settings import NotifierSettings
from prober.notify.slack import SlackConfig, SlackNotifier
from prober.notify.teams import TeamsConfig, TeamsNotifier
from prober.notify.webhook import WebhookConfig, WebhookNotifier

if TYPE_CHECKING:
    import aiohttp

PROVIDERS: dict[type[NotifierSettings], type[Notifier]] = {
    WebhookConfig: WebhookNotifier,
    SlackConfig: SlackNotifier,
    TeamsConfig: TeamsNotifier,
    AppriseConfig: AppriseNotifier,
}

NotifierConfig = tagged_union("type", tuple(PROVIDERS), "a notifier type")
"""One ``[[notifiers]]`` entry, whichever its ``type`` (the table's order lists the choices)."""

_ADAPTER: TypeAdapter[Any] = TypeAdapter(NotifierConfig, config=ConfigDict(hide_input_in_errors=True))


def parse_notifier(data: dict[str, Any]) -> NotifierSettings:
    """Validate one ``[[notifiers]]`` table (raises pydantic's ``ValidationError``)."""
    return _ADAPTER.validate_python(data)


def make_notifier(config: NotifierSettings, session: aiohttp.ClientSession) -> Notifier:
    """The notifier that delivers for ``config``."""
    return PROVIDERS[type(config)](config, session)
