"""RFC 9421 HTTP Message Signatures: the prober signs, the simulated bank verifies."""

from __future__ import annotations

from pathlib import Path

import pytest
from multidict import CIMultiDict

from prober.config.signing import signing_config
from prober.journey.runner import run_journey
from prober.journey.signing import Outgoing, build_signer
from prober.loading import load
from prober.results import Outcome
from prober.simbank import BankServer
from prober.simbank.signatures import SignatureProfile
from tests.cli import run_prober
from tests.signing_keys import make_key, signed_site


def site(url: str, key_file: Path, **extra: str) -> str:
    return signed_site("rfc", url, {"profile": "rfc9421", "key_file": key_file, "key_id": "tpp-key-1", **extra})



@pytest.mark.parametrize(("kind", "algorithm"), [("rsa", "rsa-pss-sha512"), ("rsa", "rsa-v1_5-sha256"),
                                                 ("ec", "ecdsa-p256-sha256"), ("ed25519", "ed25519")])
async def test_bank_verifies_rfc9421_signatures(tmp_path: Path, kind: str, algorithm: str) -> None:
    key = make_key(tmp_path, "tpp", kind)
    profile = SignatureProfile("rfc9421", keys={"tpp-key-1": key.key.public_key()}, algorithm=algorithm)
    config = tmp_path / "rfc.toml"
    async with BankServer(seed=1, signatures=profile) as bank:
        config.write_text(site(bank.url, key.key_file, algorithm=algorithm))
        [result] = [await run_journey(p) for p in load(config).plans]
    assert result.outcome is Outcome.OK, (result.error, profile.refused)
    assert profile.verified == 2 and profile.refused == {}


async def test_a_signature_of_another_key_is_auth(tmp_path: Path) -> None:
    key, other = make_key(tmp_path, "tpp"), make_key(tmp_path, "other")
    profile = SignatureProfile("rfc9421", keys={"tpp-key-1": key.key.public_key()})
    config = tmp_path / "rfc.toml"
    async with BankServer(seed=1, signatures=profile) as bank:
        config.write_text(site(bank.url, other.key_file))
        [result] = [await run_journey(p) for p in load(config).plans]
    assert result.outcome is Outcome.AUTH and result.failed_step == "accounts"
    assert sum(profile.refused.values()) == 1


def test_signature_input_covers_the_request_and_the_body_digest(tmp_path: Path) -> None:
    key = make_key(tmp_path, "tpp")
    # expires_in as the TOML gives it (a duration string), validated into seconds
    signer = build_signer(signing_config(profile="rfc9421", key_file=str(key.key_file), key_id="tpp-key-1",
                                        expires_in="5m"))
    headers: CIMultiDict[str] = CIMultiDict()
    signer.sign(Outgoing("POST", "https", "api.bank.example", "/v1/payments?x=1", headers, b'{"a": 1}'))
    assert headers["Content-Digest"].startswith("sha-256=:")
    value = headers["Signature-Input"]
    assert value.startswith('sig1=("@method" "@authority" "@target-uri" "content-digest");created=')
    assert ';keyid="tpp-key-1";alg="rsa-pss-sha512";expires=' in value
    assert headers["Signature"].startswith("sig1=:")


async def test_validate_refuses_a_key_that_does_not_fit_the_algorithm(tmp_path: Path) -> None:
    key = make_key(tmp_path, "tpp", "ec")
    config = tmp_path / "rfc.toml"
    config.write_text(site("https://bank.example", key.key_file, algorithm="ed25519"))
    done = await run_prober("validate", "-c", str(config))
    assert done.returncode == 2
    assert f"sites[rfc].signing.key_file: key file {key.key_file}: not a key for ed25519" in done.stderr
