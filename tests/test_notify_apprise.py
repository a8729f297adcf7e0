"""Apprise notifier against real local receivers: its JSON target (an aiohttp server)
and its e-mail target (a real SMTP server, aiosmtpd), through the dispatcher."""

from __future__ import annotations

import asyncio
import logging
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from pydantic import ValidationError

from prober.config.errors import ConfigError
from prober.loading import load
from prober.notify import parse_notifier
from prober.notify.apprise import AppriseConfig
from prober.notify.dispatcher import Dispatcher
from tests.fixtures.servers import free_port
from tests.notify_helpers import Receiver, make_message


def _json_url(receiver_url: str) -> str:
    """Apprise's json:// target for the receiver (``http://h:p/path`` → ``json://h:p/path``)."""
    return "json://" + receiver_url.removeprefix("http://")


async def test_json_target_receives_title_and_text_of_opened_and_resolved() -> None:
    async with Receiver() as rx:
        d = Dispatcher([parse_notifier({"type": "apprise", "urls": [_json_url(rx.url)]})])
        await d.start()
        d.submit(make_message())
        d.submit(make_message("resolved"))
        assert await d.wait_idle(10)
        await d.close()
    assert d.sent == 2 and d.failed == 0
    bodies = sorted((r["json"] for r in rx.requests), key=lambda b: b["title"])
    opened, resolved = bodies[0], bodies[1]
    assert opened["title"] == "INCIDENT simbank: transfer outage"
    assert "check `transfer` fails at step `create`: http_status (HTTP 503)" in opened["message"]
    assert opened["type"] == "failure"
    assert resolved["title"].startswith("RESOLVED simbank: transfer is back after 1h 30m")
    assert resolved["type"] == "success"


async def test_a_failing_target_is_retried_and_its_url_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with Receiver("fail") as rx:
        config = parse_notifier({"type": "apprise", "urls": [_json_url(rx.url)], "retries": 2,
                                 "backoff": "10ms", "backoff_max": "20ms"})
        d = Dispatcher([config])
        await d.start()
        d.submit(make_message())
        assert await d.wait_idle(10)
        await d.close()
    assert len(rx.requests) == 3 and d.failed == 1  # one attempt and two retries
    assert "apprise: 1 of 1 services failed" in caplog.text
    ours = [r for r in caplog.records if not r.name.startswith("aiohttp")]  # the receiver's own access log
    assert ours and not [r.getMessage() for r in ours if "T0KEN-SECRET" in r.getMessage()]


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        self.messages.append(envelope.content)
        return "250 OK"


async def test_mail_target_delivers_to_a_real_smtp_server() -> None:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        url = f"mailto://127.0.0.1:{port}?from=prober@bank-prober.test&to=ops@bank.test&mode=insecure"
        d = Dispatcher([parse_notifier({"type": "apprise", "urls": [url], "timeout": "20s"})])
        await d.start()
        d.submit(make_message())
        assert await d.wait_idle(30)
        await d.close()
        for _ in range(50):
            if inbox.messages:
                break
            await asyncio.sleep(0.1)
    finally:
        controller.stop()
    assert d.sent == 1, d.failed
    (raw,) = inbox.messages
    mail = message_from_bytes(raw)
    assert mail["Subject"] == "INCIDENT simbank: transfer outage"
    assert "ops@bank.test" in mail["To"]
    part = mail.get_payload(0) if mail.is_multipart() else mail
    assert isinstance(part, Message)
    body = part.get_payload(decode=True)
    assert b"since 2025-03-01T22:00:00Z" in body


def test_urls_are_secrets_checked_at_load(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        parse_notifier({"type": "apprise", "urls": ["json://127.0.0.1/ok", "nope-T0KEN-SECRET"]})
    assert "URL #2 is not one Apprise understands" in str(info.value)
    assert "T0KEN-SECRET" not in str(info.value)
    with pytest.raises(ValidationError, match="at least one URL"):
        parse_notifier({"type": "apprise", "urls": []})

    listed = tmp_path / "apprise-urls"
    listed.write_text("# ops\npagerduty://integration-T0KEN-SECRET@routing-key\n\ntgram://123456789:ABCdef/987\n")
    config = parse_notifier({"type": "apprise", "urls_file": str(listed)})
    assert isinstance(config, AppriseConfig) and len(config.urls) == 2
    assert "T0KEN-SECRET" not in repr(config) and "T0KEN-SECRET" not in str(config.model_dump())


def test_a_wrong_option_names_the_provider_and_field(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('''
[[sites]]
name = "bank"
base_url = "http://127.0.0.1:9"
[[sites.checks]]
name = "login"
kind = "login"
interval = "30s"
[[sites.checks.steps]]
name = "home"
path = "/"

[[notifiers]]
type = "apprise"
urls = ["json://127.0.0.1/x"]
headers = { Authorization = "Bearer x" }
''')
    with pytest.raises(ConfigError) as info:
        load(config)
    assert info.value.problems == [
        f'{config}: notifiers[0].headers: headers applies to type = "webhook" only, not to type = "apprise"']


async def test_json_target_gets_a_closed_incident_as_info_not_success() -> None:
    async with Receiver() as rx:
        d = Dispatcher([parse_notifier({"type": "apprise", "urls": [_json_url(rx.url)]})])
        await d.start()
        d.submit(make_message("resolved", ended="its check is no longer probed"))
        assert await d.wait_idle(10)
        await d.close()
    [closed] = (r["json"] for r in rx.requests)
    assert closed["title"] == "CLOSED simbank: transfer check `transfer` no longer probed"
    assert closed["type"] == "info"
