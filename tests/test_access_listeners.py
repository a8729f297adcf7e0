"""Who may see what, over real sockets: the listeners ``prober run`` builds (the health
listener with the internal status page, the public page on its own listener, the
supervisor's), a real prober probing the simulated bank behind them.

* every route of every listener is either on the short public list or answers 401
  without a credential (so a route added later, ``/metrics``, is covered as it lands);
* no answer of any route, with or without a credential, holds a configured secret;
* every answer carries the security headers, refusals included;
* requests over the size limits are refused before any route runs;
* the rate limit is per client address (127.0.0.1 and 127.0.0.2 are two clients);
* TLS with a real client, and a certificate replaced on disk is served to the next
  connections (a broken pair is not: the previous one stays).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import bcrypt
import pytest
import pytest_asyncio
import trustme

from prober.access import SECURITY_HEADERS, AccessGate, UnsafeListener
from prober.config.access import AccessConfig
from prober.daemon.lifecycle import Daemon
from prober.daemon.service import ProberService
from prober.daemon.workers import SupervisorHealthServer, WorkerRecord
from prober.loading import LoadedConfig, load
from prober.simbank import BankServer
from prober.writer.writer import ResultWriter
from tests.daemon_helpers import check, config_text, wait_for

TOKEN = "tok-3f9d0c1e7a5b4c2d8e6f"
NEXT_TOKEN = "tok-next-9a8b7c6d5e4f3a2b"
PASSWORD = "pass-7Yq2-horse-staple"
BANK_PASSWORD = "s3cret-pw"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()
BASIC = "Basic " + base64.b64encode(f"ops:{PASSWORD}".encode()).decode()

PUBLIC_ALWAYS = {"/healthz"}
PUBLIC_PAGE = {"/", "/status.css", "/favicon.svg", "/incidents", "/api/v1/status", "/feed.atom",
               "/badge/{site}/{kind}.svg"}
"""The whole public list: the page's routes are public only on a ``public = true`` page."""

ACCESS = f'''
[[access.tokens]]
name = "prometheus"
token = "{TOKEN}"
[[access.users]]
name = "ops"
password_hash = "{HASH}"
'''


def daemon_for(tmp_path: Path, bank_url: str, extra: str, tls_check_every: float = 5.0) -> Daemon:
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "prober.toml"
    path.write_text(config_text(bank_url, [check("login", interval="300ms")], password=BANK_PASSWORD,
                                daemon={"health_listen": "127.0.0.1:0", "state_dir": str(tmp_path / "state")})
                    + extra)
    loaded = load(path)

    def service(loaded: LoadedConfig) -> ProberService:
        return ProberService(loaded, writer=ResultWriter(None, spool_dir=tmp_path / "spool"))

    gate = AccessGate(loaded.config.access, tls_check_every=tls_check_every)
    return Daemon(path, loaded, service_factory=service, gate=gate)


@pytest_asyncio.fixture
async def daemons(bank: BankServer, tmp_path: Path) -> AsyncIterator[tuple[Daemon, Daemon]]:
    """Two probers as ``prober run`` composes them: the internal page on the health
    listener; the public page on a listener of its own."""
    unlimited = ACCESS + "[access]\nrate_limit = 0\n"  # these tests ask many times a second
    internal = daemon_for(tmp_path / "a", bank.url, unlimited)
    public = daemon_for(tmp_path / "b", bank.url, unlimited + '[status_page]\nlisten = "127.0.0.1:0"\npublic = true\n')
    for daemon in (internal, public):
        await daemon.startup()
    try:
        yield internal, public
    finally:
        for daemon in (internal, public):
            await daemon.shutdown()


def url_of(base: str, canonical: str) -> str:
    return base + canonical.format(site="simbank", kind="login", check="web-login", name="none.png")


