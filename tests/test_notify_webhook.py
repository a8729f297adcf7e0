"""Generic JSON webhook notifier, against a real local aiohttp receiver."""

from __future__ import annotations

from prober.notify import parse_notifier
from prober.notify.dispatcher import Dispatcher
from tests.notify_helpers import Receiver, make_message


async def test_webhook_payload_and_headers():
    async with Receiver() as rx:
        cfg = parse_notifier({"type": "webhook", "url": rx.url, "headers": {"Authorization": "Bearer x"}})
        d = Dispatcher([cfg])
        await d.start()
        d.submit(make_message())
        d.submit(make_message("resolved"))
        assert await d.wait_idle(5)
        await d.close()
    opened, resolved = (r["json"] for r in rx.requests)
    assert rx.requests[0]["headers"]["Authorization"] == "Bearer x"
    assert opened["event"] == "opened" and opened["state"] == "open"
    assert (opened["site"], opened["kind"], opened["check"]) == ("simbank", "transfer", "transfer")
    assert (opened["failed_step"], opened["outcome"], opened["error"]) == ("create", "http_status", "HTTP 503")
    assert opened["since"] == "2025-03-01T22:00:00Z" and opened["resolved_at"] is None
    assert opened["capability_state"] == "outage"
    assert "partial outage: transfer" in opened["site_summary"]
    assert opened["title"] == "INCIDENT simbank: transfer outage"
    assert resolved["state"] == "resolved" and resolved["duration_s"] == 5400.0
    assert resolved["resolved_at"] == "2025-03-01T23:30:00Z"
    assert "1h 30m" in resolved["title"]
    assert "from 2025-03-01T22:00:00Z to 2025-03-01T23:30:00Z" in resolved["text"]


async def test_webhook_carries_the_check_tags():
    async with Receiver() as rx:
        d = Dispatcher([parse_notifier({"type": "webhook", "url": rx.url})])
        await d.start()
        d.submit(make_message(check="card-auth-us", tags={"merchant_country": "US"}))
        d.submit(make_message())
        assert await d.wait_idle(5)
        await d.close()
    tagged, plain = (r["json"] for r in rx.requests)
    assert tagged["tags"] == {"merchant_country": "US"} and plain["tags"] == {}
    assert "check `card-auth-us` (merchant_country=US) fails at step `create`" in tagged["text"]
