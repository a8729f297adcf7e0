"""HTTP sessions for journey runs, with per-phase timing.

Timing follows the blackbox_exporter approach: raw ``time.perf_counter()`` timestamps
go into a :class:`PhaseClock`, and durations are computed once the exchange is over
(:meth:`PhaseClock.phases`). The clock of the exchange in progress is found through a
context variable (:func:`bind_clock`), and only three places write to it:

* :class:`TimingResolver` — the name lookup (not called for IP addresses, nor when
  the connector's DNS cache answers: no lookup, no DNS time);
* :class:`TracingConnector` — the TCP handshake, then TLS, of each new connection;
* the runner — when the response headers are in and when the body is.

The connector also reads the server certificate of each new TLS connection, once, from
the handshake it just made (:mod:`prober.journey.tlspeer`), and keeps it beside the
connection: each exchange's clock gets the certificate of the connection it was sent
on (:attr:`PhaseClock.certificate`), so a step reusing a connection
reports the certificate that connection was opened with. Plain-HTTP connections cost
nothing more.

aiohttp's trace hooks could say the same, but they cost on every request (about ten
signals sent, each with its own parameters object, whether anyone listens or not):
~20 µs of CPU per step, for three timestamps.

Each journey run gets its own session (:func:`open_session`): its first request pays for
a fresh connection as a customer's would, later steps of the run may reuse it, and the
cookie jar lives exactly as long as the run.

Answers are bounded: response headers by aiohttp's parser limits (:data:`MAX_FIELD_SIZE`,
:data:`MAX_HEADERS`), bodies by :class:`BodyReader`, which streams the body and stops at
the step's ``max_body``, counted after decompression. It reads with ``readany()`` rather
than ``read()``: ``read()`` without a size lifts aiohttp's cap on how much one compressed
chunk may inflate to at once, so a decompression bomb would be inflated whole, in memory
and on the event loop. With the cap in place each call inflates at most the stream's
buffer limit (256 KiB), and the loop stays free between calls.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import socket
import ssl
import sys
import weakref
from time import perf_counter
from typing import Any

import aiohappyeyeballs
import aiohttp
from aiohttp import ClientConnectorError
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_exceptions import (
    ClientConnectorCertificateError,
    ClientConnectorSSLError,
    cert_errors,
    ssl_errors,
)
from aiohttp.helpers import ceil_timeout
from aiohttp.resolver import ThreadedResolver

from prober.config.types import format_size
from prober.journey.tlspeer import describe_peer
from prober.results import Phases, ServerCertificate

log = logging.getLogger("prober.journey")

MAX_FIELD_SIZE = 8190
"""Longest response status or header line aiohttp accepts, in bytes (its default, and
nginx's); a longer one ends the step with outcome ``error``."""
MAX_HEADERS = 128
"""Most response headers accepted (aiohttp's default)."""


class BodyTooLarge(Exception):
    """The response body grew past the step's ``max_body`` (after decompression)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body over max_body ({format_size(limit)})")
        self.limit = limit


_NO_BODY_STATUSES = frozenset({204, 304})


class BodyReader:
    """Reads one response body, at most ``limit`` bytes after decompression.

    ``received`` counts the (decompressed) bytes read so far, so that a body cut short,
    stopped at the limit or still arriving at the timeout is reported with what came.
    """

    __slots__ = ("limit", "received")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.received = 0

    async def read(self, resp: aiohttp.ClientResponse) -> bytes:
        """The whole body; raises :class:`BodyTooLarge` (and closes the connection)
        as soon as it is known to exceed the limit."""
        declared = resp.content_length
        if (
            declared is not None
            and declared > self.limit
            and resp.headers.get("Content-Encoding", "identity").strip().lower() == "identity"
            and resp.method != "HEAD"
            and resp.status not in _NO_BODY_STATUSES
        ):
            resp.close()
            raise BodyTooLarge(self.limit)
        chunks: list[bytes] = []
        content = resp.content
        while chunk := await content.readany():
            self.received += len(chunk)
            if self.received > self.limit:
                resp.close()
                raise BodyTooLarge(self.limit)
            chunks.append(chunk)
            # readany() returns without suspending while data is buffered, and taking
            # data out inflates the next piece of a compressed body in the same call:
            # without this, a fast or compressed body would be read in one stretch
            # that the event loop cannot interrupt. (A body that has all arrived, the
            # usual small answer, costs no extra turn of the loop.)
            if not content.at_eof():
                await asyncio.sleep(0)
        return b"".join(chunks)


class PhaseClock:
    """Raw timestamps of one HTTP exchange (possibly several hops with redirects)."""

    __slots__ = ("start", "dns_ms", "connect_ms", "tls_ms", "headers", "end", "certificate")

    def __init__(self) -> None:
        self.certificate: ServerCertificate | None = None
        """The server certificate of the connection the (last hop of the) exchange used."""
        self.start = 0.0
        self.dns_ms = 0.0
        self.connect_ms = 0.0
        self.tls_ms = 0.0
        self.headers = 0.0
        self.end = 0.0

    def phases(self) -> Phases:
        """Durations in ms; ``ttfb`` takes whatever the other phases leave before the
        headers, so the five always add up to ``end - start``."""
        headers = self.headers or self.end
        before_headers = (headers - self.start) * 1000.0
        ttfb = max(0.0, before_headers - self.dns_ms - self.connect_ms - self.tls_ms)
        return Phases(
            dns_ms=self.dns_ms,
            connect_ms=self.connect_ms,
            tls_ms=self.tls_ms,
            ttfb_ms=ttfb,
            transfer_ms=max(0.0, (self.end - headers) * 1000.0),
        )


_current_clock: contextvars.ContextVar[PhaseClock | None] = contextvars.ContextVar("phase_clock", default=None)


class TimingResolver(AbstractResolver):
    """The system resolver (``getaddrinfo`` in a thread), timed into the current clock."""

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        started = perf_counter()
        result = await self._inner.resolve(host, port, family)
        if (clock := _current_clock.get()) is not None:
            clock.dns_ms += (perf_counter() - started) * 1000.0
        return result

    async def close(self) -> None:
        await self._inner.close()


class TracingConnector(aiohttp.TCPConnector):
    """A TCP connector that times the TCP handshake and, apart from it, TLS.

    It repeats aiohttp's ``_wrap_create_connection`` (connect the socket, then hand it to
    the loop, which runs the TLS handshake) with timestamps around each part: a private
    seam, so ``pyproject.toml`` admits only the aiohttp releases it was checked against,
    and ``tests/test_packaging.py`` fails, naming this class, when the installed aiohttp's
    version of the method differs from the one this copy follows.

    After a TLS handshake it records the server's certificate for the connection, and
    hands it to the clock of each exchange sent on that connection (:meth:`connect`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._certificates: weakref.WeakKeyDictionary[Any, ServerCertificate] = weakref.WeakKeyDictionary()
        """Connection protocol → the certificate its handshake presented (gone with it)."""

    async def connect(self, req: Any, traces: Any, timeout: aiohttp.ClientTimeout) -> Any:
        """A connection for ``req`` (new or reused); the certificate it was opened with
        goes into the current clock, so the exchange reports the certificate of the
        connection its last hop used."""
        connection = await super().connect(req, traces, timeout)
        if self._certificates and (clock := _current_clock.get()) is not None:
            clock.certificate = self._certificates.get(connection.protocol)
        return connection

    def _remember_certificate(self, connection: tuple[asyncio.Transport, Any], host: str) -> None:
        transport, protocol = connection
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        try:
            certificate = describe_peer(ssl_object, host)
        except Exception as exc:  # noqa: BLE001 - a certificate we cannot read must not cost the request
            log.debug("cannot read the server certificate of %s: %s", host, type(exc).__name__)
            return
        if certificate is not None:
            self._certificates[protocol] = certificate

    async def _wrap_create_connection(
        self,
        *args: Any,
        addr_infos: list[Any],
        req: Any,
        timeout: aiohttp.ClientTimeout,
        client_error: type[Exception] = ClientConnectorError,
        **kwargs: Any,
    ) -> tuple[asyncio.Transport, Any]:
        started = perf_counter()
        try:
            async with ceil_timeout(timeout.sock_connect, ceil_threshold=timeout.ceil_threshold):
                sock = await aiohappyeyeballs.start_connection(
                    addr_infos=addr_infos,
                    local_addr_infos=self._local_addr_infos,
                    happy_eyeballs_delay=self._happy_eyeballs_delay,
                    interleave=self._interleave,
                    loop=self._loop,
                    socket_factory=self._socket_factory,
                )
                # Added to aiohttp's version: the TCP handshake is over; what follows
                # until the loop hands back the transport is the TLS handshake.
                tcp_end = perf_counter()
                if kwargs.get("ssl") and self._ssl_shutdown_timeout and sys.version_info >= (3, 11):
                    kwargs["ssl_shutdown_timeout"] = self._ssl_shutdown_timeout
                connection = await self._loop.create_connection(*args, **kwargs, sock=sock)
                tls_end = perf_counter()
                if kwargs.get("ssl"):  # added: the certificate, read once per connection
                    self._remember_certificate(connection, kwargs.get("server_hostname") or req.host)
                if (clock := _current_clock.get()) is not None:
                    clock.connect_ms += (tcp_end - started) * 1000.0
                    if kwargs.get("ssl"):
                        clock.tls_ms += (tls_end - tcp_end) * 1000.0
                    else:
                        clock.connect_ms += (tls_end - tcp_end) * 1000.0
                return connection
        except cert_errors as exc:
            raise ClientConnectorCertificateError(req.connection_key, exc) from exc
        except ssl_errors as exc:
            raise ClientConnectorSSLError(req.connection_key, exc) from exc
        except OSError as exc:
            if exc.errno is None and isinstance(exc, asyncio.TimeoutError):
                raise
            raise client_error(req.connection_key, exc) from exc


def open_session(ssl_context: ssl.SSLContext | bool) -> aiohttp.ClientSession:
    """A session for one journey run: fresh connections, its own cookie jar, timed.

    Timeouts are enforced by the runner with ``asyncio.timeout`` (one mechanism for
    steps and journeys), so aiohttp's own are off.
    """
    connector = TracingConnector(ssl=ssl_context, limit=0, enable_cleanup_closed=False, resolver=TimingResolver())
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        timeout=aiohttp.ClientTimeout(total=None),
        auto_decompress=True,
        max_line_size=MAX_FIELD_SIZE,
        max_field_size=MAX_FIELD_SIZE,
        max_headers=MAX_HEADERS,
        raise_for_status=False,
    )


def bind_clock(clock: PhaseClock) -> contextvars.Token[PhaseClock | None]:
    """Make ``clock`` the one the connector writes to for the current task."""
    return _current_clock.set(clock)


def unbind_clock(token: contextvars.Token[PhaseClock | None]) -> None:
    _current_clock.reset(token)