async def answer(session: aiohttp.ClientSession, method: str, url: str,
                 headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    async with session.request(method, url, headers=headers or {}, allow_redirects=False) as response:
        return response.status, dict(response.headers), await response.read()


async def test_every_route_is_public_by_the_list_or_needs_a_credential(daemons: tuple[Daemon, Daemon]) -> None:
    internal, public = daemons
    records = [WorkerRecord(1, 1, "probe-w1", ("127.0.0.1", 9))]
    supervisor = SupervisorHealthServer("127.0.0.1", 0, records, lambda: False, gate=internal.gate)
    await supervisor.start()
    listeners = [(internal.health, PUBLIC_ALWAYS), (public.health, PUBLIC_ALWAYS),
                 (public.page_server, PUBLIC_PAGE), (supervisor, PUBLIC_ALWAYS)]
    seen: set[str] = set()
    try:
        async with aiohttp.ClientSession() as session:
            for listener, public_list in listeners:
                assert listener is not None and listener.app is not None
                for route in listener.app.router.routes():
                    assert route.resource is not None
                    canonical = route.resource.canonical
                    seen.add(canonical)
                    url = url_of(listener.url, canonical)
                    code, headers, _ = await answer(session, route.method, url)
                    if canonical in public_list:
                        assert code in (200, 302, 503), (route.method, url, code)
                        continue
                    assert code == 401, (route.method, url, code)
                    assert headers["WWW-Authenticate"].startswith('Basic realm="bank-prober"'), headers
                    for credential in (BASIC, f"Bearer {TOKEN}"):
                        code, _, _ = await answer(session, route.method, url, {"Authorization": credential})
                        assert code in (200, 302, 404), (route.method, url, credential[:6], code)
                    for wrong in (f"Bearer {NEXT_TOKEN}", "Basic " + base64.b64encode(b"ops:nope").decode()):
                        assert (await answer(session, route.method, url, {"Authorization": wrong}))[0] == 401
    finally:
        await supervisor.stop()
    # Every route was met: the internal page's on the health listener, the public page's on its own.
    assert seen >= PUBLIC_PAGE | {"/healthz", "/status"}


async def test_both_challenges_and_what_a_wrong_token_is_told(daemons: tuple[Daemon, Daemon]) -> None:
    internal, _ = daemons
    assert internal.health is not None
    async with aiohttp.ClientSession() as session:
        async with session.get(internal.health.url + "/status") as response:
            assert response.status == 401
            assert response.headers.getall("WWW-Authenticate") == [
                'Basic realm="bank-prober", charset="UTF-8"', 'Bearer realm="bank-prober"']
        async with session.get(internal.health.url + "/status", headers={"Authorization": "Bearer wrong"}) as response:
            assert response.headers.getall("WWW-Authenticate")[1] == 'Bearer realm="bank-prober", error="invalid_token"'
        async with session.get(internal.health.url + "/status",
                               headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200 and (await response.json())["status"] == "running"


async def test_no_answer_holds_a_secret(daemons: tuple[Daemon, Daemon]) -> None:
    """Every route of every listener, with no, a wrong and a right credential, and
    compressed or not: neither the headers nor the body hold a token, a password, a
    hash, an Authorization value, nor the bank's own password."""
    internal, public = daemons

    async def login_ran() -> bool:
        return bool(internal.service.status.checks) and bool(public.service.status.checks)

    await wait_for(login_ran, what="the login check to run")
    secrets = [TOKEN, PASSWORD, HASH, HASH[7:29], BASIC.split()[1], BANK_PASSWORD]
    secrets += [base64.b64encode(s.encode()).decode() for s in (TOKEN, PASSWORD)]
    credentials = [None, f"Bearer {TOKEN}", BASIC, f"Bearer {TOKEN}x", "Basic " + base64.b64encode(
        f"ops:{PASSWORD}x".encode()).decode()]
    checked = 0
    async with aiohttp.ClientSession() as session:
        for listener in (internal.health, public.health, public.page_server):
            assert listener is not None and listener.app is not None
            for route in listener.app.router.routes():
                assert route.resource is not None
                for credential in credentials:
                    headers = {"Accept-Encoding": "gzip"} | ({"Authorization": credential} if credential else {})
                    code, answer_headers, body = await answer(
                        session, route.method, url_of(listener.url, route.resource.canonical), headers)
                    text = body.decode("utf-8", "replace") + repr(answer_headers)
                    for secret in secrets:
                        assert secret not in text, (route.resource.canonical, credential and credential[:6], code)
                    checked += 1
    assert checked >= 50


async def test_every_answer_carries_the_security_headers(daemons: tuple[Daemon, Daemon]) -> None:
    internal, public = daemons
    assert internal.health is not None and public.page_server is not None
    urls = [
        (internal.health.url + "/healthz", None, {200, 503}),
        (internal.health.url + "/status", None, {401}),
        (internal.health.url + "/status", BASIC, {200}),
        (internal.health.url + "/", f"Bearer {TOKEN}", {200}),
        (internal.health.url + "/incidents", f"Bearer {TOKEN}", {302}),
        (internal.health.url + "/nothing-here", None, {404}),
        (public.page_server.url + "/badge/nobank/login.svg", None, {404}),
        (public.page_server.url + "/", None, {200}),
    ]
    async with aiohttp.ClientSession() as session:
        for url, credential, codes in urls:
            code, headers, _ = await answer(session, "GET", url, {"Authorization": credential} if credential else None)
            assert code in codes, (url, code)
            for name, value in SECURITY_HEADERS.items():
                assert headers.get(name) == value, (url, name, headers)
        code, headers, _ = await answer(session, "GET", public.page_server.url + "/badge/simbank/login.svg")
        assert code == 200 and headers["Cross-Origin-Resource-Policy"] == "cross-origin"  # the badge's own


async def test_oversized_requests_are_refused_before_any_route(daemons: tuple[Daemon, Daemon]) -> None:
    internal, _ = daemons
    assert internal.health is not None
    host, port = internal.health.host, internal.health.port

    async def raw(request: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request)
        await writer.drain()
        data = await reader.read(1024)
        writer.close()
        return data.split(b"\r\n", 1)[0]

    auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
    assert (await raw(b"GET /status HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n")).startswith(b"HTTP/1.1 200")
    huge_header = b"GET /status HTTP/1.1\r\nHost: x\r\n" + auth + b"X-Junk: " + b"a" * 9000 + b"\r\n\r\n"
    assert (await raw(huge_header)).split()[1] in (b"400", b"431")
    many = b"".join(f"X-H{n}: v\r\n".encode() for n in range(100))
    assert (await raw(b"GET /status HTTP/1.1\r\nHost: x\r\n" + auth + many + b"\r\n")).split()[1] in (b"400", b"431")
    long_line = b"GET /status?" + b"q" * 9000 + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
    assert (await raw(long_line)).split()[1] in (b"400", b"414")


async def test_the_rate_limit_is_per_client_and_spares_the_public_routes(bank: BankServer, tmp_path: Path) -> None:
    daemon = daemon_for(tmp_path, bank.url, ACCESS + "[access]\nrate_limit = 1\nrate_burst = 3\n")
    await daemon.startup()
    assert daemon.health is not None
    status = daemon.health.url + "/status"
    token = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with aiohttp.ClientSession() as first, aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))) as second:
            assert [(await answer(first, "GET", status, token))[0] for _ in range(2)] == [200, 200]
            # Guessing spends the bucket too: the last request of the burst, without a credential.
            assert (await answer(first, "GET", status))[0] == 401
            started = time.monotonic()
            code, headers, _ = await answer(first, "GET", status, token)
            # Held back until the next request would be allowed (about 1 s here): a client
            # asking again at once on its connection is slowed to the pace it must keep.
            assert code == 429 and int(headers["Retry-After"]) >= 1 and time.monotonic() - started >= 0.5
            assert headers["X-Content-Type-Options"] == "nosniff"
            # Liveness is never limited.
            for _ in range(10):
                assert (await answer(first, "GET", daemon.health.url + "/healthz"))[0] == 200
            # Another client address has its own bucket.
            assert [(await answer(second, "GET", status, token))[0] for _ in range(4)] == [200, 200, 200, 429]
            await asyncio.sleep(1.1)
            assert (await answer(first, "GET", status, token))[0] == 200
        assert daemon.gate.refusals.total[429] == 2 and daemon.gate.refusals.total[401] == 1
    finally:
        await daemon.shutdown()


