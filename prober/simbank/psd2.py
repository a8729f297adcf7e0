"""The simulated bank in a PSD2 standard's shape: the routes and bodies of Berlin Group
NextGenPSD2 (``profile="berlin-group"``), STET (``profile="stet"``, under
:data:`STET_BASE`) and UK Open Banking (``profile="uk-open-banking"``, under
:data:`UK_BASE`), over the same accounts, cards and payments as the bank's own routes.

:data:`PROFILE_ROUTES` maps a profile to its table of ``(method, path, capability,
handler attribute of Psd2Api)``; :class:`~prober.simbank.server.BankServer` adds them
behind the same fault guards as its own routes, so faults apply per capability.
Together with a :class:`~prober.simbank.signatures.SignatureProfile` and an
:class:`~prober.simbank.oauth.OAuthServer` this is what the shipped example
``config/berlin-group.toml``, ``config/stet-psd2.toml`` and ``config/uk-open-banking.toml``
run against end to end.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .api import ZERO, BadRequest, _amount, _json_body, _money
from .faults import Fault
from .state import BankState

BERLIN_GROUP = (
    ("GET", "/v1/consents/{consent_id}/status", "accounts", "bg_consent_status"),
    ("GET", "/v1/accounts", "accounts", "bg_accounts"),
    ("GET", "/v1/accounts/{account_id}/balances", "accounts", "bg_balances"),
    ("GET", "/v1/card-accounts", "accounts", "bg_card_accounts"),
    ("GET", "/v1/card-accounts/{account_id}/balances", "accounts", "bg_card_balances"),
    ("POST", "/v1/payments/sepa-credit-transfers", "transfer", "bg_initiate"),
    ("GET", "/v1/payments/sepa-credit-transfers/{payment_id}/status", "transfer", "bg_payment_status"),
    ("POST", "/v1/funds-confirmations", "payments", "bg_funds_confirmation"),
    ("PATCH", "/cards/{card_id}", "cards", "issuer_patch_card"),
)

STET_BASE = "/stet/psd2/v1.6"
STET = (
    ("GET", f"{STET_BASE}/accounts", "accounts", "stet_accounts"),
    ("GET", f"{STET_BASE}/accounts/{{account_id}}/balances", "accounts", "stet_balances"),
    ("POST", f"{STET_BASE}/payment-requests", "transfer", "stet_payment_request"),
    ("GET", f"{STET_BASE}/payment-requests/{{payment_id}}", "transfer", "stet_payment_status"),
    ("POST", f"{STET_BASE}/funds-confirmations", "payments", "stet_funds_confirmation"),
)

UK_BASE = "/open-banking/v4.0"
UK_OPEN_BANKING = (
    ("GET", f"{UK_BASE}/aisp/accounts", "accounts", "uk_accounts"),
    ("GET", f"{UK_BASE}/aisp/accounts/{{account_id}}/balances", "accounts", "uk_balances"),
    ("POST", f"{UK_BASE}/pisp/domestic-payment-consents", "transfer", "uk_stage_consent"),
    ("GET", f"{UK_BASE}/pisp/domestic-payment-consents/{{consent_id}}", "transfer", "uk_read_consent"),
    ("POST", f"{UK_BASE}/pisp/domestic-vrps", "transfer", "uk_vrp"),
    ("GET", f"{UK_BASE}/pisp/domestic-vrps/{{vrp_id}}", "transfer", "uk_vrp_status"),
    ("POST", f"{UK_BASE}/cbpii/funds-confirmations", "payments", "uk_funds_confirmation"),
)
UK_IDENTIFICATION = {"acc-001": "40400412345678", "acc-002": "40400487654321"}
"""Sort code + account number of the bank's accounts in the UK profile."""
UK_STATUS = {"RCVD": "ACSP", "ACSC": "ACSC", "RJCT": "RJCT"}

PROFILE_ROUTES: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "berlin-group": BERLIN_GROUP, "stet": STET, "uk-open-banking": UK_OPEN_BANKING,
}
"""Routes per profile name (``BankServer(profile=...)``)."""


def _tpp_error(status: int, code: str, text: str) -> web.Response:
    """A Berlin Group error body (``tppMessages``)."""
    return web.json_response({"tppMessages": [{"category": "ERROR", "code": code, "text": text}]}, status=status)


