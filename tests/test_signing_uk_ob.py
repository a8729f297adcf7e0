"""UK Open Banking detached JWS: the prober signs bodies, the simulated bank verifies."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from multidict import CIMultiDict

from prober.config.signing import signing_config
from prober.journey.runner import run_journey
from prober.journey.signing import Outgoing, build_signer
from prober.loading import load
from prober.results import Outcome
from prober.simbank import BankServer
from prober.simbank.signatures import SignatureProfile
from tests.cli import run_prober
from tests.signing_keys import KeyFiles, make_key, signed_site

ISSUER = "0015800001041RHAAY/3L3w5r0Mgl6ixNE9mrNbyq"
KID = "90210ABAD"

def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def write_config(tmp_path: Path, url: str, key: KeyFiles, kid: str = KID) -> Path:
    path = tmp_path / "ob.toml"
    signing: dict[str, str | Path] = {"profile": "uk-open-banking", "key_file": key.key_file, "key_id": kid,
                                      "issuer": ISSUER}
    path.write_text(signed_site("ob", url, signing))
    return path


def test_detached_jws_has_the_profiles_header_and_verifies(tmp_path: Path) -> None:
    key = make_key(tmp_path, "ob")
    signer = build_signer(
        signing_config(profile="uk-open-banking", key_file=str(key.key_file), key_id=KID, issuer=ISSUER)
    )
    body = b'{"Data": {"ConsentId": "c-1"}, "Risk": {}}'
    headers: CIMultiDict[str] = CIMultiDict()
    signer.sign(
        Outgoing("POST", "https", "ob.bank.example", "/open-banking/v3.1/pisp/domestic-payments", headers, body)
    )
    protected, payload, signature = headers["x-jws-signature"].split(".")
    assert payload == ""
    header = json.loads(_b64url(protected))
    assert header["alg"] == "PS256" and header["kid"] == KID and header["b64"] is False
    assert header["http://openbanking.org.uk/iss"] == ISSUER
    assert header["http://openbanking.org.uk/tan"] == "openbanking.org.uk"
    assert isinstance(header["http://openbanking.org.uk/iat"], int)
    assert set(header["crit"]) == {"b64", "http://openbanking.org.uk/iat", "http://openbanking.org.uk/iss",
                                   "http://openbanking.org.uk/tan"}
    # RFC 7797: the signing input is the header segment, a dot, and the body as is.
    assert isinstance(key.key, rsa.RSAPrivateKey)  # RSA's verify takes a padding
    key.key.public_key().verify(_b64url(signature), protected.encode() + b"." + body,
                                padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())


def test_requests_without_a_body_are_not_signed(tmp_path: Path) -> None:
    key = make_key(tmp_path, "ob")
    signer = build_signer(
        signing_config(profile="uk-open-banking", key_file=str(key.key_file), key_id=KID, issuer=ISSUER)
    )
    headers: CIMultiDict[str] = CIMultiDict()
    signer.sign(Outgoing("GET", "https", "ob.bank.example", "/open-banking/v3.1/aisp/accounts", headers, b""))
    assert "x-jws-signature" not in headers


@pytest.mark.parametrize(("kid", "refusal"), [(KID, None), ("other-kid", "unknown kid")])
async def test_bank_verifies_the_prober_s_jws(tmp_path: Path, kid: str, refusal: str | None) -> None:
    key = make_key(tmp_path, "ob")
    profile = SignatureProfile("uk-open-banking", keys={KID: key.key.public_key()}, issuer=ISSUER)
    async with BankServer(seed=1, signatures=profile) as bank:
        [result] = [await run_journey(p) for p in load(write_config(tmp_path, bank.url, key, kid)).plans]
    if refusal is None:
        assert result.outcome is Outcome.OK, result.error
        assert profile.verified == 2 and profile.refused == {}
    else:
        assert result.outcome is Outcome.AUTH and result.failed_step == "confirm"
        assert profile.refused == {refusal: 1}


async def test_a_key_of_another_tpp_does_not_verify(tmp_path: Path) -> None:
    registered, other = make_key(tmp_path, "registered"), make_key(tmp_path, "other")
    profile = SignatureProfile("uk-open-banking", keys={KID: registered.key.public_key()}, issuer=ISSUER)
    async with BankServer(seed=1, signatures=profile) as bank:
        [result] = [await run_journey(p) for p in load(write_config(tmp_path, bank.url, other)).plans]
    assert result.outcome is Outcome.AUTH
    assert profile.refused == {"JWS signature does not verify": 1}


async def test_validate_refuses_an_ec_key_for_ps256(tmp_path: Path) -> None:
    key = make_key(tmp_path, "ob", "ec")
    done = await run_prober("validate", "-c", str(write_config(tmp_path, "https://ob.bank.example", key)))
    assert done.returncode == 2
    assert f"sites[ob].signing.key_file: key file {key.key_file}: PS256 needs an RSA key" in done.stderr


async def test_validate_names_a_missing_issuer(tmp_path: Path) -> None:
    key = make_key(tmp_path, "ob")
    config = write_config(tmp_path, "https://ob.bank.example", key)
    config.write_text(config.read_text().replace(f'  issuer = "{ISSUER}"\n', ""))
    done = await run_prober("validate", "-c", str(config))
    assert done.returncode == 2
    assert "sites[ob].signing.issuer: missing required field" in done.stderr
