"""Berlin Group and STET HTTP signatures: the prober signs, the simulated bank verifies.

Keys are generated at test time. The bank's checks recompute the digest and rebuild the
signing string from the request it received; the unit test below also checks a signed
request with ``cryptography`` directly, from the standard's text, so a mistake shared by
both sides of the project would still fail.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from multidict import CIMultiDict

from prober.config.signing import signing_config
from prober.journey.runner import run_journey
from prober.journey.signing import Outgoing, build_signer, signing_middleware
from prober.journey.signing.cavage import parse_signature
from prober.loading import load
from prober.results import Outcome
from prober.simbank import BankServer
from prober.simbank.signatures import SignatureProfile, signature_middleware
from tests.cli import run_prober
from tests.fixtures.loopback import serving
from tests.signing_keys import KeyFiles, make_key, signed_site


def write_config(tmp_path: Path, url: str, profile: str, key: KeyFiles, extra: Mapping[str, str | Path] | None = None,
                 signed: bool = True) -> Path:
    path = tmp_path / f"{profile}.toml"
    signing = {"profile": profile, "key_file": key.key_file, **(extra or {})} if signed else None
    path.write_text(signed_site("psd2", url, signing))
    return path


def bg_extra(key: KeyFiles) -> dict[str, str | Path]:
    return {"certificate_file": key.certificate_file}


STET_KEY_ID = "https://tpp.example/qseal.pem#714f8154"
UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


async def run_config(path: Path) -> list:
    return [await run_journey(plan) for plan in load(path).plans]


def bank_profile(profile: str, key: KeyFiles) -> SignatureProfile:
    if profile == "berlin-group":
        return SignatureProfile("berlin-group", certificates=[key.certificate])
    return SignatureProfile("stet", keys={STET_KEY_ID: key.key.public_key()})


@pytest.mark.parametrize("kind", ["rsa", "ec"])
@pytest.mark.parametrize("profile", ["berlin-group", "stet"])
async def test_signed_journey_passes_the_banks_checks(tmp_path: Path, profile: str, kind: str) -> None:
    key = make_key(tmp_path, "tpp", kind)
    signatures = bank_profile(profile, key)
    extra = bg_extra(key) if profile == "berlin-group" else {"key_id": STET_KEY_ID}
    async with BankServer(seed=1, signatures=signatures) as bank:
        [result] = await run_config(write_config(tmp_path, bank.url, profile, key, extra))
    assert result.outcome is Outcome.OK, result.error
    assert signatures.verified == 2  # the GET and the POST; the token endpoint is not signed
    assert signatures.refused == {}


async def test_unsigned_requests_are_refused_as_auth(tmp_path: Path) -> None:
    key = make_key(tmp_path, "tpp")
    signatures = bank_profile("berlin-group", key)
    async with BankServer(seed=1, signatures=signatures) as bank:
        [result] = await run_config(write_config(tmp_path, bank.url, "berlin-group", key, signed=False))
    assert result.outcome is Outcome.AUTH
    assert result.failed_step == "accounts"
    assert signatures.refused == {"missing Signature header": 1}


async def test_a_certificate_the_bank_does_not_know_is_refused(tmp_path: Path) -> None:
    registered, other = make_key(tmp_path, "registered"), make_key(tmp_path, "other")
    signatures = bank_profile("berlin-group", registered)
    async with BankServer(seed=1, signatures=signatures) as bank:
        [result] = await run_config(write_config(tmp_path, bank.url, "berlin-group", other, bg_extra(other)))
    assert result.outcome is Outcome.AUTH
    assert "HTTP 401" in result.error
    assert signatures.refused == {"TPP-Signature-Certificate is not a registered QSealC": 1}


async def test_stet_key_id_of_another_key_does_not_verify(tmp_path: Path) -> None:
    registered, other = make_key(tmp_path, "registered"), make_key(tmp_path, "other")
    signatures = bank_profile("stet", registered)
    async with BankServer(seed=1, signatures=signatures) as bank:
        [result] = await run_config(write_config(tmp_path, bank.url, "stet", other, {"key_id": STET_KEY_ID}))
    assert result.outcome is Outcome.AUTH
    assert signatures.refused == {"signature does not verify": 1}


def test_berlin_group_signature_verifies_from_the_standards_text(tmp_path: Path) -> None:
    key = make_key(tmp_path, "tpp")
    signer = build_signer(signing_config(profile="berlin-group", key_file=str(key.key_file),
                                        certificate_file=str(key.certificate_file)))
    body = b'{"instructedAmount": {"amount": "0.01"}}'
    headers = CIMultiDict({"X-Request-ID": "99391c7e-ad88-49ec-a2ad-99ddcb1f7721", "PSU-ID": "PSU-1234",
                           "Content-Type": "application/json"})
    signer.sign(Outgoing("POST", "https", "xs2a.bank.example", "/v1/payments/sepa-credit-transfers?x=1", headers, body))
    assert headers["Digest"] == "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    params = parse_signature(headers["Signature"])
    serial = f"{key.certificate.serial_number:X}"
    assert params["keyId"] == f"SN={serial},CA=C=DE,CN=Test QTSP CA"
    assert params["algorithm"] == "rsa-sha256"
    assert params["headers"] == "(request-target) date digest x-request-id psu-id"
    assert base64.b64decode(headers["TPP-Signature-Certificate"]) == key.certificate.public_bytes(
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.DER)
    text = (
        "(request-target): post /v1/payments/sepa-credit-transfers?x=1\n"
        f"date: {headers['Date']}\n"
        f"digest: {headers['Digest']}\n"
        "x-request-id: 99391c7e-ad88-49ec-a2ad-99ddcb1f7721\n"
        "psu-id: PSU-1234"
    )
    assert isinstance(key.key, rsa.RSAPrivateKey)
    key.key.public_key().verify(
        base64.b64decode(params["signature"]), text.encode(), padding.PKCS1v15(), hashes.SHA256()
    )


def test_stet_ecdsa_signature_is_der_and_digest_only_with_a_body(tmp_path: Path) -> None:
    key = make_key(tmp_path, "tpp", "ec")
    signer = build_signer(signing_config(profile="stet", key_file=str(key.key_file), key_id=STET_KEY_ID))
    headers = CIMultiDict({"X-Request-ID": "r-1"})
    signer.sign(Outgoing("GET", "https", "api.bank.example", "/stet/psd2/v1.6/accounts", headers, b""))
    assert "Digest" not in headers and "TPP-Signature-Certificate" not in headers
    params = parse_signature(headers["Signature"])
    assert params["keyId"] == STET_KEY_ID and params["algorithm"] == "ecdsa-sha256"
    assert params["headers"] == "(request-target) date x-request-id"
    text = f"(request-target): get /stet/psd2/v1.6/accounts\ndate: {headers['Date']}\nx-request-id: r-1"
    assert isinstance(key.key, ec.EllipticCurvePrivateKey)
    key.key.public_key().verify(base64.b64decode(params["signature"]), text.encode(), ec.ECDSA(hashes.SHA256()))


async def test_a_changed_body_fails_on_its_digest(tmp_path: Path) -> None:
    """Sign one body, send another: the bank names the digest."""
    key = make_key(tmp_path, "tpp")
    signer = build_signer(signing_config(profile="stet", key_file=str(key.key_file), key_id=STET_KEY_ID))
    signatures = bank_profile("stet", key)

    async def tamper(request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
        request.body = b'{"amount": "1000000.00"}'
        return await handler(request)

    async with BankServer(seed=1, signatures=signatures) as bank, aiohttp.ClientSession() as session:
        sign = signing_middleware(signer)
        async with session.post(f"{bank.url}/funds-confirmations", data=b'{"amount": "1.00"}',
                                headers={"X-Request-ID": "r-2"}, middlewares=(sign, tamper)) as resp:
            assert resp.status == 401
            assert (await resp.json()) == {"error": "invalid_signature", "reason": "Digest does not match the body"}


@pytest.mark.parametrize("profile", ["berlin-group", "stet"])
async def test_redirects_and_poll_attempts_are_signed_again_each_with_its_own_request_id(
    tmp_path: Path, profile: str
) -> None:
    """Each hop of a redirect and each poll attempt carries a signature of its own
    request, and an ``X-Request-ID`` of its own (``{{ uuid() }}`` is rendered again for
    each request sent) that the signature covers; the run's own values stay the same."""
    key = make_key(tmp_path, "tpp")
    signatures = bank_profile(profile, key)
    signing = bg_extra(key) if profile == "berlin-group" else {"key_id": STET_KEY_ID}
    seen: list[dict[str, str]] = []

    def record(request: web.Request) -> None:
        seen.append({"path": request.path, **{h: request.headers.get(h, "") for h in
                                                ("X-Request-ID", "X-Correlation-ID", "X-Run", "Authorization")}})

    async def old(request: web.Request) -> web.Response:
        record(request)
        raise web.HTTPTemporaryRedirect("/new")

    async def new(request: web.Request) -> web.Response:
        record(request)
        return web.json_response({"transactionStatus": "RCVD" if len(seen) < 6 else "ACSC"})

    app = web.Application(middlewares=[signature_middleware(signatures)])
    app.router.add_get("/old", old)
    app.router.add_get("/new", new)
    async with serving(app) as url:
        config = tmp_path / "poll.toml"
        config.write_text(f"""
[[sites]]
name = "psd2"
base_url = "{url}"
headers = {{ "X-Request-ID" = "{{{{ uuid() }}}}", "X-Run" = "{{{{ run.id }}}}" }}
  [sites.signing]
  profile = "{profile}"
  key_file = "{key.key_file}"
""" + "".join(f'  {k} = "{v}"\n' for k, v in signing.items()) + """
  [sites.secrets]
  token = "at-0123456789"
[[sites.checks]]
name = "status"
kind = "transfer"
  [[sites.checks.steps]]
  name = "status"
  path = "/old"
  headers = { Authorization = "Bearer {{ token }}", "X-Correlation-ID" = "{{ run.id }}-{{ uuid() }}" }
  expect = [ { json = "transactionStatus", equals = "ACSC" } ]
  poll = { attempts = 5, interval = "10ms" }
""")
        [result] = await run_config(config)
    assert result.outcome is Outcome.OK, result.error
    assert result.steps[0].attempts == 3
    assert [s["path"] for s in seen] == ["/old", "/new"] * 3
    request_ids = [s["X-Request-ID"] for s in seen]
    assert len(set(request_ids)) == 6 and all(re.fullmatch(UUID4, i) for i in request_ids), request_ids
    correlation = [s["X-Correlation-ID"] for s in seen]
    assert len(set(correlation)) == 6 and all(re.fullmatch(f"{result.run_id}-{UUID4}", c) for c in correlation)
    assert {s["X-Run"] for s in seen} == {result.run_id}
    assert {s["Authorization"] for s in seen} == {"Bearer at-0123456789"}
    # The bank rebuilt each signing string from the request it received: all verify.
    assert signatures.verified == 6 and signatures.refused == {}


