"""The OAuth2 token step: private_key_jwt / tls_client_auth against the simulated bank's
OAuth server, access tokens reused across runs, rotated refresh tokens persisted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import signal
import ssl
import stat
from pathlib import Path

import aiohttp
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from prober.journey.runner import run_journey
from prober.loading import load
from prober.results import JourneyResult, Outcome
from prober.simbank import BankServer, Fault
from prober.simbank.oauth import OAuthClient, OAuthServer
from tests.cli import run_prober
from tests.signing_keys import KeyFiles, make_key

CONFIG = """
[daemon]
state_dir = "{state_dir}"
[[sites]]
name = "psd2"
base_url = "{url}"
  [sites.vars]
  client_id = "tpp-1"
  [sites.secrets]
  refresh_token = "{refresh_token}"
[[sites.checks]]
name = "accounts"
kind = "accounts"
  [[sites.checks.steps]]
  name = "token"
  oauth = {{ token_url = "{url}/oauth/token", client_id = "{{{{ client_id }}}}", {oauth} }}
  [[sites.checks.steps]]
  name = "accounts"
  path = "/accounts"
  headers = {{ Authorization = "Bearer {{{{ token }}}}" }}
  expect = [ {{ json = "accounts", min_length = 1 }} ]
"""


def write(tmp_path: Path, url: str, oauth: str, refresh_token: str = "rt-first", name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(CONFIG.format(state_dir=tmp_path / "state", url=url, oauth=oauth, refresh_token=refresh_token))
    return path


def jwt_oauth(key: KeyFiles, extra: str = "") -> str:
    return f'key_file = "{key.key_file}", key_id = "k1"' + (f", {extra}" if extra else "")


async def run_once(config: Path) -> JourneyResult:
    [plan] = load(config).plans
    return await run_journey(plan)


def server_for(key: KeyFiles, **options: object) -> OAuthServer:
    # options: OAuthServer's keyword arguments, of their own types
    return OAuthServer({"tpp-1": OAuthClient("tpp-1", public_key=key.key.public_key())}, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["rsa", "ec"])
async def test_private_key_jwt_token_is_reused_across_runs(tmp_path: Path, kind: str) -> None:
    key = make_key(tmp_path, "client", kind)
    oauth = server_for(key)
    async with BankServer(seed=1, oauth=oauth) as bank:
        [plan] = load(write(tmp_path, bank.url, jwt_oauth(key))).plans
        first, second = await run_journey(plan), await run_journey(plan)
    assert first.outcome is Outcome.OK and second.outcome is Outcome.OK, (first.error, second.error, oauth.rejected)
    assert oauth.issued == 1
    assert first.steps[0].executed and first.steps[0].http_status == 200
    assert second.steps[0].reused and not second.steps[0].executed and second.steps[0].success


@pytest.mark.parametrize(("option", "lifetime"), [("reuse = false", 3600.0), ('reuse_margin = "60s"', 30.0)])
async def test_no_reuse_when_asked_or_too_close_to_expiry(tmp_path: Path, option: str, lifetime: float) -> None:
    key = make_key(tmp_path, "client")
    oauth = server_for(key, access_lifetime_s=lifetime)
    async with BankServer(seed=1, oauth=oauth) as bank:
        [plan] = load(write(tmp_path, bank.url, jwt_oauth(key, option))).plans
        results = [await run_journey(plan) for _ in range(2)]
    assert [r.outcome for r in results] == [Outcome.OK, Outcome.OK]
    assert oauth.issued == 2


async def test_a_token_revoked_before_its_expiry_is_dropped_after_the_refusal(tmp_path: Path) -> None:
    key = make_key(tmp_path, "client")
    oauth = server_for(key, access_lifetime_s=0.0, advertised_lifetime_s=3600.0)  # dead on arrival
    async with BankServer(seed=1, oauth=oauth) as bank:
        [plan] = load(write(tmp_path, bank.url, jwt_oauth(key))).plans
        results = [await run_journey(plan) for _ in range(2)]
    assert [r.outcome for r in results] == [Outcome.AUTH, Outcome.AUTH]
    assert [r.failed_step for r in results] == ["accounts", "accounts"]
    assert oauth.issued == 2  # the second run did not reuse the refused token


async def test_a_client_key_the_bank_does_not_know_is_auth(tmp_path: Path) -> None:
    registered, other = make_key(tmp_path, "client"), make_key(tmp_path, "other")
    oauth = server_for(registered)
    async with BankServer(seed=1, oauth=oauth) as bank:
        result = await run_once(write(tmp_path, bank.url, jwt_oauth(other)))
    assert result.outcome is Outcome.AUTH and result.failed_step == "token"
    assert result.error == "HTTP 401 (expected 2xx): invalid_client"
    assert oauth.rejected == {"client_assertion signature does not verify": 1}


async def test_rotated_refresh_token_survives_a_restart(tmp_path: Path) -> None:
    key = make_key(tmp_path, "client")
    oauth = server_for(key)
    refresh = jwt_oauth(key, 'grant = "refresh_token", refresh_token = "{{ refresh_token }}", reuse = false')
    async with BankServer(seed=1, oauth=oauth) as bank:
        oauth.refresh_tokens["rt-first"] = "tpp-1"
        config = write(tmp_path, bank.url, refresh)
        first = await run_once(config)
        [stored] = (tmp_path / "state" / "tokens").iterdir()
        rotated = json.loads(stored.read_text())["refresh_token"]
        # A restart: a new process compiles the config again and finds the rotated token.
        after_restart = await run_once(config)
        newest = json.loads(stored.read_text())["refresh_token"]
        # Without the file, the configured (long rotated-away) token is refused.
        stored.unlink()
        lost = await run_once(config)
    assert first.outcome is Outcome.OK and after_restart.outcome is Outcome.OK, oauth.rejected
    assert rotated != "rt-first" and newest != rotated and list(oauth.refresh_tokens) == [newest]
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert lost.outcome is Outcome.AUTH and lost.error == "HTTP 400 (expected 2xx): invalid_grant"
    assert oauth.rejected == {"refresh token unknown, revoked or already rotated": 1}


async def test_stored_refresh_token_file_is_private_and_a_new_configured_one_wins(tmp_path: Path) -> None:
    key = make_key(tmp_path, "client")
    oauth = server_for(key)
    refresh = jwt_oauth(key, 'grant = "refresh_token", refresh_token = "{{ refresh_token }}"')
    async with BankServer(seed=1, oauth=oauth) as bank:
        oauth.refresh_tokens["rt-first"] = "tpp-1"
        assert (await run_once(write(tmp_path, bank.url, refresh))).outcome is Outcome.OK
        [stored] = (tmp_path / "state" / "tokens").iterdir()
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
        # The operator revoked the chain and configured a new first token: it is used.
        oauth.refresh_tokens.clear()
        oauth.refresh_tokens["rt-second"] = "tpp-1"
        result = await run_once(write(tmp_path, bank.url, refresh, refresh_token="rt-second"))
    assert result.outcome is Outcome.OK, oauth.rejected


async def test_concurrent_journeys_never_send_one_refresh_token_twice(tmp_path: Path) -> None:
    key = make_key(tmp_path, "client")
    oauth = server_for(key)
    refresh = jwt_oauth(key, 'grant = "refresh_token", refresh_token = "{{ refresh_token }}", reuse = false')
    async with BankServer(seed=1, oauth=oauth) as bank:
        oauth.refresh_tokens["rt-first"] = "tpp-1"
        config = write(tmp_path, bank.url, refresh)
        text = config.read_text()
        checks = text[text.index("[[sites.checks]]"):]
        config.write_text(text + "\n".join(checks.replace('name = "accounts"\nkind', f'name = "accounts-{i}"\nkind')
                                           for i in range(3)))
        plans = load(config).plans
        results = await asyncio.gather(*(run_journey(p) for p in plans))
    assert [r.outcome for r in results] == [Outcome.OK] * 4, oauth.rejected
    assert oauth.issued == 4 and oauth.rejected == {}


@contextlib.contextmanager
def file_size_limit(limit: int):
    """Files of this process cannot grow beyond ``limit`` bytes (a write there is short,
    the next one fails with EFBIG): a disk that fills up in the middle of a write."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


