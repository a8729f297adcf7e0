"""Notifiers: one module each (its settings model and its notifier), one table of types
(:mod:`prober.notify.providers`), and the :class:`Dispatcher` that routes, retries and
runs them in the background.

=========  ===================================================================
webhook    generic JSON POST (:mod:`prober.notify.webhook`)
slack      Slack incoming webhook, text + blocks (:mod:`prober.notify.slack`)
teams      Microsoft Teams, Adaptive Card or MessageCard (:mod:`prober.notify.teams`)
apprise    e-mail, PagerDuty, Opsgenie, Telegram, Mattermost, Google Chat and 100 more
           services through Apprise URLs (:mod:`prober.notify.apprise`)
=========  ===================================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prober.notify.base import NotifyError
from prober.notify.message import Message
from prober.notify.providers import NotifierConfig, parse_notifier

if TYPE_CHECKING:
    from prober.notify.dispatcher import Dispatcher

__all__ = ["Dispatcher", "Message", "NotifierConfig", "NotifyError", "parse_notifier"]


def __getattr__(name: str) -> Any:
    # The dispatcher (aiohttp, tenacity) is imported when it is asked for: loading a
    # configuration validates notifier settings through this package, and `prober
    # validate` never delivers anything.
    if name == "Dispatcher":
        from prober.notify.dispatcher import Dispatcher

        return Dispatcher
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