async def test_a_listener_refuses_internal_routes_on_the_network_without_credentials(
        bank: BankServer, tmp_path: Path) -> None:
    """The second line behind `prober run`'s own check: the listener itself will not bind."""
    daemon = daemon_for(tmp_path, bank.url, "")
    assert daemon.health is not None
    daemon.health.host = "0.0.0.0"
    with pytest.raises(UnsafeListener, match="refusing to serve /, .*/status.* on 0.0.0.0 without authentication"):
        await daemon.health.start()
    assert daemon.health.app is None


# -- TLS -----------------------------------------------------------------------------------

def write_pair(ca: trustme.CA, directory: Path, key_of: trustme.LeafCert | None = None) -> trustme.LeafCert:
    """A certificate for 127.0.0.1 from ``ca``, written atomically over tls.crt / tls.key
    (the key of ``key_of`` instead of its own: a pair that does not match)."""
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    directory.mkdir(exist_ok=True)
    for name, blob in (("tls.key", (key_of or leaf).private_key_pem), ("tls.crt", leaf.cert_chain_pems[0])):
        (directory / f".{name}").write_bytes(blob.bytes())
        os.replace(directory / f".{name}", directory / name)
    return leaf


def client_trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def status_over_tls(url: str, ca: trustme.CA) -> int | str:
    """A new connection each time (a handshake with the certificate served now)."""
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_trusting(ca))) as session:
            async with session.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as response:
                return response.status
    except aiohttp.ClientConnectorCertificateError:
        return "untrusted"


