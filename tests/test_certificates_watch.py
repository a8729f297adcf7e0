"""The certificate watch: the ladder's incidents, notified through the real notifiers, and
what the prober does when its own certificate is renewed on disk, half-written, or expired.

The incident service, the alerting (maintenance silencing, a webhook notifier posting to a
real HTTP receiver) and the watch are the daemon's own; the clock the ladder reads is
moved by hand (the host's clock is the only clock the prober trusts), and the files are
real files renewed in place.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
from pathlib import Path

import pytest
from aiohttp import web

from prober.config.incidents import MaintenanceWindow
from prober.config.statuspage import StatusPageConfig
from prober.daemon.alerting import compose_incidents
from prober.daemon.certificates import CertificateWatch
from prober.journey.runner import run_journey
from prober.loading import load
from prober.notify import parse_notifier
from prober.results import JourneyResult, Kind, Outcome
from prober.statuspage.view import build_view
from prober.writer import ResultWriter
from tests.certificates import days, root, write
from tests.notify_helpers import Receiver

DAY = 86_400.0

SITE = """
[daemon]
state_dir = "{state}"
[[sites]]
name = "bank"
base_url = "{url}"
timeout = "2s"
[sites.tls]
cert_file = "{cert}"
key_file = "{key}"
{ca}
[[sites.checks]]
name = "login"
kind = "login"
  [[sites.checks.steps]]
  name = "who"
  path = "/whoami"
[[sites.checks]]
name = "accounts"
kind = "accounts"
  [[sites.checks.steps]]
  name = "who"
  path = "/whoami"
"""


class Clock:
    """The host's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, days_: float) -> None:
        self.now += days_ * DAY


@pytest.fixture
def ca():
    return root("Client CA")


def client_files(tmp_path: Path, ca, not_after_days: float, name: str = "prober-qwac", *, in_place: bool = True):
    """The client certificate and its key, written in place (the same two files each time)."""
    issued = ca.issue(name, client=True, not_after=days(not_after_days), not_before=days(-100))
    cert, key = tmp_path / "qwac.pem", tmp_path / "qwac.key"
    write(cert, issued.cert_pem)
    write(key, issued.key_pem)
    return issued, cert, key


def loaded_config(tmp_path: Path, cert: Path, key: Path, url: str = "https://127.0.0.1:1", ca: str = "",
                  extra: str = ""):
    (tmp_path / "p.toml").write_text(extra + SITE.format(state=tmp_path / "state", url=url, cert=cert, key=key, ca=ca))
    return load(tmp_path / "p.toml", environ={})


async def incidents_with_webhook(tmp_path: Path, config, receiver: Receiver, maintenance=()):
    hook = parse_notifier({"type": "webhook", "url": receiver.url, "reminders": False})
    config = config.model_copy(update={"notifiers": [hook], "incidents": config.incidents.model_copy(
        update={"maintenance": list(maintenance)})})
    writer = ResultWriter(None, spool_dir=tmp_path / "spool")
    service, alerting = compose_incidents(config, writer, state_dir=tmp_path / "state")
    await alerting.start()
    await service.start()
    return service, alerting


async def watching(tmp_path: Path, config, receiver: Receiver, clock=time.time, maintenance=()):
    """The incident service, its alerting and a started certificate watch, as the daemon composes them."""
    service, alerting = await incidents_with_webhook(tmp_path, config, receiver, maintenance)
    watch = CertificateWatch(config, incidents=service, clock=clock)
    await watch.start()
    return service, alerting, watch


async def stop_watching(service, alerting, watch) -> None:
    """Let the notifications go out, then close in the daemon's order."""
    assert await alerting.dispatcher.wait_idle(5)
    await watch.close()
    await service.close()
    await alerting.close()


def failed_run(check: str, kind: Kind) -> JourneyResult:
    return JourneyResult(site="bank", check=check, kind=kind, location="local", outcome=Outcome.TLS,
                         started_at_ns=time.time_ns(), duration_ms=3.0, failed_step="who",
                         error="tls: handshake failed (127.0.0.1:1)")


