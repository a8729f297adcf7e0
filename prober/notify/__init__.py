"""Notifiers: one module each behind a small interface (``validate(config)``,
``async send(message)``), and the :class:`Dispatcher` that routes, retries and runs
them in the background.

=========  ===================================================================
webhook    generic JSON POST (:mod:`prober.notify.webhook`)
slack      Slack incoming webhook, text + blocks (:mod:`prober.notify.slack`)
teams      Microsoft Teams, Adaptive Card or MessageCard (:mod:`prober.notify.teams`)
=========  ===================================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prober.config.incidents import NotifierConfig

__all__ = ["validate", "notifier_class", "Message", "Dispatcher", "NotifyError"]


def notifier_class(type_: str):
    from prober.notify.slack import SlackNotifier
    from prober.notify.teams import TeamsNotifier
    from prober.notify.webhook import WebhookNotifier

    return {"webhook": WebhookNotifier, "slack": SlackNotifier, "teams": TeamsNotifier}[type_]


def validate(config: NotifierConfig) -> None:
    """Raise ``ValueError`` when the notifier of ``config.type`` cannot use ``config``."""
    notifier_class(config.type).validate(config)


def __getattr__(name: str):
    if name == "Message":
        from prober.notify.message import Message

        return Message
    if name == "Dispatcher":
        from prober.notify.dispatcher import Dispatcher

        return Dispatcher
    if name == "NotifyError":
        from prober.notify.base import NotifyError

        return NotifyError
    raise AttributeError(name)
