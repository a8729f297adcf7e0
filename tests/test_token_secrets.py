"""What a token step receives is a secret from the moment it arrives.

The access token, the (rotated) refresh token, an OpenID ``id_token`` and every value a
step extracts from a token answer are masked in every message, including the messages
of assertions on the token step itself, which run before the token is handed to later
steps. ``secret = true`` on any extraction has the same effect, on its own step too.

The token endpoint is the simulated bank's OAuth2 server (a real aiohttp server on
loopback), which here also issues an ``id_token`` and remembers every refresh token it
ever issued; journeys run in this process, the end-to-end test runs ``prober check``
and ``prober run`` as subprocesses against real InfluxDB and a real webhook receiver.
"""

from __future__ import annotations

import json
import secrets
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from prober.journey.runner import run_journey
from prober.loading import load
from prober.results import JourneyResult, Outcome
from prober.simbank import BankServer
from prober.simbank.oauth import OAuthClient, OAuthServer
from prober.simbank.state import BankState
from tests.cli import run_prober
from tests.daemon_helpers import ProberProcess, checks_failing, get_json, wait_for
from tests.fixtures.loopback import serving
from tests.fixtures.servers import FaultProxy, InfluxDatabase, free_port
from tests.notify_helpers import Receiver

MIN_FRAGMENT = 8  # the documented minimum: shorter runs of a secret's characters may show
CLIENT_SECRET = "cs-" + "Vq8Lx2Rn" * 4
FIRST_REFRESH = "rt-first-" + "Hd7Kw3Pz" * 3


class TokenServer(OAuthServer):
    """The simulated bank's OAuth server, answering an OpenID ``id_token`` besides the
    access and refresh tokens, and keeping every token it issued (for the assertions)."""

    def __init__(self) -> None:
        super().__init__({"tpp-1": OAuthClient("tpp-1", secret=CLIENT_SECRET)})
        self.refresh_tokens[FIRST_REFRESH] = "tpp-1"
        self.every_refresh_token: list[str] = [FIRST_REFRESH]
        self.id_tokens: list[str] = []

    def new_refresh_token(self, client_id: str) -> str:
        token = OAuthServer.new_refresh_token(self, client_id)
        self.every_refresh_token.append(token)
        return token

    def _grant(self, form: dict[str, str], client_id: str, state: BankState) -> dict[str, object]:
        body = OAuthServer._grant(self, form, client_id, state)
        id_token = "eyJhbGciOiJQUzI1NiJ9." + secrets.token_urlsafe(30)
        self.id_tokens.append(id_token)
        body["id_token"] = id_token
        return body


def issued(bank: BankServer, oauth: TokenServer) -> list[str]:
    """Every secret of the run: access, refresh and id tokens issued, the client secret."""
    return [*bank.state.tokens, *oauth.every_refresh_token, *oauth.id_tokens, CLIENT_SECRET]


def fragments(text: str, secrets_: list[str]) -> list[str]:
    """Every run of ``MIN_FRAGMENT`` characters of a secret that ``text`` contains."""
    return sorted({s[i: i + MIN_FRAGMENT] for s in secrets_ for i in range(len(s) - MIN_FRAGMENT + 1)
                   if s[i: i + MIN_FRAGMENT] in text})


SITE = """
[[sites]]
name = "psd2"
base_url = "{url}"
  [sites.vars]
  client_id = "tpp-1"
  [sites.secrets]
  client_secret = "{client_secret}"
  refresh_token = "{refresh_token}"
"""

TOKEN_STEP = """
  [[sites.checks.steps]]
  name = "token"
  oauth = {{ token_url = "{url}/oauth/token", client_id = "{{{{ client_id }}}}", grant = "refresh_token", refresh_token = "{{{{ refresh_token }}}}", auth = "client_secret_post", client_secret = "{{{{ client_secret }}}}", reuse = false }}
"""  # noqa: E501 - a TOML inline table is one line

ACCOUNTS_STEP = """
  [[sites.checks.steps]]
  name = "accounts"
  path = "/accounts"
  headers = {{ Authorization = "Bearer {{{{ token }}}}" }}
"""


def check(name: str, url: str, token_lines: str = "", accounts_lines: str = "") -> str:
    """A check: the token step (with ``token_lines`` added), then the accounts list."""
    return (f'[[sites.checks]]\nname = "{name}"\nkind = "accounts"\ninterval = "500ms"\ntimeout = "500ms"\n'
            + TOKEN_STEP.format(url=url) + token_lines + ACCOUNTS_STEP.format() + accounts_lines)