async def test_the_ladder_of_an_own_certificate_from_first_warning_to_expiry_and_renewal(tmp_path: Path, ca) -> None:
    issued, cert, key = client_files(tmp_path, ca, 40)
    loaded = loaded_config(tmp_path, cert, key)
    clock = Clock()
    async with Receiver() as rx:
        service, alerting, watch = await watching(tmp_path, loaded.config, rx, clock)
        assert service.events == type(service.events)()  # 40 days left: nothing to say
        (doc,) = watch.status()
        assert (doc["certificate"], doc["purpose"], doc["state"], doc["subject"]) == (
            "client", "client", "ok", issued.subject)
        assert 39.9 < doc["days_left"] < 40.1 and doc["used_by"] == ["login", "accounts"]

        steps = []
        for advance in (11, 5, 6, 2, 5, 1.5, 0.3, 1):  # 29, 24, 18, 16, 11, 9.5, 9.2, 8.2 days left…
            clock.advance(advance)
            watch.evaluate()
            steps.append(watch.own[("bank", "client")].step)
        assert steps == [30, 30, 30, 30, 14, 14, 14, 14]
        for advance in (2, 5.5, 1):  # 6.2: the 7-day step; 0.7: the 1-day step; expired 0.3 days ago
            clock.advance(advance)
            watch.evaluate()
        events = [(e.event, e.incident.kind, e.incident.check) for e in service.events]
        assert events == [
            ("opened", "certificate", "certificate:client"),
            ("escalated", "certificate", "certificate:client"),
            ("escalated", "certificate", "certificate:client"),
            ("escalated", "certificate", "certificate:client"),
            ("escalated", "certificate", "certificate:client"),
            ("opened", "login", "certificate:client:login"),
            ("opened", "accounts", "certificate:client:accounts"),
        ]
        # Expired: an outage of every capability that uses it, with that reason; the
        # warning itself is never a capability's state.
        states = service.capabilities()
        assert {kind: states[("bank", kind)].state for kind in ("login", "accounts")} == {
            "login": "outage", "accounts": "outage"}
        assert ("bank", "certificate") not in states
        outage = service.status().to_json()["sites"]["bank"]["capabilities"]["accounts"]["incidents"][0]
        assert outage["error"].startswith(f"mutual TLS client certificate client ({issued.subject}) expired ")
        assert "the bank refuses the connections that present it; renew sites[bank].tls.cert_file" in outage["error"]
        # The checks fail meanwhile (the bank refuses the certificate): the outage carries
        # their failures, no incident of their own is opened.
        for _ in range(5):
            service.consume(failed_run("accounts", "accounts"))
            service.consume(failed_run("login", "login"))
        assert len(service.events) == 7

        renewed, _, _ = client_files(tmp_path, ca, 400, "prober-qwac-2025")
        watch.evaluate()
        assert [(e.event, e.incident.kind) for e in list(service.events)[7:]] == [
            ("resolved", "certificate"), ("resolved", "login"), ("resolved", "accounts")]
        assert {s.state for s in service.capabilities().values()} == {"ok"}
        assert watch.status()[0]["subject"] == renewed.subject
        await stop_watching(service, alerting, watch)
    messages = [r["json"] for r in rx.requests]
    assert [(m["event"], m["kind"]) for m in messages] == [
        ("opened", "certificate"), ("escalated", "certificate"), ("escalated", "certificate"),
        ("escalated", "certificate"), ("escalated", "certificate"), ("opened", "login"), ("opened", "accounts"),
        ("resolved", "certificate"), ("resolved", "login"), ("resolved", "accounts")]
    first = messages[0]
    assert first["title"].startswith(f"CERTIFICATE bank: mutual TLS client certificate client ({issued.subject}) "
                                     "expires in 29 days, on ")
    assert "sites[bank].tls.cert_file" in first["text"] and "used by checks login, accounts" in first["text"]
    assert "expires in 11 days" in messages[1]["title"] and "expires in 6 days" in messages[2]["title"]
    assert "expires in 17 hours" in messages[3]["title"] and "expired 7 hours ago" in messages[4]["title"]
    assert messages[5]["title"] == "INCIDENT bank: login outage"
    assert messages[7]["title"] == "RESOLVED bank: certificate client renewed"
    key_body = issued.key_pem.decode().splitlines()[2]
    assert key_body not in json.dumps(messages) and key_body not in json.dumps(watch.status())