async def test_refresh_token_that_cannot_be_persisted_is_an_error(tmp_path: Path) -> None:
    key = make_key(tmp_path, "client")
    oauth = server_for(key)
    refresh = jwt_oauth(key, 'grant = "refresh_token", refresh_token = "{{ refresh_token }}"')
    async with BankServer(seed=1, oauth=oauth) as bank:
        oauth.refresh_tokens["rt-first"] = "tpp-1"
        [plan] = load(write(tmp_path, bank.url, refresh)).plans
        with file_size_limit(16):  # the token file is larger: it cannot be written whole
            result = await run_journey(plan)
        again = await run_journey(plan)
    assert result.outcome is Outcome.ERROR and result.failed_step == "token"
    assert result.error == (f"error: cannot persist the rotated refresh token in {tmp_path / 'state' / 'tokens'}: "
                            "file too large")
    # No partial file (nor a temporary one) is left for the next start to read.
    assert list((tmp_path / "state" / "tokens").iterdir()) == []
    # The rotated token is kept in memory: the next run (with a cached access token) goes on.
    assert again.outcome is Outcome.OK, again.error


async def test_tls_client_auth_authenticates_with_the_sites_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_cert, client_cert, stranger = (
        ca.issue_cert("127.0.0.1"),
        ca.issue_cert("tpp-1.example"),
        ca.issue_cert("x.example"),
    )
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(server_ctx)
    ca.configure_trust(server_ctx)
    server_ctx.verify_mode = ssl.CERT_OPTIONAL
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    registered = x509.load_pem_x509_certificate(client_cert.cert_chain_pems[0].bytes())
    oauth = OAuthServer({"tpp-1": OAuthClient("tpp-1", certificate=registered)})
    outcomes = []
    async with BankServer(seed=1, oauth=oauth, ssl_context=server_ctx) as bank:
        for name, cert in (("registered", client_cert), ("stranger", stranger)):
            cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / f"{name}.pem"))
            config = write(tmp_path, bank.url, 'auth = "tls_client_auth"')
            tls = f'  [sites.tls]\n  ca_file = "{tmp_path / "ca.pem"}"\n  cert_file = "{tmp_path / name}.pem"\n'
            config.write_text(config.read_text().replace("  [sites.vars]", tls + "  [sites.vars]"))
            outcomes.append((await run_once(config)).outcome)
        # The token is bound to the certificate it was issued over (RFC 8705): presented
        # over another client certificate, the bank refuses it.
        [(token, bound)] = oauth.bound.items()
        client_ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        client_ctx.load_cert_chain(str(tmp_path / "stranger.pem"))
        async with aiohttp.ClientSession() as session, session.get(
                f"{bank.url}/accounts", headers={"Authorization": f"Bearer {token}"}, ssl=client_ctx) as resp:
            refused = (resp.status, (await resp.json())["reason"])
    assert outcomes == [Outcome.OK, Outcome.AUTH]
    assert bound == registered.public_bytes(serialization.Encoding.DER)
    assert refused == (401, "access token is bound to another client certificate")
    assert oauth.rejected == {"no or another client certificate": 1,
                              "access token is bound to another client certificate": 1}


