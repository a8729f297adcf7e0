"""Slack incoming-webhook notifier (text + blocks), against a real local aiohttp receiver."""

from __future__ import annotations

from prober.notify import parse_notifier
from prober.notify.dispatcher import Dispatcher
from tests.notify_helpers import Receiver, make_message


async def test_slack_text_and_blocks():
    async with Receiver() as rx:
        d = Dispatcher([parse_notifier({"type": "slack", "url": rx.url})])
        await d.start()
        d.submit(make_message(error="assertion <closing balance> & more"))
        d.submit(make_message("resolved"))
        assert await d.wait_idle(5)
        await d.close()
    opened, resolved = (r["json"] for r in rx.requests)
    assert opened["text"].startswith("INCIDENT simbank: transfer outage")
    assert "&lt;closing balance&gt; &amp; more" in opened["text"]
    header, section, context = opened["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "INCIDENT simbank: transfer outage"}}
    fields = [f["text"] for f in section["fields"]]
    assert fields[0] == "*Bank*\nsimbank" and fields[1] == "*Capability*\ntransfer (outage)"
    assert "step `create`" in fields[2] and fields[3] == "*Since*\n2025-03-01T22:00:00Z"
    assert "partial outage: transfer (outage); ok: login, accounts" in context["elements"][0]["text"]
    fields = [f["text"] for f in resolved["blocks"][1]["fields"]]
    assert "*Lasted*\n1h 30m" in fields and "*Back at*\n2025-03-01T23:30:00Z" in fields


async def test_slack_closed_incident_is_not_shown_as_back():
    async with Receiver() as rx:
        d = Dispatcher([parse_notifier({"type": "slack", "url": rx.url})])
        await d.start()
        d.submit(make_message("resolved", ended="its check is no longer probed"))
        assert await d.wait_idle(5)
        await d.close()
    [closed] = (r["json"] for r in rx.requests)
    assert closed["blocks"][0]["text"]["text"] == "CLOSED simbank: transfer check `transfer` no longer probed"
    fields = [f["text"] for f in closed["blocks"][1]["fields"]]
    assert "*Closed at*\n2025-03-01T23:30:00Z" in fields and not any("Back at" in f for f in fields)
    assert closed["blocks"][2]["elements"][0]["text"].startswith(":heavy_minus_sign: ")