async def test_a_restart_neither_opens_again_nor_repeats_a_step(tmp_path: Path, ca) -> None:
    _, cert, key = client_files(tmp_path, ca, 12)
    loaded = loaded_config(tmp_path, cert, key)
    clock = Clock()
    async with Receiver() as rx:
        service, alerting, watch = await watching(tmp_path, loaded.config, rx, clock)
        incident = watch.own[("bank", "client")].incident
        assert incident and watch.own[("bank", "client")].step == 14
        await stop_watching(service, alerting, watch)

        service, alerting, watch = await watching(
            tmp_path, loaded.config, rx, clock
        )  # the same step: nothing to announce
        assert watch.own[("bank", "client")].incident == incident and len(service.events) == 0
        clock.advance(6)
        watch.evaluate()  # the 7-day step: the same incident, escalated
        assert [(e.event, e.incident.id) for e in service.events] == [("escalated", incident)]
        await stop_watching(service, alerting, watch)
    assert [r["json"]["event"] for r in rx.requests] == ["opened", "escalated"]


async def test_maintenance_silences_a_certificate_warning_like_any_incident(tmp_path: Path, ca) -> None:
    _, cert, key = client_files(tmp_path, ca, 5)
    loaded = loaded_config(tmp_path, cert, key)
    window = MaintenanceWindow(site="bank", start="2000-01-01T00:00:00Z", end="2100-01-01T00:00:00Z")
    async with Receiver() as rx:
        service, alerting, watch = await watching(tmp_path, loaded.config, rx, maintenance=[window])
        assert [e.event for e in service.events] == ["opened"]
        await stop_watching(service, alerting, watch)
    assert rx.requests == [] and alerting.silenced == 1


async def test_with_probers_deciding_across_locations_each_notifies_its_own_certificates(tmp_path: Path, ca) -> None:
    """``[incidents.locations]``: capability incidents are notified once confirmed across
    locations; a certificate is one prober's own, and that prober notifies its warning."""
    _, cert, key = client_files(tmp_path, ca, 5)
    loaded = loaded_config(tmp_path, cert, key, extra='[influxdb]\nurl = "http://127.0.0.1:9"\napi = "v1"\n'
                                                      'database = "prober"\n[incidents.locations]\nconfirm = 2\n')
    async with Receiver() as rx:
        service, alerting, watch = await watching(tmp_path, loaded.config, rx)
        for _ in range(3):  # a capability's own incident: not notified here
            service.consume(failed_run("login", "login"))
        await stop_watching(service, alerting, watch)
    assert [e.incident.kind for e in service.events] == ["certificate", "login"]
    assert [(r["json"]["event"], r["json"]["kind"]) for r in rx.requests] == [("opened", "certificate")]


# -- the client certificate renewed in place on disk ----------------------------------------


class MutualTLSBank:
    """An HTTPS server that requires a client certificate and says whose it was (``/whoami``)."""

    def __init__(self, tmp_path: Path, client_ca) -> None:
        server_ca = root("Server CA")
        leaf = server_ca.issue("bank.test")
        self.ca_file = write(tmp_path / "server-ca.pem", server_ca.cert_pem)
        cert_file = write(tmp_path / "server.pem", leaf.cert_pem)
        key_file = write(tmp_path / "server.key", leaf.key_pem)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert_file, key_file)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_verify_locations(cadata=client_ca.cert_pem.decode())
        self.seen: list[str] = []
        self.url = ""

    async def _whoami(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(item[0] for item in (peer or {}).get("subject", ()))
        self.seen.append(subject.get("commonName", ""))
        return web.json_response({"cn": self.seen[-1]})

    async def __aenter__(self) -> MutualTLSBank:
        app = web.Application()
        app.router.add_get("/whoami", self._whoami)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.context)
        await site.start()
        self.url = f"https://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


