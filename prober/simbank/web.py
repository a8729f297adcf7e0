"""The simulated bank's web front: the pages a customer uses, for browser checks.

* ``GET /web/login`` — a server-rendered login form with a CSRF token (single use);
  ``POST /web/login`` checks it and the credentials, opens a web session (cookie
  ``WEBSESSION``, HttpOnly) holding an API token, and redirects to the accounts.
* ``GET /web/accounts`` — a page whose script keeps the session's API token in
  ``sessionStorage`` and fetches the accounts and their balances from the JSON API
  (``/accounts``, ``/accounts/{id}/balances`` with ``Authorization: Bearer``), then
  renders them: under the accounts' ``wrong_data`` fault the balances render as 0.00.
* ``GET /web/transfer`` — a transfer form whose *Send* button is driven by a script;
  ``POST /web/transfer`` creates the payment (its hidden idempotency key makes a second
  submission of the same form a replay) and redirects to
  ``/web/transfer/{payment_id}``, the confirmation page with the payment's status.
* ``GET /web/cards`` — the cards, each with its status and a *Freeze* and an *Unfreeze*
  button (``POST /web/cards/{card_id}/freeze`` and ``/unfreeze``, back to the list;
  freezing a frozen card changes nothing, so a cleanup step can always unfreeze).

Every page belongs to a capability and is behind the same fault switches as the API
(:func:`~prober.simbank.faults.guard`), plus the web-only faults: ``blank`` (200 and an
empty page), ``script_error`` (the transfer button's script throws; on the other pages,
their script throws as they load), ``slow_render`` (the main content paints
``delay_ms`` late, default 3 s: the Largest Contentful Paint).
"""

from __future__ import annotations

import html
import json
import secrets
from dataclasses import dataclass, field
from typing import NoReturn

from aiohttp import web

from .faults import Fault
from .state import MAX_SESSIONS, BankState, _bounded_put

WEB_ROUTES: tuple[tuple[str, str, str, str], ...] = (
    ("GET", "/web/login", "login", "login_page"),
    ("POST", "/web/login", "login", "login"),
    ("GET", "/web/accounts", "accounts", "accounts_page"),
    ("GET", "/web/transfer", "transfer", "transfer_page"),
    ("POST", "/web/transfer", "transfer", "transfer"),
    ("GET", "/web/transfer/{payment_id}", "transfer", "confirmation_page"),
    ("GET", "/web/cards", "cards", "cards_page"),
    ("POST", "/web/cards/{card_id}/freeze", "cards", "freeze_card"),
    ("POST", "/web/cards/{card_id}/unfreeze", "cards", "unfreeze_card"),
)
"""``(method, path, capability, handler attribute of WebFront)`` of every page."""

SESSION_COOKIE = "WEBSESSION"

_STYLE = """body{font:16px/1.4 system-ui,sans-serif;margin:0;color:#1f2328}header{background:#0b3d91;color:#fff;
padding:12px 24px}header a{color:#fff;margin-right:16px}main{padding:24px;max-width:720px}table{border-collapse:
collapse;width:100%}td,th{padding:8px;border-bottom:1px solid #ddd;text-align:left}.amount{text-align:right;
font-variant-numeric:tabular-nums}label{display:block;margin:12px 0 4px}input,select{font:inherit;padding:6px;
width:100%;box-sizing:border-box}button{font:inherit;margin-top:16px;padding:8px 16px}.error{color:#b00020}
.hero{font-size:32px;margin:16px 0}"""


def money(amount: str, currency: str) -> str:
    """``1523.47`` → ``1,523.47 EUR``."""
    return f"{float(amount):,.2f} {currency}"


@dataclass(slots=True)
class WebSessions:
    """Web sessions (id → user and API token) and outstanding CSRF tokens."""

    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)
    csrf: dict[str, str] = field(default_factory=dict)
    """CSRF token → the session it belongs to (``""`` before login)."""

    def issue_csrf(self, session: str = "") -> str:
        token = secrets.token_urlsafe(16)
        _bounded_put(self.csrf, token, session, MAX_SESSIONS)
        return token

    def spend_csrf(self, token: object, session: str = "") -> bool:
        """Whether ``token`` was issued for ``session`` (a token serves once)."""
        return isinstance(token, str) and self.csrf.pop(token, None) == session

    def clear(self) -> None:
        self.sessions.clear()
        self.csrf.clear()


def _page(title: str, body: str, fault: Fault | None, *, script: str = "", nav: bool = True) -> web.Response:
    """A whole page. ``slow_render`` hides the main content until ``delay_ms`` after
    load; ``script_error`` makes the page's own script throw (the transfer page's button
    handles it itself)."""
    menu = ('<header><a href="/web/accounts">Accounts</a><a href="/web/transfer">Transfer</a>'
            '<a href="/web/cards">Cards</a></header>') if nav else "<header>Simulated bank</header>"
    hidden = " hidden" if fault is not None and fault.mode == "slow_render" else ""
    reveal = ""
    if hidden:
        reveal = (f"<script>setTimeout(() => {{ document.getElementById('main').hidden = false; }}, "
                  f"{int(fault.delay_ms if fault else 0)});</script>")
    text = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<meta name=viewport content='width=device-width'><style>{_STYLE}</style></head><body>{menu}"
            f"<main id=main{hidden}>{body}</main>{reveal}{script}</body></html>")
    return web.Response(text=text, content_type="text/html", headers={"Cache-Control": "no-store"})


