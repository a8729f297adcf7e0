"""In-memory data of the simulated bank: accounts, cards, payments, tokens, counters."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from .faults import CAPABILITIES

# Bounds on what accumulates per request, so a long benchmark cannot exhaust memory:
# the oldest entries (dicts keep insertion order) are dropped first.
MAX_TOKENS = 100_000
MAX_SESSIONS = 100_000
MAX_PAYMENTS = 100_000
MAX_AUTHORISATIONS = 10_000

TOKEN_LIFETIME_S = 3600


@dataclass(slots=True)
class Account:
    """A payment account with its two Berlin Group balances (decimal strings)."""

    resource_id: str
    iban: str
    name: str
    currency: str
    cash_account_type: str
    booked: str
    expected: str

    def to_json(self) -> dict[str, str]:
        return {
            "resourceId": self.resource_id,
            "iban": self.iban,
            "name": self.name,
            "currency": self.currency,
            "cashAccountType": self.cash_account_type,
        }


@dataclass(slots=True)
class Card:
    """A payment card: ``status`` is ``ACTIVE`` or ``FROZEN``."""

    card_id: str
    masked_pan: str
    status: str
    daily_limit: str
    currency: str = "EUR"

    def to_json(self) -> dict[str, str]:
        return {"cardId": self.card_id, "maskedPan": self.masked_pan, "status": self.status}


@dataclass(slots=True)
class Payment:
    """A credit transfer; ``RCVD`` until ``settles_at`` (monotonic), then ``ACSC``.

    A rejected payment (``reject`` fault at creation) reports ``RJCT`` instead.
    """

    payment_id: str
    amount: str
    currency: str
    creditor_country: str
    settles_at: float
    rejected: bool = False

    def status(self, now: float) -> str:
        if self.rejected:
            return "RJCT"
        return "ACSC" if now >= self.settles_at else "RCVD"


def _initial_accounts() -> dict[str, Account]:
    return {
        "acc-001": Account(
            "acc-001", "FR7630006000011234567890189", "Current account", "EUR", "CACC",
            "1523.47", "1498.12",
        ),
        "acc-002": Account(
            "acc-002", "FR5630006000019876543210921", "Savings", "EUR", "SVGS",
            "8200.00", "8200.00",
        ),
    }


def _initial_cards() -> dict[str, Card]:
    # Three test cards: card-001 for the card-management journey (frozen and unfrozen),
    # card-002 for card authorisations, so a freeze never declines a payment probe, and
    # card-003 for the web front's card journey, so the two journeys never meet.
    return {
        "card-001": Card("card-001", "************1234", "ACTIVE", "1000.00"),
        "card-002": Card("card-002", "************5678", "ACTIVE", "1000.00"),
        "card-003": Card("card-003", "************9012", "ACTIVE", "1000.00"),
    }


def _bounded_put(store: dict[str, Any], key: str, value: Any, limit: int) -> None:
    store[key] = value
    if len(store) > limit:
        del store[next(iter(store))]


@dataclass(slots=True)
class BankState:
    """Everything the bank remembers; :meth:`reset` restores the initial data.

    ``username``/``password``/``client_id``/``client_secret`` are the credentials the
    login routes accept. ``settle_after`` is how long (seconds) a transfer stays
    ``RCVD`` before ``ACSC``.
    """

    username: str = "alice"
    password: str = "s3cret-pw"
    client_id: str = "prober"
    client_secret: str = "client-s3cret"
    settle_after: float = 0.2
    accounts: dict[str, Account] = field(default_factory=_initial_accounts)
    cards: dict[str, Card] = field(default_factory=_initial_cards)
    payments: dict[str, Payment] = field(default_factory=dict)
    idempotency: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)
    authorisations: dict[str, str] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CAPABILITIES, 0))
    requests_by_path: dict[str, int] = field(default_factory=dict)
    payments_created: int = 0
    idempotent_replays: int = 0

    def reset(self) -> None:
        """Restore the initial accounts and cards; forget payments, tokens, counters."""
        self.accounts = _initial_accounts()
        self.cards = _initial_cards()
        self.payments.clear()
        self.idempotency.clear()
        self.tokens.clear()
        self.sessions.clear()
        self.authorisations.clear()
        self.requests = dict.fromkeys(CAPABILITIES, 0)
        self.requests_by_path.clear()
        self.payments_created = 0
        self.idempotent_replays = 0

    def count(self, capability: str, route_key: str) -> None:
        """Count one request to ``route_key`` (e.g. ``"POST /payments"``)."""
        self.requests[capability] += 1
        by_path = self.requests_by_path
        by_path[route_key] = by_path.get(route_key, 0) + 1

    # -- credentials ------------------------------------------------------------

    def issue_token(self, subject: str, lifetime_s: float = TOKEN_LIFETIME_S) -> str:
        """A new random bearer token for ``subject``, valid ``lifetime_s``."""
        token = secrets.token_urlsafe(24)
        _bounded_put(self.tokens, token, (subject, time.monotonic() + lifetime_s), MAX_TOKENS)
        return token

    def token_subject(self, authorization: str | None) -> str | None:
        """The subject of a valid ``Authorization: Bearer`` header value, else None."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        entry = self.tokens.get(authorization[7:].strip())
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def open_session(self, user: str) -> str:
        """A new random session id for the cookie login."""
        session = secrets.token_urlsafe(24)
        _bounded_put(self.sessions, session, user, MAX_SESSIONS)
        return session

    # -- payments ---------------------------------------------------------------

    def create_payment(
        self, key: str, amount: str, currency: str, country: str, rejected: bool
    ) -> tuple[Payment, bool]:
        """Create a payment for idempotency ``key``, or return the one already made.

        Returns ``(payment, replayed)``.
        """
        existing = self.idempotency.get(key)
        if existing is not None:
            payment = self.payments.get(existing)
            if payment is not None:
                self.idempotent_replays += 1
                return payment, True
        payment = Payment(
            payment_id=f"pay-{secrets.token_hex(8)}",
            amount=amount,
            currency=currency,
            creditor_country=country,
            settles_at=time.monotonic() + self.settle_after,
            rejected=rejected,
        )
        _bounded_put(self.payments, payment.payment_id, payment, MAX_PAYMENTS)
        _bounded_put(self.idempotency, key, payment.payment_id, MAX_PAYMENTS)
        self.payments_created += 1
        return payment, False

    def record_authorisation(self, status: str) -> str:
        """Remember a card authorisation; returns its id."""
        auth_id = f"auth-{secrets.token_hex(8)}"
        _bounded_put(self.authorisations, auth_id, status, MAX_AUTHORISATIONS)
        return auth_id

    def account_by_iban(self, iban: object) -> Account | None:
        for account in self.accounts.values():
            if account.iban == iban:
                return account
        return None

    def snapshot(self) -> dict[str, Any]:
        """The ``GET /admin/state`` document."""
        return {
            "cards": {card_id: card.status for card_id, card in self.cards.items()},
            "requests": dict(self.requests),
            "payments_created": self.payments_created,
            "idempotent_replays": self.idempotent_replays,
            "requests_by_path": dict(self.requests_by_path),
        }
