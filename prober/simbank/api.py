"""Business routes of the simulated bank, one capability each.

:data:`ROUTES` is the single table of routes: method, path, capability, handler name.
Handlers take ``(request, fault)``; ``fault`` is only ever a content-level fault
(``wrong_data`` or ``reject``), the transport-level ones are applied by
:func:`prober.simbank.faults.guard` before the handler runs.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from .faults import Fault
from .state import BankState, Card

ROUTES: tuple[tuple[str, str, str, str], ...] = (
    ("POST", "/oauth/token", "login", "oauth_token"),
    ("POST", "/login", "login", "login"),
    ("GET", "/me", "login", "me"),
    ("GET", "/accounts", "accounts", "list_accounts"),
    ("GET", "/accounts/{account_id}/balances", "accounts", "balances"),
    ("POST", "/payments", "transfer", "create_payment"),
    ("GET", "/payments/{payment_id}", "transfer", "get_payment"),
    ("GET", "/cards", "cards", "list_cards"),
    ("GET", "/cards/{card_id}", "cards", "get_card"),
    ("POST", "/cards/{card_id}/freeze", "cards", "freeze_card"),
    ("POST", "/cards/{card_id}/unfreeze", "cards", "unfreeze_card"),
    ("GET", "/cards/{card_id}/limits", "cards", "get_limits"),
    ("PUT", "/cards/{card_id}/limits", "cards", "put_limits"),
    ("POST", "/funds-confirmations", "payments", "funds_confirmation"),
    ("POST", "/card-authorisations", "payments", "card_authorisation"),
)
"""``(method, path, capability, handler attribute of BankApi)`` for every business route."""

ZERO = "0.00"


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


_UNAUTHORIZED_TOKEN = {"error": "invalid_token"}


class BadRequest(Exception):
    """A malformed request body; the message is returned with status 400."""


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def _money(body: dict[str, Any], name: str) -> tuple[str, str]:
    value = body.get(name)
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("amount"), str)
        or not isinstance(value.get("currency"), str)
    ):
        raise BadRequest(f'{name} must be {{"amount": "<decimal string>", "currency": "<ISO code>"}}')
    try:
        float(value["amount"])
    except ValueError:
        raise BadRequest(f"{name}.amount must be a decimal string") from None
    return value["amount"], value["currency"]


def _amount(amount: str, currency: str) -> dict[str, str]:
    return {"amount": amount, "currency": currency}


class BankApi:
    """Handlers of the business routes, over one :class:`BankState`."""

    def __init__(self, state: BankState) -> None:
        self.state = state

    def _bearer(self, request: web.Request) -> str | None:
        return self.state.token_subject(request.headers.get("Authorization"))

    # -- login ------------------------------------------------------------------

    async def oauth_token(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """``POST /oauth/token``: OAuth2 password and client_credentials grants."""
        form = await request.post()
        grant = form.get("grant_type")
        state = self.state
        if grant == "password":
            ok = form.get("username") == state.username and form.get("password") == state.password
            subject = state.username
        elif grant == "client_credentials":
            ok = form.get("client_id") == state.client_id and form.get("client_secret") == state.client_secret
            subject = state.client_id
        else:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if not ok:
            return web.json_response({"error": "invalid_grant"}, status=401)
        token = state.issue_token(subject)
        if fault is not None and fault.mode == "wrong_data":
            token = ""
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    async def login(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """``POST /login`` (form or JSON ``username``/``password``): sets the SESSION cookie."""
        if request.content_type == "application/json":
            data: Any = await _json_body(request)
        else:
            data = await request.post()
        state = self.state
        if data.get("username") != state.username or data.get("password") != state.password:
            return _error(401, "invalid credentials")
        response = web.json_response({"status": "ok"})
        if fault is None or fault.mode != "wrong_data":
            response.set_cookie("SESSION", state.open_session(state.username), httponly=True, path="/")
        return response

    async def me(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """``GET /me``: the user of the SESSION cookie."""
        user = self.state.sessions.get(request.cookies.get("SESSION", ""))
        if user is None:
            return _error(401, "not logged in")
        if fault is not None and fault.mode == "wrong_data":
            user = ""
        return web.json_response({"user": user})

    # -- accounts ---------------------------------------------------------------

    async def list_accounts(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """``GET /accounts``."""
        if self._bearer(request) is None:
            return web.json_response(_UNAUTHORIZED_TOKEN, status=401)
        return web.json_response({"accounts": [a.to_json() for a in self.state.accounts.values()]})

    async def balances(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """``GET /accounts/{id}/balances``: CLBD and XPCD; all zero under wrong_data."""
        if self._bearer(request) is None:
            return web.json_response(_UNAUTHORIZED_TOKEN, status=401)
        account = self.state.accounts.get(request.match_info["account_id"])
        if account is None:
            return _error(404, "unknown account")
        wrong = fault is not None and fault.mode == "wrong_data"
        booked = ZERO if wrong else account.booked
        expected = ZERO if wrong else account.expected
        return web.json_response({"balances": [
            {"balanceType": "CLBD", "balanceAmount": _amount(booked, account.currency)},
            {"balanceType": "XPCD", "balanceAmount": _amount(expected, account.currency)},
        ]})

    # -- transfer ---------------------------------------------------------------

    async def create_payment(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """``POST /payments``: idempotent on the ``Idempotency-Key`` header."""
        if self._bearer(request) is None:
            return web.json_response(_UNAUTHORIZED_TOKEN, status=401)
        key = request.headers.get("Idempotency-Key")
        if not key:
            return _error(400, "missing Idempotency-Key")
        try:
            body = await _json_body(request)
            amount, currency = _money(body, "instructedAmount")
        except BadRequest as exc:
            return _error(400, str(exc))
        country = body.get("creditorCountry", "")
        rejected = fault is not None and fault.mode == "reject" and fault.rejects_country(country)
        payment, replayed = self.state.create_payment(key, amount, currency, country, rejected)
        headers = {"Location": f"/payments/{payment.payment_id}"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        shown = ZERO if fault is not None and fault.mode == "wrong_data" else payment.amount
        return web.json_response(
            {
                "paymentId": payment.payment_id,
                # A new payment is always received first, even one that will be rejected.
                "transactionStatus": payment.status(time.monotonic()) if replayed else "RCVD",
                "instructedAmount": _amount(shown, payment.currency),
            },
            status=201,
            headers=headers,
        )

    async def get_payment(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """``GET /payments/{id}``: RCVD, then ACSC after ``settle_after`` (or RJCT)."""
        if self._bearer(request) is None:
            return web.json_response(_UNAUTHORIZED_TOKEN, status=401)
        payment = self.state.payments.get(request.match_info["payment_id"])
        if payment is None:
            return _error(404, "unknown payment")
        shown = ZERO if fault is not None and fault.mode == "wrong_data" else payment.amount
        return web.json_response({
            "paymentId": payment.payment_id,
            "transactionStatus": payment.status(time.monotonic()),
            "instructedAmount": _amount(shown, payment.currency),
        })

    # -- cards ------------------------------------------------------------------

    async def list_cards(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """``GET /cards``; empty under wrong_data."""
        if self._bearer(request) is None:
            return web.json_response(_UNAUTHORIZED_TOKEN, status=401)
        if fault is not None and fault.mode == "wrong_data":
            return web.json_response({"cards": []})
        return web.json_response({"cards": [c.to_json() for c in self.state.cards.values()]})

    def _card_request(self, request: web.Request) -> web.Response | Card:
        if self._bearer(request) is None:
            return web.json_response(_UNAUTHORIZED_TOKEN, status=401)
        card = self.state.cards.get(request.match_info["card_id"])
        if card is None:
            return _error(404, "unknown card")
        return card

    async def get_card(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """``GET /cards/{id}``; blank PAN and status under wrong_data."""
        card = self._card_request(request)
        if isinstance(card, web.Response):
            return card
        if fault is not None and fault.mode == "wrong_data":
            return web.json_response({"cardId": card.card_id, "maskedPan": "", "status": ""})
        return web.json_response(card.to_json())

    async def _set_status(self, request: web.Request, fault: Fault | None, status: str) -> web.StreamResponse:
        card = self._card_request(request)
        if isinstance(card, web.Response):
            return card
        # wrong_data: answer 200 but do not apply the change, so the status is stale.
        if fault is None or fault.mode != "wrong_data":
            card.status = status
        return web.json_response({"cardId": card.card_id, "status": card.status})

    async def freeze_card(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """``POST /cards/{id}/freeze`` → status FROZEN."""
        return await self._set_status(request, fault, "FROZEN")

    async def unfreeze_card(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """``POST /cards/{id}/unfreeze`` → status ACTIVE."""
        return await self._set_status(request, fault, "ACTIVE")

    async def get_limits(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """``GET /cards/{id}/limits``; zero under wrong_data."""
        card = self._card_request(request)
        if isinstance(card, web.Response):
            return card
        limit = ZERO if fault is not None and fault.mode == "wrong_data" else card.daily_limit
        return web.json_response({"dailyLimit": _amount(limit, card.currency)})

    async def put_limits(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """``PUT /cards/{id}/limits`` with ``{"dailyLimit": {...}}``; not applied under wrong_data."""
        card = self._card_request(request)
        if isinstance(card, web.Response):
            return card
        try:
            amount, currency = _money(await _json_body(request), "dailyLimit")
        except BadRequest as exc:
            return _error(400, str(exc))
        if fault is not None and fault.mode == "wrong_data":
            return web.json_response({"dailyLimit": _amount(ZERO, card.currency)})
        card.daily_limit, card.currency = amount, currency
        return web.json_response({"dailyLimit": _amount(amount, currency)})

    # -- payments (card authorisation / funds confirmation) ----------------------

    async def funds_confirmation(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """``POST /funds-confirmations``: whether the booked balance covers the amount."""
        if self._bearer(request) is None:
            return web.json_response(_UNAUTHORIZED_TOKEN, status=401)
        try:
            body = await _json_body(request)
            amount, _currency = _money(body, "instructedAmount")
        except BadRequest as exc:
            return _error(400, str(exc))
        account_ref = body.get("account")
        iban = account_ref.get("iban") if isinstance(account_ref, dict) else None
        account = self.state.account_by_iban(iban)
        if account is None:
            return _error(404, "unknown account")
        if fault is not None and fault.mode == "wrong_data":
            return web.json_response({"fundsAvailable": False})
        return web.json_response({"fundsAvailable": float(amount) <= float(account.booked)})

    async def card_authorisation(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """``POST /card-authorisations``: APPROVED, or DECLINED with a ``reason``."""
        if self._bearer(request) is None:
            return web.json_response(_UNAUTHORIZED_TOKEN, status=401)
        try:
            body = await _json_body(request)
            amount, currency = _money(body, "amount")
        except BadRequest as exc:
            return _error(400, str(exc))
        card_id = body.get("cardId")
        card = self.state.cards.get(card_id) if isinstance(card_id, str) else None
        if card is None:
            return _error(404, "unknown card")
        reason = None
        if card.status != "ACTIVE":
            reason = "card frozen"
        elif fault is not None and fault.mode == "reject" and fault.rejects_country(body.get("merchantCountry")):
            reason = "declined by issuer"
        elif float(amount) > float(card.daily_limit):
            reason = "daily limit exceeded"
        status = "DECLINED" if reason else "APPROVED"
        shown = ZERO if fault is not None and fault.mode == "wrong_data" else amount
        out: dict[str, Any] = {
            "authorisationId": self.state.record_authorisation(status),
            "status": status,
            "amount": _amount(shown, currency),
        }
        if reason:
            out["reason"] = reason
        return web.json_response(out)
