"""Typed results of a journey run: journey → steps → phases.

These types are the only thing the writer, the incident tracker, the live status and the
CLI see of a run; none of them needs to know about HTTP. The module imports nothing of
the project, so every package can share it without importing another's behaviour.

Results are immutable once produced (frozen dataclasses): the runner builds each one
whole, or derives a new one with :func:`dataclasses.replace`, and every consumer sees
the same values.

Outcomes form one closed set (:class:`Outcome`). The journey's outcome is the outcome of
its first failed step (a failed cleanup step fails the journey too, since a card left
frozen is a real problem); ``ok`` when every step passed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal, get_args


class Outcome(enum.StrEnum):
    """Why a step or a journey ended the way it did.

    ========== ============================================================================
    ok          every expectation held
    http_status the server answered with a status code the step does not accept
    auth        the server answered 401 or 403 where the step did not expect it
                (bad credentials, expired consent, refused client or location)
    assertion   the answer arrived with an accepted status but its content was wrong
                (a JSON value, a header, the body, or a value to extract is missing)
    slow        the answer was right but took longer than the step's latency budget;
                for a journey: every step passed but the whole took longer than the
                check's ``max_duration`` (no failed step)
    timeout     no complete answer within the step or journey timeout
    connect     the TCP connection could not be made (refused, reset, unreachable)
    dns         the host name could not be resolved
    tls         TLS handshake or certificate verification failed
    skipped     the step or journey was not run (an earlier step failed, a value it
                needs is missing, or the check is backing off)
    error       anything else: malformed HTTP, a body cut short, over ``max_body`` or
                with an undecodable encoding, oversized headers, an internal error
    ========== ============================================================================
    """

    OK = "ok"
    HTTP_STATUS = "http_status"
    AUTH = "auth"
    ASSERTION = "assertion"
    SLOW = "slow"
    TIMEOUT = "timeout"
    CONNECT = "connect"
    DNS = "dns"
    TLS = "tls"
    SKIPPED = "skipped"
    ERROR = "error"


Kind = Literal["login", "accounts", "transfer", "cards", "payments", "custom"]
"""Bank capabilities a check can exercise; the ``kind`` tag in InfluxDB."""

KINDS: tuple[Kind, ...] = get_args(Kind)

IncidentState = Literal["open", "resolved"]
"""An incident's state, as its points and notifications carry it."""


@dataclass(slots=True, frozen=True)
class Phases:
    """Where the time of one HTTP exchange went, in milliseconds.

    ``dns``, ``connect`` and ``tls`` are zero when the request reused a connection.
    ``ttfb`` runs from the moment the connection was ready (or the request started,
    on a reused connection) to the response headers; ``transfer`` from the headers to
    the last byte of the body. The five add up to the step's duration, give or take
    the few microseconds between trace events.
    """

    dns_ms: float = 0.0
    connect_ms: float = 0.0
    tls_ms: float = 0.0
    ttfb_ms: float = 0.0
    transfer_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.dns_ms + self.connect_ms + self.tls_ms + self.ttfb_ms + self.transfer_ms


@dataclass(slots=True, frozen=True)
class PageMetrics:
    """What a browser step measured of the page, as a customer feels it.

    For a step that loaded a new document (``goto``, or a click that navigated): its
    DOMContentLoaded and load ends (``dcl_ms``, ``load_ms``, from the navigation's
    start; None while not reached) and the Web Vitals Chromium reports for it: First
    Contentful Paint, Largest Contentful Paint (ms from the navigation's start) and the
    Cumulative Layout Shift (a score, not a time). For every browser step: console
    errors, uncaught page errors and sub-requests that failed (4xx/5xx answers, or no
    answer) during the step. The navigation's own timing (DNS, connect, TLS, TTFB,
    transfer) is the step's :class:`Phases`.
    """

    dcl_ms: float | None = None
    load_ms: float | None = None
    fcp_ms: float | None = None
    lcp_ms: float | None = None
    cls: float | None = None
    console_errors: int = 0
    page_errors: int = 0
    failed_requests: int = 0


@dataclass(slots=True, frozen=True)
class ServerCertificate:
    """The certificate a bank's server presented on the TLS connection a step used.

    Read from the handshake the step's connection made (never an extra connection), once
    per connection: steps reusing the connection report the same certificate. Times are
    Unix seconds. ``chain_not_after`` is the earliest expiry of the chain: the verified
    chain (leaf to trust anchor) when the site verifies certificates, the certificates
    the server sent when it does not (``verified`` says which); the leaf's own when the
    interpreter gives no chain.
    """

    host: str
    """The name the connection was made to (the URL's host, or the site's ``server_name``)."""
    subject: str
    issuer: str
    not_before: int
    not_after: int
    chain_not_after: int
    earliest_subject: str
    """Subject of the chain's certificate that expires first (the leaf's, usually)."""
    tls_version: str
    """As the TLS library names it: ``TLSv1.3``, ``TLSv1.2``…"""
    verified: bool
    fingerprint: str = ""
    """SHA-256 of the leaf (hex): tells a renewed certificate from the old one."""

    def expiry_days(self, now_s: float) -> float:
        """Days from ``now_s`` to the leaf's not-after (negative once expired)."""
        return (self.not_after - now_s) / 86_400.0


@dataclass(slots=True, frozen=True)
class StepResult:
    """The result of one executed (or skipped) step."""

    name: str
    outcome: Outcome
    duration_ms: float = 0.0
    phases: Phases | None = None
    http_status: int | None = None
    bytes: int = 0
    error: str = ""
    always_run: bool = False
    attempts: int = 0
    started_at_ns: int = 0
    """Wall-clock start, nanoseconds since the epoch (the InfluxDB timestamp)."""
    reused: bool = False
    """A token step that reused a cached access token: ok, and no request was sent."""
    page: PageMetrics | None = None
    """A browser step's page figures (None for API steps)."""
    certificate: ServerCertificate | None = None
    """The server certificate of the step's TLS connection (None over plain HTTP, or when
    no answer came over TLS)."""

    @property
    def success(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def executed(self) -> bool:
        """True when a request was attempted (skipped steps and reused tokens are
        reported, not executed)."""
        return self.outcome is not Outcome.SKIPPED and not self.reused


@dataclass(slots=True, frozen=True)
class JourneyResult:
    """The result of one run of a check's journey against one site."""

    site: str
    check: str
    kind: Kind
    location: str
    outcome: Outcome
    started_at_ns: int
    duration_ms: float
    steps: tuple[StepResult, ...] = ()
    failed_step: str = ""
    error: str = ""
    run_id: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    """The check's own tags (``tags = { … }`` in the config), sorted by name."""
    trace_id: str = ""
    """The W3C trace id every request of the run carried in ``traceparent`` (empty when
    the site turns it off)."""
    evidence: tuple[str, ...] = ()
    """Files kept as evidence of a failed browser run (a screenshot, a trace), as paths."""

    @property
    def success(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def executed_steps(self) -> list[StepResult]:
        return [s for s in self.steps if s.executed]