def site(url: str, checks: list[str], head: str) -> str:
    """The site of ``checks``, after ``head`` (at least ``[daemon] state_dir``, where the
    rotated refresh tokens go: a test's own directory)."""
    return head + SITE.format(url=url, client_secret=CLIENT_SECRET, refresh_token=FIRST_REFRESH) + "\n".join(checks)


def state(tmp_path: Path) -> str:
    return f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n'


async def run_twice(config: Path) -> list[JourneyResult]:
    [plan] = load(config).plans
    return [await run_journey(plan), await run_journey(plan)]


ON_THE_TOKEN_STEP = {
    "access_token": ('{ json = "access_token", matches = "^[0-9]+$" }',
                     "json access_token: expected to match /^[0-9]+$/, got ***"),
    "refresh_token": ('{ json = "refresh_token", equals = "nope" }', "json refresh_token: expected nope, got ***"),
    "id_token": ('{ json = "id_token", matches = "^x$" }', "json id_token: expected to match /^x$/, got ***"),
    "typed": ('{ json = "access_token", equals = 1 }', 'json access_token: expected 1 (number), got "***" (string)'),
    "body": ('{ body = true, contains = "nope" }', None),
}


@pytest.mark.parametrize("case", ON_THE_TOKEN_STEP)
async def test_an_assertion_on_the_token_step_masks_every_token(tmp_path: Path, case: str) -> None:
    expect, message = ON_THE_TOKEN_STEP[case]
    oauth = TokenServer()
    async with BankServer(seed=1, oauth=oauth) as bank:
        config = tmp_path / "c.toml"
        config.write_text(site(bank.url, [check("accounts", bank.url, f"  expect = [ {expect} ]\n")], state(tmp_path)))
        results = await run_twice(config)
        secrets_ = issued(bank, oauth)
    # The second run also failing on its assertion (not refused with invalid_grant) shows
    # the refresh token the bank rotated in the first was kept, although that run failed.
    assert [r.outcome for r in results] == [Outcome.ASSERTION] * 2, [(r.outcome, r.error) for r in results]
    assert [r.failed_step for r in results] == ["token", "token"]
    for result in results:
        assert result.error.startswith("assertion failed: ") and "***" in result.error, result.error
        if message is not None:
            assert result.error == f"assertion failed: {message}"
    assert oauth.rejected == {} and len(oauth.id_tokens) == 2
    assert fragments(json.dumps([r.error for r in results]), secrets_) == []


async def test_values_extracted_from_a_token_answer_are_secret_whatever_their_name(tmp_path: Path) -> None:
    oauth = TokenServer()
    async with BankServer(seed=1, oauth=oauth) as bank:
        config = tmp_path / "c.toml"
        config.write_text(site(bank.url, [check(
            "accounts", bank.url, '  extract = { idt = { json = "id_token" }, rt = { json = "refresh_token" } }\n',
            '  expect = [ { json = "accounts[0].resourceId", equals = "{{ idt }}" },\n'
            '             { json = "accounts[0].resourceId", not_equals = "{{ rt }}" } ]\n')], state(tmp_path)))
        [plan] = load(config).plans
        result = await run_journey(plan)
        secrets_ = issued(bank, oauth)
    assert result.outcome is Outcome.ASSERTION and result.failed_step == "accounts", result.error
    assert result.error.startswith("assertion failed: json accounts[0].resourceId: expected ***, got "), result.error
    assert fragments(result.error, secrets_) == []


@pytest.mark.parametrize("where", ["same step", "later step"])
async def test_a_value_marked_secret_is_masked_like_a_token(tmp_path: Path, where: str) -> None:
    """``secret = true`` on a name that does not look like a credential: masked in the
    assertion of the very step that extracts it, and in later steps."""
    oauth = TokenServer()
    extract = '  extract = { acct = { json = "accounts[0].iban", secret = true } }\n'
    quoting = '  expect = [ { json = "accounts[0].iban", equals = "nope" } ]\n'
    lines = extract + quoting if where == "same step" else extract + ACCOUNTS_STEP.format().replace(
        'name = "accounts"', 'name = "again"') + '  expect = [ { json = "accounts[0].name", equals = "{{ acct }}" } ]\n'
    async with BankServer(seed=1, oauth=oauth) as bank:
        config = tmp_path / "c.toml"
        config.write_text(site(bank.url, [check("accounts", bank.url, accounts_lines=lines)], state(tmp_path)))
        [plan] = load(config).plans
        result = await run_journey(plan)
        iban = next(iter(bank.state.accounts.values())).iban
    assert result.outcome is Outcome.ASSERTION, result.error
    if where == "same step":
        assert result.error == "assertion failed: json accounts[0].iban: expected nope, got ***"
    else:
        assert result.error.startswith("assertion failed: json accounts[0].name: expected ***, got "), result.error
    assert iban not in result.error


