"""The dispatcher against a REAL local aiohttp receiver: routing, retries, timeouts, and
that a hanging or failing notifier never delays the result consumer."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from pydantic import ValidationError

from prober.notify import parse_notifier
from prober.notify.dispatcher import Dispatcher, routes
from prober.notify.settings import NotifierSettings, SecretURLSettings
from tests.notify_helpers import Receiver, make_message


def notifier(url: str, **kw: object) -> NotifierSettings:
    return parse_notifier({"type": "webhook", "url": url, "backoff": "10ms", "backoff_max": "50ms", **kw})


async def test_routing_by_site_and_kind():
    cfg = notifier("http://127.0.0.1:1/x", sites=["simbank"], kinds=["transfer", "cards"])
    assert routes(cfg, make_message())
    assert routes(cfg, make_message(kind="cards"))
    assert not routes(cfg, make_message(kind="login"))
    assert not routes(cfg, make_message(site="other"))
    assert routes(notifier("http://127.0.0.1:1/x"), make_message(site="other", kind="login"))
    assert not routes(notifier("http://127.0.0.1:1/x", reminders=False), make_message(event="reminder"))


async def test_retries_with_backoff_until_delivered():
    async with Receiver("fail_then_ok", failures=2) as rx:
        d = Dispatcher([notifier(rx.url, retries=3)])
        await d.start()
        d.submit(make_message())
        assert await d.wait_idle(5)
        await d.close()
    assert len(rx.requests) == 3 and d.sent == 1 and d.failed == 0
    assert rx.requests[1]["at"] - rx.requests[0]["at"] >= 0.005  # waited before retrying


async def test_gives_up_after_retries_and_does_not_retry_4xx(caplog):
    caplog.set_level(logging.ERROR, "prober.notify")
    async with Receiver("fail") as rx:
        d = Dispatcher([notifier(rx.url, retries=2)])
        await d.start()
        d.submit(make_message())
        assert await d.wait_idle(5)
        assert len(rx.requests) == 3 and d.failed == 1
        rx.mode, rx.requests = "bad_request", []
        d.submit(make_message())
        assert await d.wait_idle(5)
        assert len(rx.requests) == 1 and d.failed == 2
        await d.close()
    assert "HTTP 500" in caplog.text and "HTTP 400" in caplog.text
    assert "T0KEN-SECRET" not in caplog.text  # the webhook URL is a secret


async def test_hanging_notifier_times_out_and_never_blocks_submit():
    async with Receiver("hang") as rx:
        d = Dispatcher([notifier(rx.url, timeout="200ms", retries=1)])
        await d.start()
        started = time.perf_counter()
        for _ in range(20):
            d.submit(make_message())
        assert time.perf_counter() - started < 0.005 * 20
        assert await d.wait_idle(5)
        assert d.failed == 20 and len(rx.requests) == 40  # two attempts each, each cut at 200 ms
        await d.close()


def test_url_or_url_file_secret(tmp_path):
    secret = tmp_path / "hook"
    secret.write_text("https://hooks.example.com/services/T0KEN-SECRET\n")
    cfg = parse_notifier({"type": "slack", "url_file": str(secret)})
    assert isinstance(cfg, SecretURLSettings)
    assert cfg.url.get_secret_value() == "https://hooks.example.com/services/T0KEN-SECRET"
    assert "T0KEN-SECRET" not in repr(cfg) and "T0KEN-SECRET" not in str(cfg.model_dump())
    with pytest.raises(ValidationError, match="exactly one of `url`, `url_file`"):
        parse_notifier({"type": "slack"})
    with pytest.raises(ValidationError) as info:
        parse_notifier({"type": "slack", "url": "ftp://T0KEN-SECRET"})
    assert "http:// or https://" in str(info.value)
    with pytest.raises(ValidationError) as info:  # each type owns its options
        parse_notifier({"type": "slack", "url": "https://x.example", "format": "adaptive"})
    assert "slack.format" in str(info.value) and "Extra inputs are not permitted" in str(info.value)


async def test_close_cancels_deliveries_that_outlive_the_grace_period():
    async with Receiver("hang") as rx:
        d = Dispatcher([notifier(rx.url, timeout="30s")])
        await d.start()
        d.submit(make_message())
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        await d.close(timeout=0.2)
        assert time.perf_counter() - started < 2
        assert d.pending == 0
