"""The shipped PSD2 examples run end to end against the simulated bank in that
standard's profile: signatures verified, private_key_jwt checked, refresh tokens
rotated (and persisted across two `prober check` processes)."""

from __future__ import annotations

import asyncio
import signal
import stat
import sys
from pathlib import Path

import pytest

from prober.simbank import BankServer
from prober.simbank.oauth import OAuthClient, OAuthServer
from prober.simbank.signatures import SignatureProfile
from tests.cli import REPO, example_dir, run_prober
from tests.signing_keys import make_key


async def test_berlin_group_example_runs_end_to_end(tmp_path: Path) -> None:
    qseal, client = make_key(tmp_path, "qseal"), make_key(tmp_path, "client", "ec")
    config = example_dir(tmp_path, "berlin-group.toml")
    signatures = SignatureProfile("berlin-group", certificates=[qseal.certificate], exempt=("/cards",))
    oauth = OAuthServer({"bank-prober": OAuthClient("bank-prober", public_key=client.key.public_key(),
                                                    secret="issuer-s3cret")})
    oauth.refresh_tokens["rt-bg-first"] = "bank-prober"
    async with BankServer(seed=1, profile="berlin-group", signatures=signatures, oauth=oauth) as bank:
        env = {
            "BG_URL": bank.url, "BG_TOKEN_URL": f"{bank.url}/oauth/token", "BG_CARDS_URL": bank.url,
            "BG_QSEAL_KEY": str(qseal.key_file), "BG_QSEAL_CERT": str(qseal.certificate_file),
            "BG_CLIENT_KEY": str(client.key_file), "BG_CLIENT_SECRET": "issuer-s3cret",
            "BG_REFRESH_TOKEN": "rt-bg-first",
            "BG_DEBTOR_IBAN": "FR7630006000011234567890189", "BG_CREDITOR_IBAN": "FR5630006000019876543210921",
            "BG_TEST_CARD_ID": "card-002",  # card-001 is the one card-accounts lists first
        }
        # Two processes: the second starts with the refresh token the first one rotated.
        runs = [await run_prober("check", "-c", str(config), "--json", env=env, timeout=120) for _ in range(2)]
        tokens = list(bank.state.tokens)
        refresh_tokens = list(oauth.refresh_tokens)
    for run in runs:
        by_check = run.by_check()
        assert {name: r["outcome"] for name, r in by_check.items()} == {
            "login": "ok", "accounts": "ok", "card-accounts": "ok", "transfer": "ok",
            "funds-confirmation": "ok", "cards": "ok",
        }, run.stdout + run.stderr
        assert run.returncode == 0
    assert oauth.rejected == {} and signatures.refused == {}
    assert signatures.verified >= 2 * 9  # every XS2A request of both runs, signed
    assert "rt-bg-first" not in refresh_tokens  # rotated away in the first run
    output = "".join(r.stdout + r.stderr for r in runs)
    for secret in [*tokens, *refresh_tokens, "rt-bg-first", "issuer-s3cret", qseal.pem_body, client.pem_body]:
        assert secret not in output


async def test_berlin_group_example_fails_auth_when_the_bank_does_not_know_the_qsealc(tmp_path: Path) -> None:
    qseal, other, client = make_key(tmp_path, "qseal"), make_key(tmp_path, "other"), make_key(tmp_path, "client")
    config = example_dir(tmp_path, "berlin-group.toml")
    signatures = SignatureProfile("berlin-group", certificates=[other.certificate], exempt=("/cards",))
    oauth = OAuthServer({"bank-prober": OAuthClient("bank-prober", public_key=client.key.public_key())})
    async with BankServer(seed=1, profile="berlin-group", signatures=signatures, oauth=oauth) as bank:
        env = {"BG_URL": bank.url, "BG_TOKEN_URL": f"{bank.url}/oauth/token", "BG_QSEAL_KEY": str(qseal.key_file),
               "BG_QSEAL_CERT": str(qseal.certificate_file), "BG_CLIENT_KEY": str(client.key_file)}
        run = await run_prober("check", "-c", str(config), "--json", "--check", "funds-confirmation", env=env)
    result = run.by_check()["funds-confirmation"]
    assert run.returncode == 1
    assert (result["outcome"], result["failed_step"]) == ("auth", "confirm")
    assert signatures.refused == {"TPP-Signature-Certificate is not a registered QSealC": 1}


