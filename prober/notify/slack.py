"""Slack incoming webhook: ``text`` (the fallback shown in notifications) plus Block Kit
``blocks`` (a header, the details as fields, the site's capability summary)."""

from __future__ import annotations

from typing import Any, Literal

from prober.notify.base import JSONPostNotifier
from prober.notify.message import Message, human_duration
from prober.notify.settings import SecretURLSettings


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackConfig(SecretURLSettings):
    """``type = "slack"``: an incoming-webhook ``url``/``url_file``."""

    type: Literal["slack"]


class SlackNotifier(JSONPostNotifier):
    config: SlackConfig

    def payload(self, message: Message) -> Any:
        if message.event == "resolved":
            icon = ":white_check_mark:" if message.recovered else ":heavy_minus_sign:"
        else:
            icon = ":rotating_light:"
        fields = [
            f"*Bank*\n{_escape(message.site)}",
            f"*Capability*\n{message.kind} ({message.capability_state})",
            f"*Failing*\n{_escape(message.what_fails)}",
            f"*Since*\n{message.since}",
        ]
        if message.event == "resolved":
            fields.append(f"*{message.end_label}*\n{message.resolved_at}")
            fields.append(f"*Lasted*\n{human_duration(message.duration_s)}")
        return {
            "text": _escape(message.text),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": message.title[:150]}},
                {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": f"{icon} {_escape(message.site)}: "
                                  f"{_escape(message.site_summary)} · from {message.location}"}],
                },
            ],
        }