class Psd2Api:
    """Handlers of the standards' routes, over one :class:`BankState`."""

    def __init__(self, state: BankState) -> None:
        self.state = state
        self.uk_consents: dict[str, str] = {}

    def _refused(self, request: web.Request, consent: bool = False, request_id: bool = True) -> web.Response | None:
        if self.state.token_subject(request.headers.get("Authorization")) is None:
            return _tpp_error(401, "TOKEN_INVALID", "no valid access token")
        if request_id and not request.headers.get("X-Request-ID"):
            return _tpp_error(400, "FORMAT_ERROR", "X-Request-ID missing")
        if consent and not request.headers.get("Consent-ID"):
            return _tpp_error(400, "FORMAT_ERROR", "Consent-ID missing")
        return None

    async def bg_consent_status(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        if (refused := self._refused(request)) is not None:
            return refused
        status = "expired" if fault is not None and fault.mode == "wrong_data" else "valid"
        return web.json_response({"consentStatus": status})

    async def bg_accounts(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        if (refused := self._refused(request, consent=True)) is not None:
            return refused
        wrong = fault is not None and fault.mode == "wrong_data"
        accounts = [] if wrong else [a.to_json() for a in self.state.accounts.values()]
        return web.json_response({"accounts": accounts})

    async def bg_balances(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        if (refused := self._refused(request, consent=True)) is not None:
            return refused
        account = self.state.accounts.get(request.match_info["account_id"])
        if account is None:
            return _tpp_error(404, "RESOURCE_UNKNOWN", "unknown account")
        wrong = fault is not None and fault.mode == "wrong_data"
        return web.json_response({"balances": [
            {"balanceType": "closingBooked",
             "balanceAmount": _amount(ZERO if wrong else account.booked, account.currency)},
            {"balanceType": "interimAvailable",
             "balanceAmount": _amount(ZERO if wrong else account.expected, account.currency)},
        ]})

    async def bg_card_accounts(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        if (refused := self._refused(request, consent=True)) is not None:
            return refused
        cards = [] if fault is not None and fault.mode == "wrong_data" else self.state.cards.values()
        return web.json_response({"cardAccounts": [
            {"resourceId": c.card_id, "maskedPan": c.masked_pan, "currency": c.currency,
             "status": "enabled" if c.status == "ACTIVE" else "blocked"} for c in cards
        ]})

    async def bg_card_balances(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        if (refused := self._refused(request, consent=True)) is not None:
            return refused
        card = self.state.cards.get(request.match_info["account_id"])
        if card is None:
            return _tpp_error(404, "RESOURCE_UNKNOWN", "unknown card account")
        limit = ZERO if fault is not None and fault.mode == "wrong_data" else card.daily_limit
        return web.json_response({"balances": [
            {"balanceType": "interimAvailable", "balanceAmount": _amount(limit, card.currency)},
        ]})

    async def bg_initiate(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """A SEPA credit transfer; X-Request-ID identifies it (a repeat is not a new payment)."""
        if (refused := self._refused(request)) is not None:
            return refused
        try:
            body = await _json_body(request)
            amount, currency = _money(body, "instructedAmount")
        except BadRequest as exc:
            return _tpp_error(400, "FORMAT_ERROR", str(exc))
        creditor = body.get("creditorAccount")
        iban = creditor.get("iban") if isinstance(creditor, dict) else None
        if not isinstance(iban, str) or len(iban) < 4:
            return _tpp_error(400, "FORMAT_ERROR", "creditorAccount.iban missing")
        country = iban[:2]
        rejected = fault is not None and fault.mode == "reject" and fault.rejects_country(country)
        payment, _replayed = self.state.create_payment(request.headers["X-Request-ID"], amount, currency, country,
                                                       rejected)
        return web.json_response(
            {"transactionStatus": "RCVD", "paymentId": payment.payment_id,
             "_links": {"status": {"href": f"/v1/payments/sepa-credit-transfers/{payment.payment_id}/status"}}},
            status=201,
        )

    async def bg_payment_status(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        if (refused := self._refused(request)) is not None:
            return refused
        payment = self.state.payments.get(request.match_info["payment_id"])
        if payment is None:
            return _tpp_error(404, "RESOURCE_UNKNOWN", "unknown payment")
        return web.json_response({"transactionStatus": payment.status(time.monotonic())})

    async def stet_accounts(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        if (refused := self._refused(request)) is not None:
            return refused
        accounts = [] if fault is not None and fault.mode == "wrong_data" else self.state.accounts.values()
        return web.json_response({"accounts": [
            {"resourceId": a.resource_id, "accountId": {"iban": a.iban, "currency": a.currency}, "name": a.name,
             "cashAccountType": a.cash_account_type, "usage": "PRIV"} for a in accounts
        ]})

    async def stet_balances(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        if (refused := self._refused(request)) is not None:
            return refused
        account = self.state.accounts.get(request.match_info["account_id"])
        if account is None:
            return _tpp_error(404, "RESOURCE_UNKNOWN", "unknown account")
        wrong = fault is not None and fault.mode == "wrong_data"
        return web.json_response({"balances": [
            {"name": "closing", "balanceType": "CLBD",
             "balanceAmount": _amount(ZERO if wrong else account.booked, account.currency)},
            {"name": "expected", "balanceType": "XPCD",
             "balanceAmount": _amount(ZERO if wrong else account.expected, account.currency)},
        ]})

    async def stet_payment_request(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """A payment request (PISP); 201 with its Location, identified by X-Request-ID."""
        if (refused := self._refused(request)) is not None:
            return refused
        try:
            body = await _json_body(request)
            transactions = body.get("creditTransferTransaction")
            if not isinstance(transactions, list) or len(transactions) != 1 or not isinstance(transactions[0], dict):
                raise BadRequest("creditTransferTransaction must hold one transaction")
            amount, currency = _money(transactions[0], "instructedAmount")
        except BadRequest as exc:
            return _tpp_error(400, "FORMAT_ERROR", str(exc))
        beneficiary = body.get("beneficiary")
        creditor = beneficiary.get("creditorAccount") if isinstance(beneficiary, dict) else None
        iban = creditor.get("iban") if isinstance(creditor, dict) else None
        if not isinstance(iban, str) or len(iban) < 4:
            return _tpp_error(400, "FORMAT_ERROR", "beneficiary.creditorAccount.iban missing")
        rejected = fault is not None and fault.mode == "reject" and fault.rejects_country(iban[:2])
        payment, _ = self.state.create_payment(request.headers["X-Request-ID"], amount, currency, iban[:2], rejected)
        location = f"{STET_BASE}/payment-requests/{payment.payment_id}"
        return web.json_response({"appliedAuthenticationApproach": "REDIRECT"}, status=201,
                                 headers={"Location": location})

    async def stet_payment_status(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        if (refused := self._refused(request)) is not None:
            return refused
        payment = self.state.payments.get(request.match_info["payment_id"])
        if payment is None:
            return _tpp_error(404, "RESOURCE_UNKNOWN", "unknown payment request")
        return web.json_response({"paymentRequest": {
            "resourceId": payment.payment_id, "paymentInformationStatus": payment.status(time.monotonic()),
        }})

    async def stet_funds_confirmation(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        covered = await self._funds(request, fault, "accountId")
        return covered if isinstance(covered, web.Response) else web.json_response({"result": covered})

    async def bg_funds_confirmation(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        covered = await self._funds(request, fault, "account")
        return covered if isinstance(covered, web.Response) else web.json_response({"fundsAvailable": covered})

    async def _funds(self, request: web.Request, fault: Fault | None, account_field: str) -> web.Response | bool:
        """Whether the booked balance of the account named in ``account_field`` covers
        ``instructedAmount`` (false under wrong_data), or the error response."""
        if (refused := self._refused(request)) is not None:
            return refused
        try:
            body = await _json_body(request)
            amount, _currency = _money(body, "instructedAmount")
        except BadRequest as exc:
            return _tpp_error(400, "FORMAT_ERROR", str(exc))
        reference: Any = body.get(account_field)
        account = self.state.account_by_iban(reference.get("iban") if isinstance(reference, dict) else None)
        if account is None:
            return _tpp_error(404, "RESOURCE_UNKNOWN", "unknown account")
        return (fault is None or fault.mode != "wrong_data") and float(amount) <= float(account.booked)

    # -- UK Open Banking --------------------------------------------------------

    async def _uk_body(self, request: web.Request, idempotent: bool = False) -> web.Response | dict[str, Any]:
        if (refused := self._refused(request, request_id=False)) is not None:
            return refused
        if idempotent and not request.headers.get("x-idempotency-key"):
            return _tpp_error(400, "UK.OBIE.Header.Missing", "x-idempotency-key missing")
        try:
            body = await _json_body(request)
        except BadRequest as exc:
            return _tpp_error(400, "UK.OBIE.Field.Invalid", str(exc))
        data = body.get("Data")
        return data if isinstance(data, dict) else _tpp_error(400, "UK.OBIE.Field.Missing", "Data missing")

    async def uk_accounts(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        if (refused := self._refused(request, request_id=False)) is not None:
            return refused
        accounts = [] if fault is not None and fault.mode == "wrong_data" else self.state.accounts.values()
        return web.json_response({"Data": {"Account": [
            {"AccountId": a.resource_id, "Currency": a.currency, "AccountCategory": "Personal",
             "Account": [{"SchemeName": "UK.OBIE.SortCodeAccountNumber",
                          "Identification": UK_IDENTIFICATION.get(a.resource_id, a.iban[-14:]), "Name": a.name}]}
            for a in accounts
        ]}})

    async def uk_balances(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        if (refused := self._refused(request, request_id=False)) is not None:
            return refused
        account = self.state.accounts.get(request.match_info["account_id"])
        if account is None:
            return _tpp_error(404, "UK.OBIE.Resource.NotFound", "unknown account")
        wrong = fault is not None and fault.mode == "wrong_data"
        return web.json_response({"Data": {"Balance": [
            {"AccountId": account.resource_id, "Type": kind, "CreditDebitIndicator": "Credit",
             "Amount": {"Amount": ZERO if wrong else amount, "Currency": account.currency}}
            for kind, amount in (("ITAV", account.expected), ("CLBD", account.booked))
        ]}})

    async def uk_stage_consent(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        data = await self._uk_body(request, idempotent=True)
        if isinstance(data, web.Response):
            return data
        if not isinstance(data.get("Initiation"), dict):
            return _tpp_error(400, "UK.OBIE.Field.Missing", "Data.Initiation missing")
        consent_id = f"pdc-{len(self.uk_consents) + 1:06d}"
        self.uk_consents[consent_id] = "AWAU"
        return web.json_response({"Data": {"ConsentId": consent_id, "Status": "AWAU",
                                           "Initiation": data["Initiation"]}, "Risk": {}}, status=201)

    async def uk_read_consent(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        if (refused := self._refused(request, request_id=False)) is not None:
            return refused
        consent_id = request.match_info["consent_id"]
        if consent_id not in self.uk_consents:
            return _tpp_error(404, "UK.OBIE.Resource.NotFound", "unknown consent")
        return web.json_response({"Data": {"ConsentId": consent_id, "Status": self.uk_consents[consent_id]}})

    async def uk_vrp(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """A sweeping VRP under an authorised consent; x-idempotency-key identifies it."""
        data = await self._uk_body(request, idempotent=True)
        if isinstance(data, web.Response):
            return data
        instruction = data.get("Instruction")
        amount = instruction.get("InstructedAmount") if isinstance(instruction, dict) else None
        if not isinstance(amount, dict) or not isinstance(amount.get("Amount"), str):
            return _tpp_error(400, "UK.OBIE.Field.Missing", "Data.Instruction.InstructedAmount missing")
        rejected = fault is not None and fault.mode == "reject" and fault.rejects_country("GB")
        payment, _ = self.state.create_payment(request.headers["x-idempotency-key"], amount["Amount"],
                                               str(amount.get("Currency", "GBP")), "GB", rejected)
        return web.json_response({"Data": {"DomesticVRPId": payment.payment_id, "ConsentId": data.get("ConsentId"),
                                           "Status": "RCVD"}}, status=201)

    async def uk_vrp_status(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        if (refused := self._refused(request, request_id=False)) is not None:
            return refused
        payment = self.state.payments.get(request.match_info["vrp_id"])
        if payment is None:
            return _tpp_error(404, "UK.OBIE.Resource.NotFound", "unknown payment")
        status = UK_STATUS[payment.status(time.monotonic())]
        return web.json_response({"Data": {"DomesticVRPId": payment.payment_id, "Status": status}})

    async def uk_funds_confirmation(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """Funds confirmation on the consent's account (the bank's first account)."""
        data = await self._uk_body(request)
        if isinstance(data, web.Response):
            return data
        amount = data.get("InstructedAmount")
        if not isinstance(amount, dict) or not isinstance(amount.get("Amount"), str):
            return _tpp_error(400, "UK.OBIE.Field.Missing", "Data.InstructedAmount missing")
        account = next(iter(self.state.accounts.values()))
        available = (fault is None or fault.mode != "wrong_data") and float(amount["Amount"]) <= float(account.booked)
        return web.json_response({"Data": {"FundsConfirmationId": f"fc-{time.monotonic_ns()}",
                                           "ConsentId": data.get("ConsentId"), "FundsAvailable": available}},
                                 status=201)

    async def issuer_patch_card(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        """The issuer's card API: ``PATCH /cards/{id}`` with ``{"status": "BLOCKED"|"ACTIVE"}``."""
        if self.state.token_subject(request.headers.get("Authorization")) is None:
            return web.json_response({"error": "invalid_token"}, status=401)
        card = self.state.cards.get(request.match_info["card_id"])
        if card is None:
            return web.json_response({"error": "unknown card"}, status=404)
        try:
            status = (await _json_body(request)).get("status")
        except BadRequest as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if status not in ("BLOCKED", "ACTIVE"):
            return web.json_response({"error": "status must be BLOCKED or ACTIVE"}, status=400)
        if fault is None or fault.mode != "wrong_data":
            card.status = status
        return web.json_response({"cardId": card.card_id, "status": card.status})