async def test_a_client_certificate_renewed_in_place_is_presented_and_resolves_the_warning(
        tmp_path: Path, ca, caplog) -> None:
    caplog.set_level(logging.INFO)
    old, cert, key = client_files(tmp_path, ca, 10, "prober-old")
    async with MutualTLSBank(tmp_path, ca) as bank:
        loaded = loaded_config(tmp_path, cert, key, bank.url, f'ca_file = "{bank.ca_file}"')
        plan = next(p for p in loaded.plans if p.check == "accounts")
        watch = CertificateWatch(loaded.config)  # no incident service: judging and presenting only
        watch.use_plans(loaded.plans)
        await watch.start()
        assert (await run_journey(plan)).outcome is Outcome.OK
        assert watch.status()[0]["warning_step"] == 14

        # Half-written: the certificate file is not PEM for a moment. Logged, shown, and
        # the last certificate read stays the one judged and presented.
        cert.write_text("-----BEGIN CERTIFICATE-----\ntruncated")
        watch.evaluate()
        (doc,) = watch.status()
        assert doc["error"] == f"cannot load certificate file {cert}: not a PEM or DER certificate"
        assert doc["subject"] == old.subject and doc["warning_step"] == 14
        assert (await run_journey(plan)).outcome is Outcome.OK and bank.seen[-1] == "prober-old"

        # A certificate whose key is not there yet: not presented (it would not work).
        stranger = ca.issue("prober-new", client=True, not_after=days(400))
        write(cert, stranger.cert_pem)
        watch.evaluate()
        assert "with its key" in watch.status()[0]["error"]
        assert (await run_journey(plan)).outcome is Outcome.OK and bank.seen[-1] == "prober-old"

        # Then the key: the pair loads, new connections present it, the warning is over.
        write(key, stranger.key_pem)
        watch.evaluate()
        (doc,) = watch.status()
        assert doc["error"] is None and doc["subject"] == stranger.subject and doc["state"] == "ok"
        assert (await run_journey(plan)).outcome is Outcome.OK and bank.seen[-1] == "prober-new"
        await watch.close()
    logged = caplog.text
    assert "not a PEM or DER certificate; still judging the last one read" in logged
    assert "read again from" in logged
    for pem in (old.key_pem, stranger.key_pem):
        assert pem.decode().splitlines()[2] not in logged


async def test_an_unreadable_certificate_at_reload_keeps_the_running_configuration(tmp_path: Path, ca) -> None:
    """A reload compiles the new configuration first: a client certificate that is not PEM
    (or cannot be read) refuses the reload, naming the field, and the old one runs on."""
    from prober.config.errors import ConfigError

    _, cert, key = client_files(tmp_path, ca, 100)
    loaded = loaded_config(tmp_path, cert, key)
    broken = tmp_path / "broken.pem"
    broken.write_text("this is not a certificate")
    with pytest.raises(ConfigError, match=r"sites\[bank\]\.tls: cannot load certificate or key"):
        loaded_config(tmp_path, broken, key)
    watch = CertificateWatch(loaded.config)
    await watch.start()
    assert watch.status()[0]["state"] == "ok"
    await watch.close()


# -- the status page --------------------------------------------------------------------