@pytest.mark.parametrize(("oauth", "message"), [
    ('key_file = "/nonexistent/client.key"',
     "sites[psd2].checks[accounts].steps[token].oauth.key_file: "
     "cannot read key file /nonexistent/client.key: no such file or directory"),
    ('key_file = "{key}", scope = "{{{{ nope }}}}"',
     "sites[psd2].checks[accounts].steps[token].oauth: uses {{ nope }}, which is not a site var or secret"),
    ('auth = "client_secret_post"',
     "sites[psd2].checks[accounts].steps[token].oauth.client_secret: missing required field"),
    ('key_file = "{key}", grant = "refresh_token"',
     "sites[psd2].checks[accounts].steps[token].oauth: grant 'refresh_token' needs `refresh_token`"),
])
async def test_validate_names_the_token_step_field(tmp_path: Path, oauth: str, message: str) -> None:
    key = make_key(tmp_path, "client")
    config = write(tmp_path, "https://bank.example", oauth.format(key=key.key_file))
    done = await run_prober("validate", "-c", str(config))
    assert done.returncode == 2
    assert message in done.stderr, done.stderr


async def test_tokens_assertions_and_refresh_tokens_never_appear_in_output(tmp_path: Path) -> None:
    key = make_key(tmp_path, "client")
    oauth = server_for(key)
    refresh = jwt_oauth(key, 'grant = "refresh_token", refresh_token = "{{ refresh_token }}"')
    async with BankServer(seed=1, oauth=oauth) as bank:
        oauth.refresh_tokens["rt-first-0123456789"] = "tpp-1"
        config = write(tmp_path, bank.url, refresh, refresh_token="rt-first-0123456789")
        # An assertion that fails quoting the token: the message must mask it.
        config.write_text(config.read_text().replace(
            'expect = [ { json = "accounts", min_length = 1 } ]',
            'expect = [ { json = "accounts[0].resourceId", equals = "{{ token }}" } ]'))
        runs = [await run_prober("--log-level", "debug", *fmt, "check", "-c", str(config), *extra)
                for fmt, extra in (((), ()), (("--log-format", "json"), ("--json",)))]
        tokens = list(bank.state.tokens)
        refresh_tokens = ["rt-first-0123456789", *oauth.refresh_tokens]
    output = "".join(r.stdout + r.stderr for r in runs)
    assert [r.returncode for r in runs] == [1, 1], output
    assert "expected ***" in output, output
    assert len(tokens) == 2
    for secret in tokens + refresh_tokens + [key.pem_body]:
        assert secret not in output
    assert "eyJ" not in output  # no JWT (client assertion) either


