"""Microsoft Teams notifier (Adaptive Card for Workflows, legacy MessageCard), against a
real local aiohttp receiver."""

from __future__ import annotations

from prober.notify import parse_notifier
from prober.notify.dispatcher import Dispatcher
from tests.notify_helpers import Receiver, make_message


async def send(url: str, **kw: object) -> Dispatcher:
    d = Dispatcher([parse_notifier({"type": "teams", "url": url, **kw})])
    await d.start()
    d.submit(make_message())
    d.submit(make_message("resolved"))
    assert await d.wait_idle(5)
    await d.close()
    return d


async def test_teams_adaptive_card():
    async with Receiver() as rx:
        await send(rx.url)
    opened = rx.requests[0]["json"]
    assert opened["type"] == "message"
    [attachment] = opened["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    title, facts = card["body"]
    assert title["type"] == "TextBlock" and title["text"] == "INCIDENT simbank: transfer outage"
    facts = {f["title"]: f["value"] for f in facts["facts"]}
    assert facts["Bank"] == "simbank" and facts["Capability"] == "transfer (outage)"
    assert facts["Since"] == "2025-03-01T22:00:00Z" and "step `create`" in facts["Failing"]
    resolved = {f["title"]: f["value"] for f in rx.requests[1]["json"]["attachments"][0]["content"]["body"][1]["facts"]}
    assert resolved["Lasted"] == "1h 30m"


async def test_teams_message_card():
    async with Receiver() as rx:
        await send(rx.url, format="messagecard")
    card = rx.requests[0]["json"]
    assert card["@type"] == "MessageCard" and card["@context"] == "https://schema.org/extensions"
    assert card["summary"] == card["title"] == "INCIDENT simbank: transfer outage"
    facts = {f["name"]: f["value"] for f in card["sections"][0]["facts"]}
    assert facts["Capability"] == "transfer (outage)"
    assert rx.requests[1]["json"]["themeColor"] == "2EB886"


async def test_teams_closed_incident_is_grey_and_not_back():
    async with Receiver() as rx:
        for fmt in ("adaptive", "messagecard"):
            d = Dispatcher([parse_notifier({"type": "teams", "url": rx.url, "format": fmt})])
            await d.start()
            d.submit(make_message("resolved", ended="its check is no longer probed"))
            assert await d.wait_idle(5)
            await d.close()
    card = rx.requests[0]["json"]["attachments"][0]["content"]
    title, facts = card["body"]
    assert title["color"] == "Default" and title["text"].startswith("CLOSED simbank: ")
    assert "Closed at" in {f["title"] for f in facts["facts"]}
    assert rx.requests[1]["json"]["themeColor"] == "808080"
