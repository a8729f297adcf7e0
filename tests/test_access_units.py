"""``[access]`` piece by piece: the configuration and its refusals, the rule that keeps
internal routes off the network without credentials, the rate limiter, and the
authenticator with real bcrypt hashes (in its own thread, remembered once verified)."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

import bcrypt
import pytest

from prober.access.credentials import CACHE_SIZE, MAX_PENDING, Authenticator
from prober.access.ratelimit import ClientRateLimiter
from prober.config.access import AccessConfig, exposure_problems, is_loopback, unauthenticated_exposures
from prober.config.errors import ConfigError
from prober.config.loader import read

TOKEN = "0123456789abcdef0123456789abcdef"
OTHER_TOKEN = "fedcba9876543210fedcba9876543210"
PASSWORD = "correct horse battery staple"


def bcrypt_hash(password: str, cost: int = 4) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def access(**fields) -> AccessConfig:
    return AccessConfig.model_validate(fields)


SITE = '''
[[sites]]
name = "bank"
base_url = "http://127.0.0.1:1"
[[sites.checks]]
name = "login"
kind = "login"
  [[sites.checks.steps]]
  name = "home"
  path = "/"
'''


def problems_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "prober.toml"
    path.write_text(text + SITE)
    try:
        read(path, environ or {})
    except ConfigError as exc:
        return exc.problems
    return []


# -- configuration ---------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ('[[access.tokens]]\nname = "prom"\ntoken = "short"\n',
     "access.tokens[prom].token: a token is at least 16 characters without spaces "
     "(make one with: openssl rand -hex 32)"),
    ('[[access.tokens]]\nname = "prom"\n',
     "access.tokens[prom]: an access token needs exactly one of `token`, `token_file`"),
    ('[[access.users]]\nname = "ops"\npassword_hash = "hunter2-is-my-password"\n',
     "access.users[ops].password_hash: password_hash is not a bcrypt hash ($2b$12$ and 53 characters): make one with"),
    ('[[access.users]]\nname = "a:b"\npassword_hash = "' + bcrypt_hash("x") + '"\n',
     "access.users[a:b].name: a user name is 1-64 characters, without ':' or control characters"),
    ('[[access.users]]\nname = "ops"\npassword_hash_file = "/nonexistent/ops.bcrypt"\n',
     "access.users[ops]: `password_hash_file`: cannot read secret file '/nonexistent/ops.bcrypt'"),
    ('[access]\nrate_limit = -1\n', "access.rate_limit: Input should be greater than or equal to 0"),
    ('[access]\nallow_unauthenticated = "yes"\n', "access.allow_unauthenticated: Input should be a valid boolean"),
    ('[access]\npassword = "x"\n', "access.password: unknown key"),
    ('[access.tls]\ncert_file = "/nonexistent/tls.crt"\nkey_file = "/nonexistent/tls.key"\n',
     "access.tls: cannot use cert_file '/nonexistent/tls.crt' with key_file '/nonexistent/tls.key': "
     "No such file or directory"),
])
def test_invalid_access_settings_are_named(tmp_path: Path, text: str, expected: str) -> None:
    (problem,) = problems_of(tmp_path, text)
    assert problem.startswith(f"{tmp_path / 'prober.toml'}: ") and expected in problem, problem


def test_a_password_written_where_its_hash_belongs_is_never_echoed(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, '[[access.users]]\nname = "ops"\npassword_hash = "${OPS_PASSWORD}"\n',
                             {"OPS_PASSWORD": "Sup3r-secret-Passw0rd"})
    assert "not a bcrypt hash" in problem and "Sup3r" not in problem


def test_credentials_come_from_files_and_the_environment(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "ops.bcrypt").write_text(bcrypt_hash(PASSWORD) + "\n")
    path = tmp_path / "prober.toml"
    path.write_text(f'''
[[access.tokens]]
name = "prometheus"
token_file = "{tmp_path / 'token'}"
[[access.tokens]]
name = "next"
token = "${{NEXT_TOKEN}}"
[[access.users]]
name = "ops"
password_hash_file = "{tmp_path / 'ops.bcrypt'}"
''' + SITE)
    config = read(path, {"NEXT_TOKEN": OTHER_TOKEN}).config.access
    assert [t.token.get_secret_value() for t in config.tokens] == [TOKEN, OTHER_TOKEN]
    assert bcrypt.checkpw(PASSWORD.encode(), config.users[0].password_hash.get_secret_value().encode())
    assert config.authenticates and TOKEN not in repr(config) and TOKEN not in str(config.model_dump())


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("localhost", True), ("::ffff:127.0.0.1", True),
    ("0.0.0.0", False), ("::", False), ("10.1.2.3", False), ("192.0.2.7", False), ("prober.internal", False),
    ("", False),
])
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# -- safe by default ---------------------------------------------------------------------

def _config(tmp_path: Path, text: str):
    path = tmp_path / "prober.toml"
    path.write_text(text + SITE)
    return read(path, {}).config


@pytest.mark.parametrize(("text", "refused"), [
    ('[daemon]\nhealth_listen = "0.0.0.0:9480"\n', ["daemon.health_listen"]),
    ('[daemon]\nhealth_listen = "[::]:9480"\n', ["daemon.health_listen"]),
    ('[daemon]\nhealth_listen = "127.0.0.1:9480"\n', []),
    ('[daemon]\nhealth_listen = ""\n[status_page]\nlisten = "0.0.0.0:8080"\n', ["status_page.listen"]),
    # The public page may listen anywhere; /status stays on loopback.
    ('[status_page]\nlisten = "0.0.0.0:8080"\npublic = true\n', []),
    # A public page on a network-wide health listener still has /status beside it.
    ('[daemon]\nhealth_listen = "0.0.0.0:9480"\n[status_page]\npublic = true\n', ["daemon.health_listen"]),
    ('[daemon]\nhealth_listen = "0.0.0.0:9480"\n[[access.tokens]]\nname = "p"\ntoken = "' + TOKEN + '"\n', []),
    ('[daemon]\nhealth_listen = "0.0.0.0:9480"\n[access]\nallow_unauthenticated = true\n', []),
])
def test_internal_routes_beyond_loopback_need_credentials(tmp_path: Path, text: str, refused: list[str]) -> None:
    problems = exposure_problems(_config(tmp_path, text), "prober.toml")
    assert [p.split(": ")[1] for p in problems] == refused
    for problem in problems:
        assert "\n" not in problem and "without authentication" in problem
        assert "add [[access.tokens]] or [[access.users]], listen on 127.0.0.1, or set [access] " \
               "allow_unauthenticated = true" in problem


def test_allowing_it_explicitly_still_names_what_is_exposed(tmp_path: Path) -> None:
    config = _config(tmp_path, '[daemon]\nhealth_listen = "0.0.0.0:9480"\n[access]\nallow_unauthenticated = true\n')
    (exposed,) = unauthenticated_exposures(config)
    assert (exposed.field, exposed.listen) == ("daemon.health_listen", "0.0.0.0:9480")
    assert "/status" in exposed.internal and "internal status page" in exposed.internal


# -- rate limit ----------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_client_has_its_burst_then_its_rate() -> None:
    clock = Clock()
    limiter = ClientRateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # another client is not affected
    clock.now += 0.5  # one request's worth
    assert limiter.take("a") == 0.0 and limiter.take("a") > 0
    clock.now += 60  # refilled up to the burst, never beyond
    assert [limiter.take("a") for _ in range(4)].count(0.0) == 3


def test_the_table_of_clients_stays_bounded() -> None:
    clock = Clock()
    limiter = ClientRateLimiter(rate=1.0, burst=1, max_clients=100, clock=clock)
    limiter.take("busy")
    for n in range(1000):
        limiter.take(f"10.0.{n // 256}.{n % 256}")
        limiter.take("busy")  # recently used: kept, so its bucket stays empty
    assert len(limiter) == 100 and limiter.take("busy") > 0


def test_a_zero_rate_limits_nothing() -> None:
    limiter = ClientRateLimiter(rate=0, burst=1)
    assert all(limiter.take("a") == 0.0 for _ in range(1000)) and len(limiter) == 0


# -- authenticator -------------------------------------------------------------------------

def authenticator(**fields) -> Authenticator:
    return Authenticator(access(**fields))


async def test_bearer_tokens_any_of_several() -> None:
    auth = authenticator(tokens=[{"name": "old", "token": TOKEN}, {"name": "new", "token": OTHER_TOKEN}])
    assert auth.schemes == ("bearer",)
    assert (await auth.check(f"Bearer {TOKEN}")).who == "old"
    assert (await auth.check(f"bearer  {OTHER_TOKEN} ")).who == "new"
    for header in (None, "", "Bearer", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Token {TOKEN}",
                   basic("old", TOKEN), "Bearer \udcff"):
        assert (await auth.check(header)).verdict in ("missing", "invalid"), header
    assert (await auth.check(None)).verdict == "missing"
    assert auth.verifications == 0  # no bcrypt for tokens


async def test_basic_auth_against_bcrypt_hashes_in_a_thread() -> None:
    auth = authenticator(users=[{"name": "ops", "password_hash": bcrypt_hash(PASSWORD)},
                                {"name": "ops", "password_hash": bcrypt_hash("the next one")}])
    assert auth.schemes == ("basic",)
    assert (await auth.check(basic("ops", PASSWORD))) .verdict == "ok"
    assert (await auth.check(basic("ops", "the next one"))).who == "ops"  # rotation: both at once
    for header in (basic("ops", "wrong"), basic("nobody", PASSWORD), basic("ops", PASSWORD + "x"),
                   "Basic not-base64!", "Basic " + base64.b64encode(b"no colon").decode(),
                   "Basic " + base64.b64encode(b"\xff\xfe:x").decode(), basic("ops", "x" * 100),
                   f"Bearer {TOKEN}"):
        assert (await auth.check(header)).verdict == "invalid", header


async def test_a_verified_password_is_remembered_and_forgotten_on_reload() -> None:
    clock = Clock()
    config = access(users=[{"name": "ops", "password_hash": bcrypt_hash(PASSWORD)}])
    auth = Authenticator(config, clock=clock)
    assert (await auth.check(basic("ops", PASSWORD))).verdict == "ok" and auth.verifications == 1
    for _ in range(20):  # a scraper every few seconds: no bcrypt
        clock.now += 2
        assert (await auth.check(basic("ops", PASSWORD))).verdict == "ok"
    assert auth.verifications == 1
    clock.now += 61  # past the TTL: verified again
    assert (await auth.check(basic("ops", PASSWORD))).verdict == "ok" and auth.verifications == 2
    # A wrong password is never remembered: every attempt costs a verification.
    assert (await auth.check(basic("ops", "wrong"))).verdict == "invalid"
    assert (await auth.check(basic("ops", "wrong"))).verdict == "invalid" and auth.verifications == 4
    # A reload without that user: its remembered success goes at once.
    auth.configure(access(users=[{"name": "other", "password_hash": bcrypt_hash("x")}]))
    assert (await auth.check(basic("ops", PASSWORD))).verdict == "invalid"


async def test_the_remembered_successes_are_bounded() -> None:
    hashed = bcrypt_hash(PASSWORD)
    auth = authenticator(users=[{"name": f"u{n}", "password_hash": hashed} for n in range(CACHE_SIZE + 50)])
    for n in range(CACHE_SIZE + 50):
        assert (await auth.check(basic(f"u{n}", PASSWORD))).verdict == "ok"
    assert auth.remembered == CACHE_SIZE
    verified = auth.verifications
    assert (await auth.check(basic(f"u{CACHE_SIZE + 49}", PASSWORD))).verdict == "ok"  # the latest: kept
    assert (await auth.check(basic("u0", PASSWORD))).verdict == "ok"  # the oldest: forgotten
    assert auth.verifications == verified + 1


async def test_one_verification_for_simultaneous_requests_and_a_bound_on_waiting_ones() -> None:
    auth = authenticator(users=[{"name": "ops", "password_hash": bcrypt_hash(PASSWORD, cost=10)}])
    # A browser fetching the page, its stylesheet and its icon at once: one bcrypt.
    results = await asyncio.gather(*(auth.check(basic("ops", PASSWORD)) for _ in range(3)))
    assert [r.verdict for r in results] == ["ok"] * 3 and auth.verifications == 1
    # Guesses beyond what waits for the bcrypt thread are answered busy at once.
    guesses = await asyncio.gather(*(auth.check(basic("ops", f"guess-{n}")) for n in range(MAX_PENDING + 5)))
    verdicts = [r.verdict for r in guesses]
    assert verdicts.count("busy") == 5 and verdicts.count("invalid") == MAX_PENDING


async def test_bcrypt_never_holds_the_event_loop() -> None:
    """While a cost-12 verification (about half a second) runs, the loop keeps turning."""
    auth = authenticator(users=[{"name": "ops", "password_hash": bcrypt_hash(PASSWORD, cost=12)}])
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    result = await auth.check(basic("ops", PASSWORD))
    took = time.perf_counter() - started
    task.cancel()
    assert result.verdict == "ok" and took > 0.1
    # Had bcrypt run on the loop, the ticker would not have turned until it was over.
    assert len(gaps) >= 10 and max(gaps) < took, (len(gaps), max(gaps, default=None), took)
