"""Microsoft Teams: an Adaptive Card for Workflows webhooks (``format = "adaptive"``, the
default: ``{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "content": {AdaptiveCard 1.4}}]}``), or a
legacy ``MessageCard`` for Office 365 connector webhooks (``format = "messagecard"``)."""

from __future__ import annotations

from typing import Any, Literal

from prober.notify.base import JSONPostNotifier
from prober.notify.message import Message, human_duration
from prober.notify.settings import SecretURLSettings


class TeamsConfig(SecretURLSettings):
    """``type = "teams"``: ``url``/``url_file``; ``format = "adaptive"`` (Workflows
    webhooks, the default) or ``"messagecard"`` (legacy Office 365 connectors)."""

    type: Literal["teams"]
    format: Literal["adaptive", "messagecard"] = "adaptive"


class TeamsNotifier(JSONPostNotifier):
    config: TeamsConfig

    def _facts(self, message: Message) -> list[tuple[str, str]]:
        facts = [
            ("Bank", message.site),
            ("Capability", f"{message.kind} ({message.capability_state})"),
            ("Failing", message.what_fails),
            ("Since", message.since),
        ]
        if message.event == "resolved":
            facts += [(message.end_label, message.resolved_at or ""), ("Lasted", human_duration(message.duration_s))]
        facts.append(("Bank status", message.site_summary))
        return facts

    def payload(self, message: Message) -> Any:
        resolved, closed = message.recovered, message.closed  # closed: neither green nor red
        if self.config.format == "messagecard":
            return {
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "summary": message.title,
                "themeColor": "2EB886" if resolved else "808080" if closed else "D00000",
                "title": message.title,
                "sections": [{"facts": [{"name": k, "value": v} for k, v in self._facts(message)], "markdown": False}],
            }
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "msteams": {"width": "Full"},
            "body": [
                {"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium", "wrap": True,
                 "color": "Good" if resolved else "Default" if closed else "Attention"},
                {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in self._facts(message)]},
            ],
        }
        return {
            "type": "message",
            "attachments": [
                {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
            ],
        }