async def test_a_key_unreadable_at_run_time_is_an_error_outcome(tmp_path: Path) -> None:
    key = make_key(tmp_path, "tpp")
    async with BankServer(seed=1, signatures=bank_profile("berlin-group", key)) as bank:
        plans = load(write_config(tmp_path, bank.url, "berlin-group", key, bg_extra(key))).plans
        key.key_file.unlink()
        result = await run_journey(plans[0])
    assert result.outcome is Outcome.ERROR
    assert result.failed_step == "accounts"
    assert result.error == f"error: cannot read key file {key.key_file}: no such file or directory"


async def test_a_rotated_key_is_picked_up_without_a_restart(tmp_path: Path) -> None:
    first = make_key(tmp_path, "first")
    config = write_config(tmp_path, "http://x", "stet", first, {"key_id": STET_KEY_ID})
    async with BankServer(seed=1, signatures=bank_profile("stet", first)) as bank:
        config.write_text(config.read_text().replace("http://x", bank.url))
        [plan] = load(config).plans
        assert (await run_journey(plan)).outcome is Outcome.OK
        second = make_key(tmp_path, "second")
        first.key_file.write_bytes(second.key_file.read_bytes())
        bank.signatures.keys[STET_KEY_ID] = second.key.public_key()  # type: ignore[union-attr]  # signs: set
        result = await run_journey(plan)
    assert result.outcome is Outcome.OK, result.error