async def test_two_refresh_token_chains_of_one_client_keep_their_own_tokens(tmp_path: Path) -> None:
    """Two consents of one PSU (AISP and CBPII): same client, two refresh tokens."""
    key = make_key(tmp_path, "client")
    oauth = server_for(key)
    config = write(tmp_path, "http://x",
                   jwt_oauth(key, 'grant = "refresh_token", refresh_token = "{{ refresh_token }}"'))
    text = config.read_text().replace("  [sites.secrets]\n", '  [sites.secrets]\n  other_refresh_token = "rt-other"\n')
    options = jwt_oauth(key, 'grant = "refresh_token", refresh_token = "{{ other_refresh_token }}", into = "token2"')
    second = ('  [[sites.checks.steps]]\n  name = "token2"\n  oauth = { token_url = "http://x/oauth/token", '
              'client_id = "tpp-1", ' + options + ' }\n')
    accounts = '  [[sites.checks.steps]]\n  name = "accounts"'
    text = text.replace(accounts, second + accounts)
    async with BankServer(seed=1, oauth=oauth) as bank:
        oauth.refresh_tokens.update({"rt-first": "tpp-1", "rt-other": "tpp-1"})
        config.write_text(text.replace("http://x", bank.url))
        [plan] = load(config).plans
        results = [await run_journey(plan) for _ in range(2)]
    assert [r.outcome for r in results] == [Outcome.OK, Outcome.OK], (results[0].error, oauth.rejected)
    assert oauth.issued == 2  # one per chain, then both reused
    assert [s.reused for s in results[1].steps[:2]] == [True, True]
    assert len(list((tmp_path / "state" / "tokens").iterdir())) == 2


async def test_waiting_for_another_runs_token_request_is_bounded_by_the_step_timeout(tmp_path: Path) -> None:
    key = make_key(tmp_path, "client")
    oauth = server_for(key)
    config = write(tmp_path, "http://x", jwt_oauth(key, "reuse = false"))
    text = config.read_text()
    checks = text[text.index("[[sites.checks]]"):]
    quick = checks.replace('name = "accounts"\nkind', 'name = "quick"\nkind').replace(
        '  name = "token"\n', '  name = "token"\n  timeout = "500ms"\n')
    async with BankServer(seed=1, oauth=oauth) as bank:
        bank.faults.set("login", Fault(mode="slow", delay_ms=1500))
        config.write_text((text + quick).replace("http://x", bank.url))
        slow_plan, quick_plan = load(config).plans
        slow = asyncio.create_task(run_journey(slow_plan))
        oauth_plan = slow_plan.steps[0].oauth
        assert oauth_plan is not None
        lock = oauth_plan.cache.lock(oauth_plan.client(dict(slow_plan.values)))
        while not lock.locked():  # the slow run holds the client's lock first
            await asyncio.sleep(0.01)
        quick_result = await run_journey(quick_plan)
        slow_result = await slow
    assert slow_result.outcome is Outcome.OK, slow_result.error
    assert quick_result.outcome is Outcome.TIMEOUT and quick_result.failed_step == "token"
    assert quick_result.error == "timeout: another run of this client's token request took over 0.5s"
