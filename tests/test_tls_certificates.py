"""The bank's certificate, read from the handshake each step's connection made.

Real HTTPS servers on loopback (:class:`EchoBank` with chosen certificate chains), the
real runner, the real point encoder and JSON output. What a step records: the leaf's
not-after and days left, the chain's earliest not-after, the issuer, the TLS version;
once per connection (a reused connection reports the same), nothing over plain HTTP.
"""

from __future__ import annotations

import json
import ssl
import sys
import time
from pathlib import Path

import pytest

from prober.journey.plan import JourneyPlan
from prober.journey.runner import run_journey
from prober.loading import load
from prober.output.jsonl import to_json_line
from prober.results import Outcome
from prober.writer.points import journey_lines
from tests.certificates import NOW, days, root, self_signed, server_context, write
from tests.fixtures.echo_bank import EchoBank


def plan_for(tmp_path: Path, base_url: str, steps: int = 1, tls: str = "") -> JourneyPlan:
    body = "".join(f'[[sites.checks.steps]]\nname = "s{i}"\npath = "/ok"\n' for i in range(steps))
    (tmp_path / "t.toml").write_text(
        f'[[sites]]\nname = "bank"\nbase_url = "{base_url}"\ntimeout = "5s"\n{tls}\n'
        f'[[sites.checks]]\nname = "c"\nkind = "accounts"\ninterval = "60s"\ntimeout = "10s"\n{body}')
    return load(tmp_path / "t.toml", environ={}).plans[0]


@pytest.fixture(scope="module")
def chain():
    """A root, an intermediate expiring in 20 days, a leaf expiring in 40."""
    anchor = root()
    intermediate = anchor.issue("Test Intermediate CA", ca=True, not_after=days(20))
    leaf = intermediate.issue("api.bank.test", not_after=days(40))
    return anchor, intermediate, leaf


def trust(tmp_path: Path, anchor) -> str:
    return f'[sites.tls]\nca_file = "{write(tmp_path / "ca.pem", anchor.cert_pem)}"'


async def test_a_verified_step_records_leaf_chain_issuer_and_tls_version(tmp_path: Path, chain) -> None:
    anchor, intermediate, leaf = chain
    async with EchoBank(ssl_context=server_context(tmp_path, leaf, intermediate)) as bank:
        result = await run_journey(plan_for(tmp_path, bank.url, steps=2, tls=trust(tmp_path, anchor)))
    assert result.outcome is Outcome.OK, result.error
    first, second = result.steps
    cert = first.certificate
    assert cert is not None
    assert cert.host == "127.0.0.1"
    assert cert.not_after == leaf.not_after
    assert cert.subject == leaf.subject and cert.issuer == intermediate.subject
    assert cert.verified and cert.tls_version in ("TLSv1.3", "TLSv1.2")
    # The verified chain (leaf, intermediate, root): the intermediate expires first. This
    # needs the chain from the handshake: public in Python 3.13, CPython's private
    # _sslobj methods before (prober/journey/tlspeer.py). It fails if they go away.
    assert cert.chain_not_after == intermediate.not_after
    assert cert.earliest_subject == intermediate.subject
    assert 39 < cert.expiry_days(first.started_at_ns / 1e9) < 41
    # The second step reused the connection: no new handshake, the same certificate.
    assert second.phases is not None and second.phases.tls_ms == 0.0
    assert second.certificate == cert


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="the public API is used from 3.13")
def test_the_private_chain_api_this_interpreter_offers_is_there() -> None:
    """CPython 3.10-3.12 have the chain on the SSL object's private ``_sslobj``."""
    import _ssl

    # typeshed's _ssl stub leaves out the private socket class this test is about
    socket_class = _ssl._SSLSocket  # type: ignore[attr-defined]
    assert hasattr(socket_class, "get_verified_chain") and hasattr(socket_class, "get_unverified_chain")


async def test_the_step_point_and_the_json_carry_the_certificate(tmp_path: Path, chain) -> None:
    anchor, intermediate, leaf = chain
    async with EchoBank(ssl_context=server_context(tmp_path, leaf, intermediate)) as bank:
        result = await run_journey(plan_for(tmp_path, bank.url, tls=trust(tmp_path, anchor)))
    check_line, step_line = journey_lines(result)
    assert "cert_" not in check_line
    fields = step_line.split(" ")[1] if "\\ " not in step_line else step_line
    assert f"cert_not_after={leaf.not_after}i" in fields
    assert f"cert_chain_not_after={intermediate.not_after}i" in fields
    assert "cert_expiry_days=39." in fields or "cert_expiry_days=40." in fields
    assert 'cert_issuer="CN=Test Intermediate CA' in step_line
    assert 'tls_version="TLSv1.' in step_line
    step = json.loads(to_json_line(result))["steps"][0]
    assert step["tls"]["cert_not_after"] == leaf.not_after
    assert step["tls"]["cert_chain_not_after"] == intermediate.not_after
    assert step["tls"]["cert_issuer"] == intermediate.subject
    assert step["tls"]["version"].startswith("TLSv1.") and step["tls"]["verified"] is True
    assert 39 < step["tls"]["cert_expiry_days"] < 41