@pytest.mark.parametrize(("change", "message"), [
    ("mismatch", "sites[psd2].signing.certificate_file: certificate {cert} does not match the private key in {key}"),
    ("missing", "sites[psd2].signing.key_file: cannot read key file {key}: no such file or directory"),
    ("garbage", "sites[psd2].signing.key_file: cannot load key file {key}: not a PEM or DER private key"),
    ("ed25519", "sites[psd2].signing.key_file: key file {key}: berlin-group signs with RSA or ECDSA keys only"),
])
async def test_validate_names_the_field_and_the_file(tmp_path: Path, change: str, message: str) -> None:
    key = make_key(tmp_path, "tpp", "ed25519" if change == "ed25519" else "rsa")
    other = make_key(tmp_path, "other")
    config = write_config(
        tmp_path,
        "https://xs2a.bank.example",
        "berlin-group",
        key,
        {"certificate_file": other.certificate_file if change == "mismatch" else key.certificate_file},
    )
    if change == "missing":
        key.key_file.unlink()
    elif change == "garbage":
        key.key_file.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    done = await run_prober("validate", "-c", str(config))
    assert done.returncode == 2, done.stderr
    cert = other.certificate_file if change == "mismatch" else key.certificate_file
    assert message.format(cert=cert, key=key.key_file) in done.stderr
    assert "Traceback" not in done.stderr


async def test_key_material_never_appears_in_output(tmp_path: Path) -> None:
    key = make_key(tmp_path, "tpp")
    signatures = bank_profile("berlin-group", key)
    async with BankServer(seed=1, signatures=signatures) as bank:
        config = write_config(tmp_path, bank.url, "berlin-group", key, bg_extra(key))
        runs = [await run_prober("--log-level", "debug", "check", "-c", str(config), *fmt)
                for fmt in ((), ("--json",))]
        # A damaged key: half of it, so a parser's error could quote the other half.
        lines = key.key_file.read_text().splitlines()
        key.key_file.write_text("\n".join(lines[: len(lines) // 2 + 1] + lines[-1:]) + "\n")
        broken = await run_prober("--log-level", "debug", "check", "-c", str(config), "--json")
    assert [r.returncode for r in runs] == [0, 0], runs[0].stdout + runs[0].stderr
    assert broken.returncode == 2
    output = "".join(r.stdout + r.stderr for r in [*runs, broken])
    assert key.pem_body not in output
    assert "PRIVATE KEY" not in output