def _throws(fault: Fault | None) -> bool:
    return fault is not None and fault.mode == "script_error"


class WebFront:
    """Handlers of the web pages, over the bank's :class:`BankState`."""

    def __init__(self, state: BankState, web_sessions: WebSessions) -> None:
        self.state = state
        self.web = web_sessions

    def _session(self, request: web.Request) -> tuple[str, str, str] | None:
        """``(session id, user, API token)`` of the request's web session."""
        sid = request.cookies.get(SESSION_COOKIE, "")
        found = self.web.sessions.get(sid)
        return (sid, *found) if found is not None else None

    @staticmethod
    def _to_login() -> NoReturn:
        raise web.HTTPSeeOther("/web/login")

    # -- login ------------------------------------------------------------------
    async def login_page(self, request: web.Request, fault: Fault | None, error: str = "") -> web.StreamResponse:
        csrf = self.web.issue_csrf()
        message = f'<p class=error id=login-error>{html.escape(error)}</p>' if error else ""
        body = (f"<h1>Sign in</h1>{message}<form method=post action=/web/login id=login-form>"
                f'<input type=hidden name=csrf value="{csrf}">'
                "<label for=username>Customer ID</label><input id=username name=username autocomplete=username>"
                "<label for=password>Password</label>"
                "<input id=password name=password type=password autocomplete=current-password>"
                "<button type=submit id=sign-in>Sign in</button></form>")
        script = "<script>null.focus();</script>" if _throws(fault) else ""
        response = _page("Sign in", body, fault, script=script, nav=False)
        if error:
            response.set_status(401)
        return response

    async def login(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        form = await request.post()
        if not self.web.spend_csrf(form.get("csrf")):
            return web.Response(status=403, text="<h1>Session expired</h1><p>Invalid or reused form token.</p>",
                                content_type="text/html")
        state = self.state
        if form.get("username") != state.username or form.get("password") != state.password:
            return await self.login_page(request, fault, "Wrong customer ID or password.")
        sid = secrets.token_urlsafe(24)
        _bounded_put(self.web.sessions, sid, (state.username, state.issue_token(state.username)), MAX_SESSIONS)
        response = web.HTTPSeeOther("/web/accounts")
        response.set_cookie(SESSION_COOKIE, sid, httponly=True, path="/web", samesite="Lax")
        raise response

    # -- accounts ---------------------------------------------------------------
    async def accounts_page(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        session = self._session(request)
        if session is None:
            self._to_login()
        _sid, user, token = session
        body = (f"<h1>Your accounts</h1><p>Welcome, <span id=holder>{html.escape(user)}</span>.</p>"
                "<p id=loading>Loading your balances…</p><table id=accounts hidden><thead><tr><th>Account</th>"
                "<th>IBAN</th><th class=amount>Balance</th></tr></thead><tbody></tbody></table>"
                "<p class=hero>Total: <span id=total>…</span></p>")
        script = ("<script>sessionStorage.setItem('api_token', " + json.dumps(token) + ");" + _ACCOUNTS_SCRIPT
                  + ("null.render();" if _throws(fault) else "") + "</script>")
        return _page("Accounts", body, fault, script=script)

    # -- transfer ---------------------------------------------------------------
    async def transfer_page(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        session = self._session(request)
        if session is None:
            self._to_login()
        sid = session[0]
        csrf = self.web.issue_csrf(sid)
        options = "".join(f'<option value="{a.iban}">{html.escape(a.name)} ({a.iban})</option>'
                          for a in self.state.accounts.values())
        body = ("<h1>New transfer</h1><form method=post action=/web/transfer id=transfer-form>"
                f'<input type=hidden name=csrf value="{csrf}">'
                f'<input type=hidden name=idempotency_key value="{secrets.token_hex(12)}">'
                f"<label for=debtor>From</label><select id=debtor name=debtor>{options}</select>"
                "<label for=creditor>To (IBAN)</label><input id=creditor name=creditor>"
                "<label for=creditor-name>Beneficiary</label><input id=creditor-name name=creditor_name>"
                "<label for=amount>Amount (EUR)</label><input id=amount name=amount inputmode=decimal>"
                "<button type=button id=send>Send</button></form>")
        handler = ("document.getElementById('transfer-form').missing.submit();" if _throws(fault)
                   else "document.getElementById('transfer-form').submit();")
        script = ("<script>document.getElementById('send').addEventListener('click', () => {"
                  "const amount = document.getElementById('amount').value;"
                  "if (!/^\\d+(\\.\\d{1,2})?$/.test(amount)) { alert('Enter an amount such as 1.00'); return; }"
                  f"{handler}}});</script>")
        return _page("New transfer", body, fault, script=script)

    async def transfer(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        session = self._session(request)
        if session is None:
            self._to_login()
        form = await request.post()
        if not self.web.spend_csrf(form.get("csrf"), session[0]):
            return web.Response(status=403, text="<h1>Session expired</h1>", content_type="text/html")
        try:
            amount = f"{float(str(form.get('amount', ''))):.2f}"
        except ValueError:
            return web.Response(status=400, text="<h1>Invalid amount</h1>", content_type="text/html")
        key = f"web-{form.get('idempotency_key', '')}"
        rejected = fault is not None and fault.mode == "reject" and fault.rejects_country("FR")
        payment, _replayed = self.state.create_payment(key, amount, "EUR", "FR", rejected)
        raise web.HTTPSeeOther(f"/web/transfer/{payment.payment_id}")

    async def confirmation_page(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        import time

        if self._session(request) is None:
            self._to_login()
        payment = self.state.payments.get(request.match_info["payment_id"])
        if payment is None:
            raise web.HTTPNotFound(text="<h1>No such transfer</h1>", content_type="text/html")
        status = payment.status(time.monotonic())
        words = {"RCVD": "Received", "ACSC": "Completed", "RJCT": "Rejected"}[status]
        shown = "0.00" if fault is not None and fault.mode == "wrong_data" else payment.amount
        body = (f"<h1>Transfer {html.escape(words.lower())}</h1><p class=hero id=confirmation>"
                f"<span id=transfer-status data-status={status}>{words}</span>: "
                f"<span id=transfer-amount>{money(shown, payment.currency)}</span></p>"
                f"<p>Reference <code id=transfer-id>{payment.payment_id}</code></p>")
        return _page("Transfer", body, fault, script="<script>null.x;</script>" if _throws(fault) else "")

    # -- cards ------------------------------------------------------------------
    async def cards_page(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        session = self._session(request)
        if session is None:
            self._to_login()
        sid = session[0]
        rows = []
        for card in self.state.cards.values():
            buttons = "".join(
                f"<form method=post action=/web/cards/{card.card_id}/{action} style='display:inline'>"
                f'<input type=hidden name=csrf value="{self.web.issue_csrf(sid)}">'
                f"<button id={action}-{card.card_id}>{action.capitalize()}</button></form> "
                for action in ("freeze", "unfreeze"))
            rows.append(
                f"<tr><td>{card.masked_pan}</td><td><span class=card-status id=status-{card.card_id}>"
                f"{card.status}</span></td><td>{buttons}</td></tr>")
        body = f"<h1>Your cards</h1><table id=cards><tbody>{''.join(rows)}</tbody></table>"
        return _page("Cards", body, fault, script="<script>null.x;</script>" if _throws(fault) else "")

    async def freeze_card(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        return await self._set_card(request, fault, "FROZEN")

    async def unfreeze_card(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        return await self._set_card(request, fault, "ACTIVE")

    async def _set_card(self, request: web.Request, fault: Fault | None, status: str) -> web.StreamResponse:
        session = self._session(request)
        if session is None:
            self._to_login()
        form = await request.post()
        if not self.web.spend_csrf(form.get("csrf"), session[0]):
            return web.Response(status=403, text="<h1>Session expired</h1>", content_type="text/html")
        card = self.state.cards.get(request.match_info["card_id"])
        if card is None:
            raise web.HTTPNotFound(text="<h1>No such card</h1>", content_type="text/html")
        if fault is None or fault.mode != "wrong_data":  # wrong_data: the change is not applied
            card.status = status
        raise web.HTTPSeeOther("/web/cards")


_ACCOUNTS_SCRIPT = """
(async () => {
  const token = sessionStorage.getItem('api_token');
  const get = async path => {
    const r = await fetch(path, {headers: {Authorization: 'Bearer ' + token}});
    if (!r.ok) throw new Error('HTTP ' + r.status + ' from ' + path);
    return r.json();
  };
  const money = (amount, currency) =>
    Number(amount).toLocaleString('en-US', {minimumFractionDigits: 2, maximumFractionDigits: 2}) + ' ' + currency;
  try {
    const {accounts} = await get('/accounts');
    const body = document.querySelector('#accounts tbody');
    let total = 0, currency = 'EUR';
    for (const a of accounts) {
      const {balances} = await get('/accounts/' + a.resourceId + '/balances');
      const closing = balances.find(b => b.balanceType === 'CLBD').balanceAmount;
      total += Number(closing.amount); currency = closing.currency;
      const row = document.createElement('tr');
      row.innerHTML = '<td></td><td></td><td class="amount balance"></td>';
      row.cells[0].textContent = a.name; row.cells[1].textContent = a.iban;
      row.cells[2].textContent = money(closing.amount, closing.currency);
      row.cells[2].id = 'balance-' + a.resourceId;
      body.appendChild(row);
    }
    document.getElementById('total').textContent = money(total, currency);
    document.getElementById('accounts').hidden = false;
    document.getElementById('loading').remove();
  } catch (e) {
    document.getElementById('loading').textContent = 'Your balances cannot be shown right now.';
    throw e;
  }
})();
"""