async def test_tls_with_a_certificate_replaced_on_disk(bank: BankServer, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    tls = tmp_path / "tls"
    first_ca, second_ca, third_ca = trustme.CA(), trustme.CA(), trustme.CA()
    write_pair(first_ca, tls)
    daemon = daemon_for(tmp_path, bank.url, ACCESS + f'[access.tls]\ncert_file = "{tls}/tls.crt"\n'
                                                      f'key_file = "{tls}/tls.key"\n', tls_check_every=0.1)
    assert daemon.health is not None
    await daemon.startup()
    url = daemon.health.url + "/status"
    try:
        assert url.startswith("https://127.0.0.1:")
        assert await status_over_tls(url, first_ca) == 200
        async with aiohttp.ClientSession() as session:  # plain HTTP on the TLS port: no answer
            with pytest.raises(aiohttp.ClientError):
                await answer(session, "GET", url.replace("https://", "http://"))
        # Renewed (a new CA, even): the next connections get it, no restart.
        second = write_pair(second_ca, tls)
        async def renewed() -> bool:
            return await status_over_tls(url, second_ca) == 200

        await wait_for(renewed, timeout=10, interval=0.1, what="the renewed certificate to be served")
        assert await status_over_tls(url, first_ca) == "untrusted"
        # A broken pair (a certificate with another one's key) is not loaded: still the second.
        with caplog.at_level(logging.ERROR, logger="prober.access"):
            write_pair(third_ca, tls, key_of=second)
            await wait_for(lambda: "cannot reload the listener's certificate" in caplog.text, timeout=10,
                           what="the broken pair to be reported")
        assert "the key does not belong to the certificate; still serving the previous one" in caplog.text
        assert await status_over_tls(url, second_ca) == 200
        assert daemon.health.certificate is not None and daemon.health.certificate.reloads == 1
    finally:
        await daemon.shutdown()


async def test_an_encrypted_or_mismatched_key_is_a_config_error(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    other = ca.issue_cert("127.0.0.1")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "tls.crt"))
    other.private_key_pem.write_to_path(str(tmp_path / "other.key"))
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    (tmp_path / "encrypted.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass")))
    for key_file, reason in (("other.key", "the key does not belong to the certificate"),
                             ("encrypted.key", "the key is encrypted")):
        with pytest.raises(ValueError, match=reason):
            AccessConfig.model_validate({"tls": {"cert_file": str(tmp_path / "tls.crt"),
                                                 "key_file": str(tmp_path / key_file)}})