async def test_plain_http_records_no_certificate(tmp_path: Path) -> None:
    async with EchoBank() as bank:
        result = await run_journey(plan_for(tmp_path, bank.url))
    assert result.outcome is Outcome.OK and result.steps[0].certificate is None
    assert "cert_" not in "".join(journey_lines(result)) and "tls_version" not in "".join(journey_lines(result))
    assert "tls" not in json.loads(to_json_line(result))["steps"][0]


async def test_self_signed_with_verify_false_is_still_reported(tmp_path: Path) -> None:
    lonely = self_signed(not_after=days(12))
    async with EchoBank(ssl_context=server_context(tmp_path, lonely)) as bank:
        result = await run_journey(plan_for(tmp_path, bank.url, tls="[sites.tls]\nverify = false"))
    assert result.outcome is Outcome.OK, result.error
    cert = result.steps[0].certificate
    assert cert is not None and not cert.verified
    assert cert.not_after == lonely.not_after == cert.chain_not_after
    assert cert.issuer == cert.subject == lonely.subject


async def test_a_chain_sent_in_the_wrong_order_is_verified_and_its_earliest_expiry_found(tmp_path: Path) -> None:
    """The server sends leaf, root, then the intermediate (the intermediate should come
    first). OpenSSL builds the chain by name, not by position: verified, and the
    earliest expiry is the intermediate's, whichever way it is read."""
    anchor = root("Wrong Order Root")
    intermediate = anchor.issue("Wrong Order Intermediate", ca=True, not_after=days(9))
    leaf = intermediate.issue("api.bank.test", not_after=days(60))
    context = server_context(tmp_path, leaf, anchor, intermediate)
    async with EchoBank(ssl_context=context) as bank:
        verified = await run_journey(plan_for(tmp_path, bank.url, tls=trust(tmp_path, anchor)))
        unverified = await run_journey(plan_for(tmp_path, bank.url, tls="[sites.tls]\nverify = false"))
    assert verified.outcome is Outcome.OK, verified.error
    assert unverified.outcome is Outcome.OK, unverified.error
    for result in (verified, unverified):
        cert = result.steps[0].certificate
        assert cert is not None
        assert (cert.not_after, cert.chain_not_after) == (leaf.not_after, intermediate.not_after)
        assert cert.earliest_subject == intermediate.subject


async def test_a_server_certificate_not_valid_yet(tmp_path: Path) -> None:
    """Verified: the handshake fails (outcome ``tls``, OpenSSL's reason) and there is no
    certificate to report. With ``verify = false`` the step works and reports it."""
    anchor = root("Future Root")
    leaf = anchor.issue("api.bank.test", not_before=days(2), not_after=days(90))
    async with EchoBank(ssl_context=server_context(tmp_path, leaf)) as bank:
        verified = await run_journey(plan_for(tmp_path, bank.url, tls=trust(tmp_path, anchor)))
        unverified = await run_journey(plan_for(tmp_path, bank.url, tls="[sites.tls]\nverify = false"))
    assert verified.outcome is Outcome.TLS
    assert "not yet valid" in verified.error and verified.steps[0].certificate is None
    assert unverified.outcome is Outcome.OK
    cert = unverified.steps[0].certificate
    assert cert is not None and cert.not_before > time.time() + 86_400


async def test_an_expired_server_certificate(tmp_path: Path) -> None:
    anchor = root("Old Root")
    leaf = anchor.issue("api.bank.test", not_before=days(-100), not_after=days(-3))
    async with EchoBank(ssl_context=server_context(tmp_path, leaf)) as bank:
        verified = await run_journey(plan_for(tmp_path, bank.url, tls=trust(tmp_path, anchor)))
        unverified = await run_journey(plan_for(tmp_path, bank.url, tls="[sites.tls]\nverify = false"))
    assert verified.outcome is Outcome.TLS and "certificate has expired" in verified.error
    cert = unverified.steps[0].certificate
    assert unverified.outcome is Outcome.OK and cert is not None
    assert cert.expiry_days(NOW.timestamp()) == pytest.approx(-3, abs=0.01)  # days() counts from NOW
    assert (
        "cert_expiry_days=-2.9" in journey_lines(unverified)[1]
        or "cert_expiry_days=-3.0" in journey_lines(unverified)[1]
    )


def test_reading_a_peer_never_fails_the_connection() -> None:
    """An SSL object that cannot say anything: no certificate, no exception."""
    from prober.journey.tlspeer import describe_peer

    class Nothing:
        def getpeercert(self, binary_form: bool = False) -> None:
            return None

    assert describe_peer(Nothing(), "bank") is None
    context = ssl.create_default_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
