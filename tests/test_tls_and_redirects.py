"""TLS verification follows each request's scheme; redirects to another host carry no
credentials. Real servers on loopback (the second host is 127.0.0.2)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from prober.journey.plan import JourneyPlan
from prober.journey.runner import run_journey
from prober.loading import load
from prober.results import Outcome
from tests.fixtures.echo_bank import SESSION, TOKEN, EchoBank


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def plan_for(tmp_path: Path, base_url: str, steps: str, tls: str = "") -> JourneyPlan:
    (tmp_path / "t.toml").write_text(
        f'[[sites]]\nname = "bank"\nbase_url = "{base_url}"\ntimeout = "5s"\n{tls}\n'
        f'[[sites.checks]]\nname = "c"\nkind = "accounts"\ninterval = "60s"\ntimeout = "10s"\n{steps}'
    )
    return load(tmp_path / "t.toml", environ={}).plans[0]


def step(name: str, extra: str) -> str:
    return f'[[sites.checks.steps]]\nname = "{name}"\n{extra}\n'


async def test_https_step_on_an_http_site_verifies_the_certificate(ca: trustme.CA, tmp_path: Path) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async with EchoBank() as plain, EchoBank(ssl_context=server_context) as secure:
        steps = step("plain", 'path = "/ok"') + step("secure", f'url = "{secure.url}/ok"')
        untrusted = await run_journey(plan_for(tmp_path, plain.url, steps))
        turned_off = await run_journey(plan_for(tmp_path, plain.url, steps, "[sites.tls]\nverify = false"))
        trusted = await run_journey(plan_for(tmp_path, plain.url, steps, f'[sites.tls]\nca_file = "{ca_file}"'))
        https_site = await run_journey(plan_for(tmp_path, secure.url, step("secure", 'path = "/ok"')))
    assert untrusted.outcome is Outcome.TLS, untrusted.error
    assert (untrusted.failed_step, untrusted.steps[0].outcome) == ("secure", Outcome.OK)
    assert untrusted.error.startswith("tls: certificate verify failed")
    assert turned_off.outcome is Outcome.OK, turned_off.error
    assert trusted.outcome is Outcome.OK, trusted.error
    assert https_site.outcome is Outcome.TLS


async def test_server_name_is_sent_as_sni_and_checked_against_the_certificate(ca: trustme.CA, tmp_path: Path) -> None:
    """A certificate for api.bank.test on a server reached by IP: verified as that name."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("api.bank.test").configure_cert(server_context)
    seen_sni: list[str | None] = []
    server_context.sni_callback = lambda _sock, name, _ctx: seen_sni.append(name)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async with EchoBank(ssl_context=server_context) as secure:
        tls = f'[sites.tls]\nca_file = "{ca_file}"'
        by_ip = await run_journey(plan_for(tmp_path, secure.url, step("s", 'path = "/ok"'), tls))
        named = await run_journey(plan_for(tmp_path, secure.url, step("s", 'path = "/ok"'),
                                           tls + '\nserver_name = "api.bank.test"'))
        wrong = await run_journey(plan_for(tmp_path, secure.url, step("s", 'path = "/ok"'),
                                           tls + '\nserver_name = "other.bank.test"'))
    assert by_ip.outcome is Outcome.TLS  # the certificate does not name 127.0.0.1
    assert named.outcome is Outcome.OK, named.error
    assert wrong.outcome is Outcome.TLS
    assert "api.bank.test" in seen_sni and "other.bank.test" in seen_sni


async def test_redirect_to_another_host_carries_no_credentials(tmp_path: Path) -> None:
    async with EchoBank() as bank, EchoBank(host="127.0.0.2") as other:
        steps = (
            step("token", 'method = "POST"\npath = "/oauth/token"\nform = { a = "b" }\n'
                          'extract = { access_token = { json = "access_token" } }')
            + step("away", f'path = "/redirect"\nquery = {{ to = "{other.url}/landing" }}\n'
                           'headers = { Authorization = "Bearer {{ access_token }}" }')
            + step("home", f'path = "/redirect"\nquery = {{ to = "{bank.url}/landing" }}\n'
                           'headers = { Authorization = "Bearer {{ access_token }}" }')
        )
        result = await run_journey(plan_for(tmp_path, bank.url, steps))
        away, home = other.seen("/landing"), bank.seen("/landing")
    assert result.outcome is Outcome.OK, result.error
    assert len(away) == len(home) == 1
    # Same origin: the session cookie and the token follow (the test can see them)...
    assert home[0].headers.get("Authorization") == f"Bearer {TOKEN}"
    assert f"SESSION={SESSION}" in home[0].headers.get("Cookie", "")
    # ...another host gets neither (aiohttp drops Authorization when the origin changes;
    # the cookie jar keeps cookies to the host that set them).
    assert "Authorization" not in away[0].headers
    assert "Cookie" not in away[0].headers
    assert TOKEN not in str(away[0]) and SESSION not in str(away[0])


async def test_redirect_to_another_host_drops_secret_headers_and_refuses_secret_bodies(tmp_path: Path) -> None:
    api_key = "ak_live_" + "Mf3Zt7Qa" * 4
    async with EchoBank() as bank, EchoBank(host="127.0.0.2") as other:
        (tmp_path / "t.toml").write_text(f"""
[[sites]]
name = "bank"
base_url = "{bank.url}"
timeout = "5s"
headers = {{ X-Api-Key = "{{{{ api_key }}}}", X-Client = "prober" }}
[sites.secrets]
api_key = "{api_key}"
password = "pw-Hq83Lx02"
[[sites.checks]]
name = "c"
kind = "accounts"
interval = "60s"
timeout = "10s"
[[sites.checks.steps]]
name = "away"
path = "/redirect"
query = {{ to = "{other.url}/landing" }}
[[sites.checks.steps]]
name = "home"
path = "/redirect"
query = {{ to = "{bank.url}/landing" }}
[[sites.checks.steps]]
name = "grant"
method = "POST"
path = "/redirect"
query = {{ to = "{other.url}/ok", code = "307" }}
form = {{ password = "{{{{ password }}}}" }}
always_run = true
""")
        result = await run_journey(load(tmp_path / "t.toml", environ={}).plans[0])
        away, home = other.seen("/landing"), bank.seen("/landing")
    assert result.steps[0].outcome is Outcome.OK and result.steps[1].outcome is Outcome.OK
    assert len(away) == len(home) == 1
    assert home[0].headers.get("X-Api-Key") == api_key  # same origin: sent, the test can see it
    assert "X-Api-Key" not in away[0].headers and away[0].headers.get("X-Client") == "prober"
    # A 307 re-sends method and body: the password grant is not sent to the other host.
    grant = result.steps[2]
    assert (grant.name, grant.outcome) == ("grant", Outcome.ERROR)
    assert grant.error == "error: redirect to another origin would re-send a secret in the body"
    assert other.seen("/ok") == []
    assert api_key not in str(other.requests)