async def test_a_certificate_warning_is_on_the_internal_page_only(tmp_path: Path, ca) -> None:
    _, cert, key = client_files(tmp_path, ca, 3)
    loaded = loaded_config(tmp_path, cert, key)
    writer = ResultWriter(None, spool_dir=tmp_path / "spool")
    service, alerting = compose_incidents(loaded.config, writer, state_dir=tmp_path / "state")
    watch = CertificateWatch(loaded.config, incidents=service)
    await watch.start()
    views = {public: build_view(StatusPageConfig(public=public, title="t", history_days=7), incidents=service.status(),
                                runs=[], maintenance=[], history={}, history_source="local")
             for public in (True, False)}
    assert [i.kind for i in views[False].open] == ["certificate"]
    assert (views[False].open[0].error or "").startswith("mutual TLS client certificate client")
    assert views[True].open == ()
    for view in views.values():  # never a capability's state
        assert all(cell.state in ("ok", "unknown") for row in view.rows for cell in row.cells)
        assert "certificate" not in view.kinds
    await watch.close()


async def test_a_server_certificate_not_valid_yet_seen_without_verification(tmp_path: Path, ca) -> None:
    """``verify = false``: the step works and reports what it was served; a certificate not
    valid yet is warned about as such (a verified step fails its handshake instead)."""
    from prober.results import ServerCertificate, StepResult

    _, cert, key = client_files(tmp_path, ca, 300)
    loaded = loaded_config(tmp_path, cert, key)
    writer = ResultWriter(None, spool_dir=tmp_path / "spool")
    service, _ = compose_incidents(loaded.config, writer, state_dir=tmp_path / "state")
    watch = CertificateWatch(loaded.config, incidents=service)
    await watch.start()
    now = int(time.time())
    future = ServerCertificate(host="api.bank.test", subject="CN=api.bank.test", issuer="CN=api.bank.test",
                               not_before=now + 2 * 86_400, not_after=now + 90 * 86_400,
                               chain_not_after=now + 90 * 86_400, earliest_subject="CN=api.bank.test",
                               tls_version="TLSv1.3", verified=False, fingerprint="aa")
    step = StepResult(name="who", outcome=Outcome.OK, certificate=future, started_at_ns=time.time_ns())
    watch.consume(JourneyResult(site="bank", check="accounts", kind="accounts", location="local",
                                outcome=Outcome.OK, started_at_ns=time.time_ns(), duration_ms=1.0, steps=(step,)))
    watch.evaluate()
    (event,) = service.events
    assert (event.event, event.incident.check) == ("opened", "certificate:server:api.bank.test")
    assert event.incident.error.startswith("server certificate of api.bank.test (CN=api.bank.test) is not valid "
                                           "yet, not before ")
    assert "(not verified: verify = false)" in event.incident.error
    docs = {d["certificate"]: d for d in watch.status()}
    assert docs["server:api.bank.test"]["state"] == "not_yet_valid"
    assert docs["server:api.bank.test"]["verified"] is False
    assert service.capabilities()[("bank", "accounts")].state == "ok"
    await watch.close()


async def test_a_certificate_removed_by_a_reload_ends_its_warning(tmp_path: Path, ca) -> None:
    _, cert, key = client_files(tmp_path, ca, 5)
    loaded = loaded_config(tmp_path, cert, key)
    async with Receiver() as rx:
        service, alerting, watch = await watching(tmp_path, loaded.config, rx)
        assert [e.event for e in service.events] == ["opened"]
        (tmp_path / "p.toml").write_text((tmp_path / "p.toml").read_text().replace(
            f'cert_file = "{cert}"\nkey_file = "{key}"\n', ""))
        watch.reload(load(tmp_path / "p.toml", environ={}).config)
        assert [e.event for e in service.events] == ["opened", "resolved"]
        assert service.events[-1].incident.ended == "the certificate is no longer configured"
        assert watch.status() == []
        await stop_watching(service, alerting, watch)
    closed = rx.requests[-1]["json"]
    assert closed["title"] == "CLOSED bank: certificate client no longer watched"  # not "renewed": nobody saw that
    assert "no renewal seen: the certificate is no longer configured" in closed["text"]
    assert json.loads((tmp_path / "state" / "certificates.json").read_text()) == {"certificates": {}}
