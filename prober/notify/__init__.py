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

from prober.notify.base import NotifyError
from prober.notify.dispatcher import Dispatcher
from prober.notify.message import Message
from prober.notify.providers import NotifierConfig, parse_notifier

__all__ = ["Dispatcher", "Message", "NotifierConfig", "NotifyError", "parse_notifier"]