async def test_stet_example_runs_end_to_end(tmp_path: Path) -> None:
    qseal, client = make_key(tmp_path, "qseal"), make_key(tmp_path, "client")
    config = example_dir(tmp_path, "stet-psd2.toml")
    key_url = "https://tpp.example/certs/qseal.pem"
    signatures = SignatureProfile("stet", keys={key_url: qseal.key.public_key()}, exempt=("/cards",))
    oauth = OAuthServer({"bank-prober": OAuthClient("bank-prober", public_key=client.key.public_key(),
                                                    secret="issuer-s3cret")})
    oauth.refresh_tokens.update({"rt-aisp": "bank-prober", "rt-cbpii": "bank-prober"})
    async with BankServer(seed=1, profile="stet", signatures=signatures, oauth=oauth) as bank:
        env = {
            "STET_URL": f"{bank.url}/stet/psd2/v1.6", "STET_TOKEN_URL": f"{bank.url}/oauth/token",
            "STET_CARDS_URL": bank.url, "STET_QSEAL_KEY": str(qseal.key_file), "STET_QSEAL_URL": key_url,
            "STET_CLIENT_KEY": str(client.key_file), "STET_CLIENT_SECRET": "issuer-s3cret",
            "STET_AISP_REFRESH_TOKEN": "rt-aisp", "STET_CBPII_REFRESH_TOKEN": "rt-cbpii",
            "STET_DEBTOR_IBAN": "FR7630006000011234567890189", "STET_CREDITOR_IBAN": "FR5630006000019876543210921",
            "STET_TEST_CARD_ID": "card-001",
        }
        runs = [await run_prober("check", "-c", str(config), "--json", env=env, timeout=120) for _ in range(2)]
        tokens, refresh_tokens = list(bank.state.tokens), list(oauth.refresh_tokens)
    for run in runs:
        assert {name: r["outcome"] for name, r in run.by_check().items()} == {
            "login": "ok", "accounts": "ok", "transfer": "ok", "funds-confirmation": "ok", "cards": "ok",
        }, run.stdout + run.stderr
    assert oauth.rejected == {} and signatures.refused == {}
    assert signatures.verified >= 2 * 6
    assert len(refresh_tokens) == 2 and not {"rt-aisp", "rt-cbpii"} & set(refresh_tokens)
    output = "".join(r.stdout + r.stderr for r in runs)
    for secret in [*tokens, *refresh_tokens, "rt-aisp", "rt-cbpii", "issuer-s3cret", qseal.pem_body, client.pem_body]:
        assert secret not in output


async def test_uk_open_banking_example_runs_end_to_end(tmp_path: Path) -> None:
    signing, client = make_key(tmp_path, "signing"), make_key(tmp_path, "client")
    config = example_dir(tmp_path, "uk-open-banking.toml")
    issuer = "0015800001041RHAAY/prober-test"
    signatures = SignatureProfile("uk-open-banking", keys={"sig-kid-1": signing.key.public_key()}, issuer=issuer,
                                  exempt=("/cards",))
    oauth = OAuthServer({"bank-prober": OAuthClient("bank-prober", public_key=client.key.public_key(),
                                                    secret="issuer-s3cret")})
    oauth.refresh_tokens.update({"rt-ais": "bank-prober", "rt-vrp": "bank-prober", "rt-cof": "bank-prober"})
    async with BankServer(seed=1, profile="uk-open-banking", signatures=signatures, oauth=oauth) as bank:
        env = {
            "UKOB_URL": f"{bank.url}/open-banking/v4.0", "UKOB_TOKEN_URL": f"{bank.url}/oauth/token",
            "UKOB_CARDS_URL": bank.url, "UKOB_SIGNING_KEY": str(signing.key_file), "UKOB_SIGNING_KID": "sig-kid-1",
            "UKOB_ISS": issuer, "UKOB_CLIENT_KEY": str(client.key_file), "UKOB_CLIENT_SECRET": "issuer-s3cret",
            "UKOB_AIS_REFRESH_TOKEN": "rt-ais", "UKOB_VRP_REFRESH_TOKEN": "rt-vrp", "UKOB_COF_REFRESH_TOKEN": "rt-cof",
            "UKOB_TEST_CARD_ID": "card-001",
        }
        runs = [await run_prober("check", "-c", str(config), "--json", env=env, timeout=120) for _ in range(2)]
        tokens, refresh_tokens = list(bank.state.tokens), list(oauth.refresh_tokens)
    for run in runs:
        assert {name: r["outcome"] for name, r in run.by_check().items()} == {
            "login": "ok", "accounts": "ok", "payment-consent": "ok", "transfer": "ok",
            "funds-confirmation": "ok", "cards": "ok",
        }, run.stdout + run.stderr
    assert oauth.rejected == {} and signatures.refused == {}
    assert signatures.verified >= 2 * 2  # the payment consent and the VRP payment carry a JWS
    assert len(refresh_tokens) == 3 and not {"rt-ais", "rt-vrp", "rt-cof"} & set(refresh_tokens)
    output = "".join(r.stdout + r.stderr for r in runs)
    for secret in [*tokens, *refresh_tokens, "rt-ais", "issuer-s3cret", signing.pem_body, client.pem_body]:
        assert secret not in output


@pytest.mark.parametrize(("profile", "example"), [("berlin-group", "berlin-group.toml"),
                                                  ("stet", "stet-psd2.toml"),
                                                  ("uk-open-banking", "uk-open-banking.toml")])
async def test_prober_bank_profile_mode_serves_the_example(tmp_path: Path, profile: str, example: str) -> None:
    """`prober bank --profile NAME --keys DIR`, then the example with DIR/NAME.env."""
    keys = tmp_path / "keys"
    bank = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "prober", "bank", "--port", "0", "--profile", profile, "--keys", str(keys),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO)
    try:
        assert bank.stdout is not None
        lines = [(await asyncio.wait_for(bank.stdout.readline(), 60)).decode() for _ in range(2)]
        assert lines[0].startswith("bank listening on http://127.0.0.1:"), lines
        assert lines[1] == f"{profile} profile: keys in {keys}, environment for the example in {keys}/{profile}.env\n"
        env_file = keys / f"{profile}.env"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        assert stat.S_IMODE((keys / "qseal.key").stat().st_mode) == 0o600
        env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        run = await run_prober("check", "-c", str(example_dir(tmp_path, example)), "--json", env=env, timeout=120)
    finally:
        bank.send_signal(signal.SIGTERM)
        await asyncio.wait_for(bank.wait(), 30)
    assert run.returncode == 0, run.stdout + run.stderr
    assert {r["outcome"] for r in run.by_check().values()} == {"ok"}
    assert bank.returncode == 0