HAND_WRITTEN = """
[[sites]]
name = "simbank"
base_url = "{url}"
  [sites.secrets]
  password = "s3cret-pw"
[[sites.checks]]
name = "login"
kind = "login"
  [[sites.checks.steps]]
  name = "token"
  method = "POST"
  path = "/oauth/token"
  {body}
  extract = {{ bearer = {{ json = "access_token" }} }}
  expect = [ {{ json = "access_token", matches = "^[0-9]+$" }} ]
"""


@pytest.mark.parametrize("body", [
    'form = { grant_type = "password", username = "alice", password = "{{ password }}" }',
    # Not recognisably a token request (a raw body): the answer is still a token answer.
    'body = "grant_type=password&username=alice&password={{ password }}"\n'
    '  headers = { "Content-Type" = "application/x-www-form-urlencoded" }',
])
async def test_a_hand_written_token_request_masks_its_answers_tokens(tmp_path: Path, body: str) -> None:
    async with BankServer(seed=1) as bank:
        config = tmp_path / "c.toml"
        config.write_text(HAND_WRITTEN.format(url=bank.url, body=body))
        [plan] = load(config).plans
        result = await run_journey(plan)
        [token] = bank.state.tokens
    assert result.error == "assertion failed: json access_token: expected to match /^[0-9]+$/, got ***"
    assert token not in result.error


EVERY_KIND = {
    "access": (f"  expect = [ {ON_THE_TOKEN_STEP['access_token'][0]} ]\n", ""),
    "refresh": (f"  expect = [ {ON_THE_TOKEN_STEP['refresh_token'][0]} ]\n", ""),
    "idtoken": (f"  expect = [ {ON_THE_TOKEN_STEP['id_token'][0]} ]\n", ""),
    "marked": ("", '  extract = { acct = { json = "accounts[0].iban", secret = true } }\n'
                   '  expect = [ { json = "accounts[0].iban", equals = "nope" } ]\n'),
}


