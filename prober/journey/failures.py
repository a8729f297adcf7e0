"""Map transport exceptions to outcomes and short, secret-free error strings.

aiohttp's exceptions, and how they are classified::

    asyncio.TimeoutError, ServerTimeoutError ........................ timeout
    ClientError
     ├── ClientConnectionError
     │    ├── ClientConnectorError
     │    │    ├── ClientConnectorDNSError (or a socket.gaierror inside) dns
     │    │    ├── ClientConnectorCertificateError ................ tls
     │    │    ├── ClientConnectorSSLError ........................ tls
     │    │    └── (refused, unreachable, reset) .................. connect
     │    ├── ClientSSLError ...................................... tls
     │    ├── ServerDisconnectedError, ClientOSError .............. connect
     │    └── ServerTimeoutError .................................. timeout
     ├── ClientResponseError, ClientPayloadError, TooManyRedirects  error
     └── SecretRedirectRefused (ours, see redirects.py) ............. error
    BodyTooLarge (the body passed the step's max_body) ................ error
    ReportableError (the prober's own request preparation failed:
                     a signing key unreadable at run time) ............ error

The parser's own exception hangs on the ``__cause__`` chain of ClientResponseError and
ClientPayloadError, and says what was wrong: a header line or too many headers, a body
cut short (fewer bytes than its Content-Length, or a chunked body without its last
chunk), a Content-Encoding that cannot be decoded.

Error strings name the class of failure and the host:port, never the URL (its query may
carry a token), a request body or a header value.
"""

from __future__ import annotations

import asyncio
import socket

import aiohttp
from aiohttp.http_exceptions import (
    BadHttpMessage,
    ContentEncodingError,
    ContentLengthError,
    LineTooLong,
    TransferEncodingError,
)

from prober.journey.errors import ReportableError
from prober.journey.http import MAX_FIELD_SIZE, MAX_HEADERS, BodyTooLarge
from prober.journey.redirects import SecretRedirectRefused
from prober.results import Outcome

__all__ = ["ReportableError", "classify", "status_outcome"]


def classify(exc: BaseException) -> tuple[Outcome, str]:
    """Outcome and a short error string for an exception raised by an exchange."""
    if isinstance(exc, ReportableError):
        return Outcome.ERROR, f"error: {exc}"
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return Outcome.TIMEOUT, "timeout"
    found = _connection_failure(exc) or _answer_failure(exc)
    if found is not None:
        return found
    if isinstance(exc, aiohttp.ClientError):
        return Outcome.ERROR, f"error: {type(exc).__name__}"
    return Outcome.ERROR, f"error: internal {type(exc).__name__}"


def _connection_failure(exc: BaseException) -> tuple[Outcome, str] | None:
    """No exchange at all: TLS, DNS, or the connection refused, reset or closed."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        # OpenSSL's reason ("certificate has expired", "certificate is not yet valid",
        # "unable to get local issuer certificate"…): a fixed text, never the bank's.
        reason = getattr(exc.certificate_error, "verify_message", "") or ""
        return Outcome.TLS, f"tls: certificate verify failed{': ' + reason if reason else ''} ({_where(exc)})"
    if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError):
        return Outcome.TLS, f"tls: handshake failed ({_where(exc)})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
        if isinstance(exc, _DNS_ERRORS) or isinstance(cause, socket.gaierror):
            return Outcome.DNS, f"dns: cannot resolve {exc.host}"
        return Outcome.CONNECT, f"connect: {_reason(cause)} ({_where(exc)})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Outcome.CONNECT, "connect: server closed the connection without answering"
    if isinstance(exc, aiohttp.ClientOSError):
        return Outcome.CONNECT, f"connect: {_reason(exc)}"
    return None


def _answer_failure(exc: BaseException) -> tuple[Outcome, str] | None:
    """An answer the prober cannot use: malformed, cut short, too large, redirected astray."""
    if isinstance(exc, aiohttp.TooManyRedirects):
        return Outcome.ERROR, "error: too many redirects"
    if isinstance(exc, BodyTooLarge):
        return Outcome.ERROR, f"error: {exc}"
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError) and (problem := _parser_problem(exc)):
        return Outcome.ERROR, f"error: {problem}"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return Outcome.ERROR, "error: response body cut short or malformed"
    if isinstance(exc, aiohttp.ClientResponseError):
        return Outcome.ERROR, f"error: malformed HTTP response ({exc.status})"
    if isinstance(exc, SecretRedirectRefused):
        return Outcome.ERROR, "error: redirect to another origin would re-send a secret in the body"
    return None


_DNS_ERRORS: tuple[type[BaseException], ...] = tuple(
    t for t in (getattr(aiohttp, "ClientConnectorDNSError", None),) if t is not None
)


def _parser_problem(exc: BaseException) -> str | None:
    """What the HTTP parser found wrong, from the exception chain; None when unknown."""
    cause: BaseException | None = exc
    for _ in range(5):
        cause = cause.__cause__ if cause is not None else None
        if cause is None:
            return None
        if isinstance(cause, LineTooLong):
            return f"response status or header line over {MAX_FIELD_SIZE} bytes"
        if isinstance(cause, ContentLengthError | TransferEncodingError):
            return "body cut short"
        if isinstance(cause, ContentEncodingError):
            return "cannot decode the body's Content-Encoding"
        if isinstance(cause, BadHttpMessage) and "too many headers" in str(cause.message).lower():
            return f"more than {MAX_HEADERS} response headers"
    return None


def _where(exc: aiohttp.ClientConnectorError) -> str:
    return f"{exc.host}:{exc.port}"


def _reason(exc: BaseException | None) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__ if exc is not None else "connection failed"


def status_outcome(status: int) -> Outcome:
    """Outcome of a status code the step does not accept."""
    return Outcome.AUTH if status in (401, 403) else Outcome.HTTP_STATUS
