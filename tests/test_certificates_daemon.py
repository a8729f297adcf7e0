"""Certificates in the running daemon: the simulated bank over HTTPS with a certificate
that expires in 10 days (``prober bank --tls-cert-days 10``'s), the prober's own client
certificate, and what ``/status``, ``/metrics`` and the ``certificate`` points say of
them; the bank renews its certificate and the warning is resolved. No key material in any
of it, nor in the logs."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from pathlib import Path

from prober.daemon.health import HealthServer
from prober.daemon.service import ProberService
from prober.loading import load
from prober.simbank import BankServer
from prober.simbank.tls import bank_certificate
from prober.writer.writer import ResultWriter
from tests.certificates import days, root, write
from tests.daemon_helpers import check, config_text, wait_for
from tests.metrics_helpers import parse, scrape, value


def read_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


def https_bank(tmp_path: Path, days_left: float):
    certificate = bank_certificate(days_left)
    context = certificate.server_context(tmp_path / "bank-tls")
    return BankServer(ssl_context=context), certificate.write_ca(tmp_path / "bank-tls"), certificate


async def test_the_banks_certificate_and_the_probers_own_in_status_metrics_and_points(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    own = root("Own CA").issue("prober-qwac", client=True, not_after=days(200))
    combined = write(tmp_path / "qwac-with-key.pem", own.cert_pem, own.key_pem)  # the key in the same file
    key_body = own.key_pem.decode().splitlines()[2]
    bank, ca_file, certificate = https_bank(tmp_path, 10)
    async with bank:
        text = config_text(bank.url, [check("login", interval="300ms")],
                           daemon={"state_dir": str(tmp_path / "state"), "health_listen": ""})
        text = text.replace('[sites.vars]', f'[sites.tls]\nca_file = "{ca_file}"\ncert_file = "{combined}"\n'
                                            '[sites.vars]', 1)
        text += '\n[certificates]\ncheck_every = "1s"\n'
        (tmp_path / "p.toml").write_text(text)
        service = ProberService(load(tmp_path / "p.toml"), writer=ResultWriter(None, spool_dir=tmp_path / "spool"))
        health = HealthServer(service, "127.0.0.1", 0)
        await health.start()
        try:
            await service.start()

            def warned() -> bool:
                return any(e.incident.check == "certificate:server:127.0.0.1" for e in service.incidents.events)

            await wait_for(warned, timeout=15, what="the server certificate's warning")
            status = await asyncio.to_thread(read_json, f"{health.url}/status")
            docs = {d["certificate"]: d for d in status["certificates"]}
            assert set(docs) == {"client", "server:127.0.0.1"}
            server = docs["server:127.0.0.1"]
            assert (server["site"], server["purpose"], server["host"], server["state"], server["warning_step"]) == (
                "simbank", "server", "127.0.0.1", "warning", 14)
            assert 9.9 < server["days_left"] <= 10 and server["verified"] is True
            assert server["subject"].startswith("CN=simbank.localhost") and server["seen_by"] == "login"
            assert server["tls_version"].startswith("TLSv1.")
            client = docs["client"]
            assert (client["state"], client["subject"], client["file"]) == ("ok", own.subject, str(combined))
            assert 199 < client["days_left"] < 200.1
            (opened,) = [i for i in status["incidents"]["open"] if i["kind"] == "certificate"]
            assert opened["error"].startswith("server certificate of 127.0.0.1 (CN=simbank.localhost")
            assert status["incidents"]["sites"]["simbank"]["capabilities"]["login"]["state"] == "ok"

            content_type, metrics_text = await asyncio.to_thread(scrape, health.url)
            samples = parse(metrics_text)
            expiry = "bank_prober_certificate_expiry_timestamp_seconds"
            assert value(samples, expiry, site="simbank", certificate="client") == own.not_after
            served = value(samples, expiry, site="simbank", certificate="server:127.0.0.1")  # a Unix time
            assert 9.9 * 86_400 < served - time.time() < 10 * 86_400

            lines = service.certificates.points(instance="test", time_ns=time.time_ns())
            assert len(lines) == 2
            assert any(line.startswith("certificate,certificate=client,instance=test,location=local,purpose=client,"
                                       "site=simbank ") and f"not_after={own.not_after}i" in line for line in lines)
            assert any("certificate=server:127.0.0.1" in line and "expiry_days=9.9" in line for line in lines)

            # The bank renews its certificate (same CA): new connections present it, the warning ends.
            renewed = certificate.renewed(200)
            folder = tmp_path / "renewed"
            folder.mkdir()
            write(folder / "cert.pem", renewed.cert_pem)
            write(folder / "key.pem", renewed.key_pem)
            assert bank.ssl_context is not None
            bank.ssl_context.load_cert_chain(folder / "cert.pem", folder / "key.pem")

            def resolved() -> bool:
                return any(e.event == "resolved" and e.incident.kind == "certificate"
                           for e in service.incidents.events)

            await wait_for(resolved, timeout=15, what="the warning resolved by the renewed certificate")
            docs = {d["certificate"]: d for d in service.certificates.status()}
            assert docs["server:127.0.0.1"]["state"] == "ok" and docs["server:127.0.0.1"]["incident"] is None
        finally:
            await service.stop(grace=0.0)
            await health.stop()
    everything = json.dumps(status) + metrics_text + "".join(lines) + caplog.text
    assert key_body not in everything
    assert (tmp_path / "state" / "certificates.json").exists()