async def test_no_token_reaches_any_output(influx_db: InfluxDatabase, fault_proxy: FaultProxy, tmp_path: Path) -> None:
    """`prober check` (table and JSON, debug logs), then `prober run`: its log, the
    `check`/`step`/`incident` points in InfluxDB, the spool's and the state's bytes,
    `/status`, the status page and the webhook notifications hold no fragment of any token.

    InfluxDB answers 503 (through a proxy) at first, so that the results wait in the
    spool, whose bytes are read then; they reach InfluxDB once it answers again."""
    port = free_port()
    fault_proxy.mode = 503
    oauth = TokenServer()
    async with BankServer(seed=1, oauth=oauth) as bank, Receiver() as hook:
        head = (f'[daemon]\nhealth_listen = "127.0.0.1:{port}"\nstate_dir = "{tmp_path / "state"}"\n'
                f'self_report_interval = "1s"\nlog_level = "debug"\n'
                f'[influxdb]\nurl = "{fault_proxy.url}"\napi = "v1"\ndatabase = "{influx_db.name}"\n'
                f'flush_interval = "100ms"\nspool_dir = "{tmp_path / "spool"}"\n'
                f'[incidents]\nopen_after = 1\n'
                f'[[notifiers]]\ntype = "webhook"\nurl = "{hook.url}"\n')
        checks = [check(name, bank.url, *lines).replace('interval = "500ms"\ntimeout = "500ms"',
                                                         'interval = "1s"\ntimeout = "1s"')
                  for name, lines in EVERY_KIND.items()]
        config = tmp_path / "prober.toml"
        config.write_text(site(bank.url, checks, head))
        as_table = await run_prober("--log-level", "debug", "check", "-c", str(config))
        assert fragments(as_table.stdout + as_table.stderr, issued(bank, oauth)) == [], as_table.stdout
        as_json = await run_prober("--log-level", "debug", "--log-format", "json", "check", "-c", str(config), "--json")
        assert as_table.returncode == as_json.returncode == 1, as_table.stderr
        results = as_json.by_check()
        assert {name: (r["outcome"], r["failed_step"]) for name, r in results.items()} == {
            "access": ("assertion", "token"), "refresh": ("assertion", "token"),
            "idtoken": ("assertion", "token"), "marked": ("assertion", "accounts")}, results
        assert results["refresh"]["error"] == "assertion failed: json refresh_token: expected nope, got ***"
        assert results["marked"]["error"] == "assertion failed: json accounts[0].iban: expected nope, got ***"
        assert "got ***" in as_table.stdout
        daemon = await ProberProcess(["run", "-c", str(config)], cwd=tmp_path).start()
        try:
            await wait_for(lambda: checks_failing(port, 4), timeout=30, what="four failing checks in /status")
            await wait_for(lambda: len(hook.requests) >= 4, timeout=30, what="a webhook per incident")
            _, status = await get_json(f"http://127.0.0.1:{port}/status")
            async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/") as page:
                status_page = await page.text()
            spooled = b"".join(p.read_bytes() for p in (tmp_path / "spool").rglob("*") if p.is_file())
            fault_proxy.mode = "forward"
            await wait_for(lambda: influx_db.count("check") >= 8, timeout=60, what="the spool replayed into InfluxDB")
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0, daemon.log[-3000:]
        finally:
            await daemon.kill()
        secrets_ = issued(bank, oauth) + [a.iban for a in bank.state.accounts.values()]

    points: dict[str, list[dict[str, Any]]] = {
        "check": influx_db.query('SELECT "error", "outcome", "check" FROM "check"'),
        "step": influx_db.query('SELECT "error" FROM "step" WHERE "outcome" = \'assertion\''),
        "incident": influx_db.query('SELECT "reason" FROM "incident"'),
    }
    assert all(points.values()), points
    # The refresh-token chain survived every failed run: no run was refused.
    assert {row["outcome"] for row in points["check"]} == {"assertion"}, points["check"]
    assert all(row["error"].endswith("got ***") for row in points["check"]), points["check"]
    # state/tokens/ is where the rotated refresh token is meant to be (mode 0600); nowhere else.
    state = b"".join(
        p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file() and p.parent.name != "tokens"
    )
    assert b"assertion failed" in state  # the incident state holds the errors
    assert b"assertion failed" in spooled and b"got ***" in spooled  # the spool did hold these results
    everything = {
        "check table": as_table.stdout + as_table.stderr,
        "check json": as_json.stdout + as_json.stderr,
        "daemon log": daemon.log,
        "status": json.dumps(status),
        "status page": status_page,
        "points": json.dumps(points),
        "webhooks": json.dumps([r["json"] for r in hook.requests]),
        "spool": spooled.decode(errors="replace"),
        "state": state.decode(errors="replace"),
    }
    assert all("***" in everything[where] for where in ("webhooks", "status", "status page"))
    assert {where: fragments(text, secrets_) for where, text in everything.items()} == dict.fromkeys(everything, [])


@pytest.mark.parametrize("auth", ["client_secret_post", "client_secret_basic"])
async def test_a_client_secret_written_inline_is_masked_too(tmp_path: Path, auth: str) -> None:
    """A token endpoint that echoes what it received: the client secret (here written in
    the step, not in [sites.secrets]) and its Basic form are masked like the tokens."""
    async def token(request: web.Request) -> web.Response:
        form = dict(await request.post())
        return web.json_response({"access_token": "at-" + "Zp4Qm7Xc" * 4, "seen": {
            "form": form, "authorization": request.headers.get("Authorization")}})

    app = web.Application()
    app.router.add_post("/token", token)
    seen = "seen.form.client_secret" if auth == "client_secret_post" else "seen.authorization"
    async with serving(app) as url:
        config = tmp_path / "c.toml"
        config.write_text(f"""
[[sites]]
name = "echo"
base_url = "{url}"
[[sites.checks]]
name = "token"
kind = "login"
  [[sites.checks.steps]]
  name = "token"
  oauth = {{ token_url = "{url}/token", client_id = "tpp-1", auth = "{auth}", client_secret = "{CLIENT_SECRET}" }}
  expect = [ {{ json = "{seen}", equals = "x" }} ]
""")
        [plan] = load(config).plans
        result = await run_journey(plan)
    assert result.outcome is Outcome.ASSERTION, result.error
    assert result.error in ("assertion failed: json seen.form.client_secret: expected x, got ***",
                            "assertion failed: json seen.authorization: expected x, got ***"), result.error
    assert fragments(result.error, [CLIENT_SECRET]) == [], result.error
