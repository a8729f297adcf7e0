"""The simulated bank server: lifecycle (:class:`BankServer`) and ``prober bank`` (:func:`run_bank`)."""

from __future__ import annotations

import asyncio
import signal
import ssl
import sys
from pathlib import Path
from types import TracebackType
from typing import Self

from aiohttp import web

from . import profiles
from .admin import AdminApi
from .api import ROUTES, BankApi
from .faults import Fault, FaultRegistry
from .guard import FaultHandler, guard
from .oauth import OAuthServer, binding_middleware
from .psd2 import PROFILE_ROUTES, Psd2Api
from .scenarios import DEFAULT_TIME_SCALE, Scenario, ScenarioRunner, get_scenario, scenario_named
from .signatures import SignatureProfile, signature_middleware
from .state import BankState
from .tls import bank_certificate
from .web import WEB_ROUTES, WebFront, WebSessions

# In-flight requests get this long to finish at shutdown before they are cancelled.
SHUTDOWN_TIMEOUT_S = 0.5


class BankServer:
    """A real aiohttp server on ``host:port`` (0 = a free port) with fault injection.

    Use as ``async with BankServer(...) as bank:`` or call :meth:`start`/:meth:`stop`.
    ``bank.url`` is the base URL with the real bound port, ``bank.faults`` the
    :class:`~prober.simbank.faults.FaultRegistry`, ``bank.state`` the in-memory
    :class:`~prober.simbank.state.BankState`. ``seed`` makes intermittent failures
    reproducible; ``scenario`` (a name from :data:`PLAYABLE` or a :class:`Scenario`)
    is played from start-up with ``time_scale`` real seconds per simulated second.
    With ``ssl_context`` the bank serves HTTPS; with ``signatures`` it refuses business
    requests not signed as that PSD2 profile requires (401, reason in the body); with
    ``oauth`` the token endpoint authenticates PSD2 clients (private_key_jwt, mTLS) and
    rotates refresh tokens; with ``profile`` (a key of
    :data:`~prober.simbank.psd2.PROFILE_ROUTES`) it also serves that standard's routes.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        username: str = "alice",
        password: str = "s3cret-pw",
        client_secret: str = "client-s3cret",
        seed: int | None = None,
        settle_after: float = 0.2,
        scenario: str | Scenario | None = None,
        time_scale: float = DEFAULT_TIME_SCALE,
        ssl_context: ssl.SSLContext | None = None,
        signatures: SignatureProfile | None = None,
        oauth: OAuthServer | None = None,
        profile: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.seed = seed
        self.ssl_context = ssl_context
        self.signatures = signatures
        self.oauth = oauth
        if profile is not None and profile not in PROFILE_ROUTES:
            raise ValueError(f"unknown bank profile {profile!r}; known: {', '.join(PROFILE_ROUTES)}")
        self.profile = profile
        self.state = BankState(
            username=username, password=password, client_secret=client_secret, settle_after=settle_after
        )
        self.faults = FaultRegistry(seed=seed)
        self.web_sessions = WebSessions()
        """The web front's sessions and CSRF tokens (:mod:`prober.simbank.web`)."""
        resolved = get_scenario(scenario) if isinstance(scenario, str) else scenario
        self.scenario: ScenarioRunner | None = (
            ScenarioRunner(resolved, self.faults, time_scale) if resolved is not None else None
        )
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234`` (``https://`` with an SSL context)."""
        scheme = "https" if self.ssl_context is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def make_app(self) -> web.Application:
        """Build the aiohttp application: business routes behind fault guards, admin routes."""
        assert self._stopping is not None
        middlewares = [signature_middleware(self.signatures)] if self.signatures is not None else []
        if self.oauth is not None:
            middlewares.append(binding_middleware(self.oauth))
        app = web.Application(middlewares=middlewares)
        tables = ((BankApi(self.state), ROUTES), (Psd2Api(self.state), PROFILE_ROUTES.get(self.profile or "", ())))
        token = _token_endpoint(self.oauth, self.state) if self.oauth is not None else None
        for api, routes in tables:
            for method, path, capability, name in routes:
                target = getattr(api, name)
                if path == "/oauth/token" and token is not None:
                    target = token
                handler = guard(
                    capability, f"{method} {path}", target, self.faults,
                    self.state.count, self._stopping,
                )
                app.router.add_route(method, path, handler)
        front = WebFront(self.state, self.web_sessions)
        for method, path, capability, name in WEB_ROUTES:
            handler = guard(capability, f"{method} {path}", getattr(front, name), self.faults, self.state.count,
                            self._stopping, web_page=True)
            app.router.add_route(method, path, handler)
        AdminApi(self.state, self.faults, lambda: self.scenario, self.reset).add_routes(app)
        app.router.add_get("/healthz", _healthz)
        return app

    async def start(self) -> None:
        """Bind and serve; raises ``OSError`` if the address cannot be bound."""
        self._stopping = asyncio.Event()
        runner = web.AppRunner(
            self.make_app(),
            access_log=None,
            handler_cancellation=True,  # a client that goes away ends its hung request
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl_context)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        if self.scenario is not None:
            self.scenario.start()

    async def stop(self) -> None:
        """Stop the scenario, drop hung requests, close every connection."""
        if self._stopping is not None:
            self._stopping.set()
        if self.scenario is not None:
            await self.scenario.stop()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def reset(self) -> None:
        """Restore the initial data, clear faults and counters, restart the scenario."""
        self.state.reset()
        self.web_sessions.clear()
        self.faults.clear()
        self.faults.reseed()
        if self.scenario is not None and self._runner is not None:
            self.scenario.start()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def run_bank(
    host: str,
    port: int,
    scenario: str | None = None,
    seed: int | None = None,
    *,
    time_scale: float = DEFAULT_TIME_SCALE,
    profile: str | None = None,
    keys_dir: str | None = None,
    tls_cert_days: float | None = None,
    tls_dir: str = "var/bank-tls",
) -> int:
    """Serve the simulated bank until SIGINT/SIGTERM (``prober bank``).

    Prints the URL and scenario on one line. With ``profile`` (and ``keys_dir``, where
    the TPP's keys and the example's env file go) the bank speaks that PSD2 standard,
    see :mod:`prober.simbank.profiles`. With ``tls_cert_days`` it serves HTTPS with a
    certificate expiring in that many days (:mod:`prober.simbank.tls`), its test CA in
    ``tls_dir``. Returns 0 after a clean stop, 2 on an unknown scenario or profile or an
    address that cannot be bound (message on stderr).
    """
    if profile is not None and (profile not in PROFILE_ROUTES or keys_dir is None):
        print(f"prober bank: --profile needs --keys DIR and one of {', '.join(PROFILE_ROUTES)}", file=sys.stderr)
        return 2
    try:
        played = scenario_named(scenario)
    except ValueError as exc:
        print(f"prober bank: {exc}", file=sys.stderr)
        return 2
    psd2 = profiles.setup(profile, Path(keys_dir)) if profile is not None and keys_dir is not None else None
    https: tuple[ssl.SSLContext, Path, str] | None = None
    if tls_cert_days is not None:
        try:
            https = https_context(tls_cert_days, Path(tls_dir))
        except OSError as exc:
            print(f"prober bank: cannot write the test certificate into {tls_dir}: {exc.strerror or exc}",
                  file=sys.stderr)
            return 2
    return asyncio.run(_serve(host, port, played, seed, time_scale, psd2, https))


def https_context(days: float, directory: Path) -> tuple[ssl.SSLContext, Path, str]:
    """A server context with a certificate expiring in ``days`` days, the file of its test
    CA (for ``[sites.tls] ca_file``), and one line saying both."""
    certificate = bank_certificate(days)
    context = certificate.server_context(directory)
    ca_file = certificate.write_ca(directory)
    when = certificate.not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    state = f"expires {when}, in {days:g} days" if days > 0 else f"expired {when}, {-days:g} days ago"
    return context, ca_file, f"HTTPS with a certificate that {state}; its test CA: {ca_file} (for [sites.tls] ca_file)"


async def _serve(
    host: str, port: int, scenario: Scenario | None, seed: int | None, time_scale: float,
    psd2: profiles.ProfileSetup | None = None, https: tuple[ssl.SSLContext, Path, str] | None = None,
) -> int:
    bank = BankServer(host, port, seed=seed, scenario=scenario, time_scale=time_scale,
                      profile=psd2.profile if psd2 else None, signatures=psd2.signatures if psd2 else None,
                      oauth=psd2.oauth if psd2 else None, ssl_context=https[0] if https else None)
    try:
        await bank.start()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(f"prober bank: cannot listen on {host}:{port}: {reason}", file=sys.stderr)
        return 2
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        print(f"bank listening on {bank.url} (scenario: {scenario.name if scenario else 'none'})", flush=True)
        if https is not None:
            print(https[2], flush=True)
        if psd2 is not None:
            env_file = psd2.write_env(bank.url)
            print(f"{psd2.profile} profile: keys in {psd2.directory}, environment for the example in {env_file}",
                  flush=True)
        await stop.wait()
    finally:
        # Restore default handlers first so a second Ctrl-C forces the exit.
        for sig in signals:
            loop.remove_signal_handler(sig)
        await bank.stop()
    return 0


def _token_endpoint(oauth: OAuthServer, state: BankState) -> FaultHandler:
    """``POST /oauth/token`` of ``oauth`` on the bank's ``state``, as the fault guard calls a route."""

    async def token(request: web.Request, fault: Fault | None) -> web.StreamResponse:
        return await oauth.token(request, state, fault)

    return token
