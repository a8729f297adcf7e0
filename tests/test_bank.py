"""The simulated bank over real sockets: every route, every fault mode, admin, scenarios."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from itertools import pairwise
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import trustme

from prober.simbank import SCENARIOS, BankServer, Fault, FaultError, FaultWindow, Scenario, run_bank
from prober.simbank.server import SHUTDOWN_TIMEOUT_S
from tests.daemon_helpers import wait_for

IBAN = "FR7630006000011234567890189"
PAYMENT = {
    "instructedAmount": {"amount": "1.00", "currency": "EUR"},
    "debtorAccount": {"iban": IBAN},
    "creditorAccount": {"iban": "DE89370400440532013000"},
    "creditorName": "Probe Creditor",
    "creditorCountry": "FR",
}


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def token(http: aiohttp.ClientSession, bank: BankServer) -> dict[str, str]:
    async with http.post(
        f"{bank.url}/oauth/token",
        data={"grant_type": "password", "username": "alice", "password": "s3cret-pw"},
    ) as resp:
        assert resp.status == 200
        body = await resp.json()
    return {"Authorization": f"Bearer {body['access_token']}"}


async def call(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any, Any]:
    async with http.request(method, url, **kwargs) as resp:
        return resp.status, await resp.json(), resp.headers


# -- login ---------------------------------------------------------------------------


async def test_oauth_password_and_client_credentials(bank: BankServer, http: aiohttp.ClientSession) -> None:
    status, body, _ = await call(
        http, "POST", f"{bank.url}/oauth/token",
        data={"grant_type": "password", "username": "alice", "password": "s3cret-pw"},
    )
    assert status == 200
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert len(body["access_token"]) >= 20

    status, body, _ = await call(
        http, "POST", f"{bank.url}/oauth/token",
        data={"grant_type": "password", "username": "alice", "password": "nope"},
    )
    assert (status, body) == (401, {"error": "invalid_grant"})

    status, body, _ = await call(
        http, "POST", f"{bank.url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "prober", "client_secret": "client-s3cret"},
    )
    assert status == 200 and body["access_token"]
    status, _, _ = await call(
        http, "POST", f"{bank.url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "prober", "client_secret": "x"},
    )
    assert status == 401


async def test_tokens_are_random(bank: BankServer, http: aiohttp.ClientSession) -> None:
    first = await token(http, bank)
    second = await token(http, bank)
    assert first != second


async def test_cookie_login_and_me(bank: BankServer) -> None:
    # unsafe=True: aiohttp's jar ignores cookies from IP-address hosts otherwise.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        status, _, _ = await call(http, "GET", f"{bank.url}/me")
        assert status == 401
        status, body, headers = await call(
            http, "POST", f"{bank.url}/login", data={"username": "alice", "password": "s3cret-pw"}
        )
        assert (status, body) == (200, {"status": "ok"})
        cookie = headers["Set-Cookie"]
        assert cookie.startswith("SESSION=") and "HttpOnly" in cookie and "Path=/" in cookie
        status, body, _ = await call(http, "GET", f"{bank.url}/me")
        assert (status, body) == (200, {"user": "alice"})
    async with aiohttp.ClientSession() as http:
        status, _, _ = await call(
            http, "POST", f"{bank.url}/login", json={"username": "alice", "password": "s3cret-pw"}
        )
        assert status == 200
        status, _, _ = await call(http, "POST", f"{bank.url}/login", json={"username": "alice", "password": "bad"})
        assert status == 401


async def test_custom_password() -> None:
    async with BankServer(password="other", seed=1) as bank, aiohttp.ClientSession() as http:
        data = {"grant_type": "password", "username": "alice", "password": "other"}
        status, _, _ = await call(http, "POST", f"{bank.url}/oauth/token", data=data)
        assert status == 200


# -- accounts ------------------------------------------------------------------------


async def test_accounts_and_balances(bank: BankServer, http: aiohttp.ClientSession) -> None:
    status, body, _ = await call(http, "GET", f"{bank.url}/accounts")
    assert (status, body) == (401, {"error": "invalid_token"})
    status, _, _ = await call(http, "GET", f"{bank.url}/accounts", headers={"Authorization": "Bearer nope"})
    assert status == 401

    auth = await token(http, bank)
    status, body, _ = await call(http, "GET", f"{bank.url}/accounts", headers=auth)
    assert status == 200
    assert body["accounts"][0] == {
        "resourceId": "acc-001", "iban": IBAN, "name": "Current account",
        "currency": "EUR", "cashAccountType": "CACC",
    }
    assert body["accounts"][1]["resourceId"] == "acc-002" and body["accounts"][1]["name"] == "Savings"

    status, body, _ = await call(http, "GET", f"{bank.url}/accounts/acc-001/balances", headers=auth)
    assert status == 200
    assert body == {"balances": [
        {"balanceType": "CLBD", "balanceAmount": {"amount": "1523.47", "currency": "EUR"}},
        {"balanceType": "XPCD", "balanceAmount": {"amount": "1498.12", "currency": "EUR"}},
    ]}
    status, _, _ = await call(http, "GET", f"{bank.url}/accounts/acc-999/balances", headers=auth)
    assert status == 404


# -- transfer ------------------------------------------------------------------------


async def test_transfer_lifecycle_and_idempotency(bank: BankServer, http: aiohttp.ClientSession) -> None:
    auth = await token(http, bank)
    status, body, _ = await call(http, "POST", f"{bank.url}/payments", headers=auth, json=PAYMENT)
    assert (status, body) == (400, {"error": "missing Idempotency-Key"})

    headers = {**auth, "Idempotency-Key": "k-1"}
    status, created, resp_headers = await call(http, "POST", f"{bank.url}/payments", headers=headers, json=PAYMENT)
    assert status == 201
    assert created["transactionStatus"] == "RCVD"
    assert created["paymentId"].startswith("pay-")
    assert resp_headers["Location"] == f"/payments/{created['paymentId']}"
    assert "Idempotent-Replayed" not in resp_headers

    status, again, resp_headers = await call(http, "POST", f"{bank.url}/payments", headers=headers, json=PAYMENT)
    assert status == 201
    assert again["paymentId"] == created["paymentId"]
    assert resp_headers["Idempotent-Replayed"] == "true"
    assert bank.state.payments_created == 1
    assert bank.state.idempotent_replays == 1

    url = f"{bank.url}{resp_headers['Location']}"
    status, body, _ = await call(http, "GET", url, headers=auth)
    assert status == 200 and body["transactionStatus"] == "RCVD"
    await asyncio.sleep(0.25)  # settle_after defaults to 0.2 s
    status, body, _ = await call(http, "GET", url, headers=auth)
    assert body == {
        "paymentId": created["paymentId"], "transactionStatus": "ACSC",
        "instructedAmount": {"amount": "1.00", "currency": "EUR"},
    }
    status, _, _ = await call(http, "GET", f"{bank.url}/payments/pay-unknown", headers=auth)
    assert status == 404

    status, body, _ = await call(
        http, "POST", f"{bank.url}/payments", headers={**auth, "Idempotency-Key": "k-2"}, json={"x": 1}
    )
    assert status == 400 and "instructedAmount" in body["error"]


# -- cards ---------------------------------------------------------------------------


async def test_cards(bank: BankServer, http: aiohttp.ClientSession) -> None:
    auth = await token(http, bank)
    status, body, _ = await call(http, "GET", f"{bank.url}/cards", headers=auth)
    assert (status, body) == (200, {"cards": [
        {"cardId": "card-001", "maskedPan": "************1234", "status": "ACTIVE"},
        {"cardId": "card-002", "maskedPan": "************5678", "status": "ACTIVE"},
        {"cardId": "card-003", "maskedPan": "************9012", "status": "ACTIVE"},
    ]})
    status, body, _ = await call(http, "GET", f"{bank.url}/cards/card-001", headers=auth)
    assert body["status"] == "ACTIVE"

    status, body, _ = await call(http, "POST", f"{bank.url}/cards/card-001/freeze", headers=auth)
    assert (status, body) == (200, {"cardId": "card-001", "status": "FROZEN"})
    assert bank.state.cards["card-001"].status == "FROZEN"
    status, body, _ = await call(http, "POST", f"{bank.url}/cards/card-001/unfreeze", headers=auth)
    assert (status, body) == (200, {"cardId": "card-001", "status": "ACTIVE"})

    status, body, _ = await call(http, "GET", f"{bank.url}/cards/card-001/limits", headers=auth)
    assert (status, body) == (200, {"dailyLimit": {"amount": "1000.00", "currency": "EUR"}})
    new_limit = {"dailyLimit": {"amount": "250.00", "currency": "EUR"}}
    status, body, _ = await call(http, "PUT", f"{bank.url}/cards/card-001/limits", headers=auth, json=new_limit)
    assert (status, body) == (200, new_limit)
    status, body, _ = await call(http, "GET", f"{bank.url}/cards/card-001/limits", headers=auth)
    assert body == new_limit

    for method, path in (("GET", "/cards/nope"), ("POST", "/cards/nope/freeze"), ("GET", "/cards/nope/limits")):
        status, _, _ = await call(http, method, f"{bank.url}{path}", headers=auth)
        assert status == 404, path
    status, _, _ = await call(http, "GET", f"{bank.url}/cards")
    assert status == 401


# -- payments (card authorisation / funds confirmation) --------------------------------


async def test_funds_confirmation_and_card_authorisation(bank: BankServer, http: aiohttp.ClientSession) -> None:
    auth = await token(http, bank)
    funds = {"account": {"iban": IBAN}, "instructedAmount": {"amount": "10.00", "currency": "EUR"}}
    status, body, _ = await call(http, "POST", f"{bank.url}/funds-confirmations", headers=auth, json=funds)
    assert (status, body) == (200, {"fundsAvailable": True})
    funds["instructedAmount"] = {"amount": "99999.00", "currency": "EUR"}
    status, body, _ = await call(http, "POST", f"{bank.url}/funds-confirmations", headers=auth, json=funds)
    assert (status, body) == (200, {"fundsAvailable": False})

    auth_req = {"cardId": "card-001", "amount": {"amount": "5.00", "currency": "EUR"}, "merchantCountry": "FR"}
    status, body, _ = await call(http, "POST", f"{bank.url}/card-authorisations", headers=auth, json=auth_req)
    assert status == 200 and body["status"] == "APPROVED" and body["authorisationId"]
    assert "reason" not in body

    await call(http, "POST", f"{bank.url}/cards/card-001/freeze", headers=auth)
    status, body, _ = await call(http, "POST", f"{bank.url}/card-authorisations", headers=auth, json=auth_req)
    assert body["status"] == "DECLINED" and body["reason"] == "card frozen"

    status, _, _ = await call(http, "POST", f"{bank.url}/card-authorisations", headers=auth, data="not json")
    assert status == 400


# -- faults --------------------------------------------------------------------------


async def test_down(bank: BankServer, http: aiohttp.ClientSession) -> None:
    auth = await token(http, bank)
    bank.faults.set("transfer", Fault(mode="down"))
    status, body, _ = await call(http, "GET", f"{bank.url}/payments/x", headers=auth)
    assert (status, body) == (503, {"error": "service unavailable"})
    # Other capabilities keep working.
    status, _, _ = await call(http, "GET", f"{bank.url}/accounts", headers=auth)
    assert status == 200
    bank.faults.set("cards", Fault(mode="down", status=502))
    status, _, _ = await call(http, "GET", f"{bank.url}/cards", headers=auth)
    assert status == 502


async def test_slow_delays_time_to_first_byte(bank: BankServer, http: aiohttp.ClientSession) -> None:
    auth = await token(http, bank)
    url = f"{bank.url}/accounts"
    start = time.perf_counter()
    async with http.get(url, headers=auth) as resp:
        baseline = time.perf_counter() - start
        assert resp.status == 200
    bank.faults.set("accounts", Fault(mode="slow", delay_ms=200))
    start = time.perf_counter()
    async with http.get(url, headers=auth) as resp:
        ttfb = time.perf_counter() - start  # headers received
        assert resp.status == 200
        assert (await resp.json())["accounts"]
    assert ttfb >= 0.2
    assert ttfb < 0.2 + baseline + 0.5


async def test_hang_never_answers_and_shutdown_is_quick(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as http:
        bank = BankServer(seed=1)
        await bank.start()
        auth = await token(http, bank)
        bank.faults.set("accounts", Fault(mode="hang"))
        with pytest.raises(asyncio.TimeoutError):
            async with http.get(f"{bank.url}/accounts", headers=auth, timeout=aiohttp.ClientTimeout(total=0.3)):
                pass
        pending = asyncio.ensure_future(http.get(f"{bank.url}/accounts", headers=auth))
        await wait_for(lambda: bank.state.requests["accounts"] == 2, interval=0.01, what="the second request")
        await asyncio.sleep(0.1)
        assert not pending.done()
        start = time.perf_counter()
        await bank.stop()
        # Quick: the hung request is dropped at once, not waited for until the server's
        # shutdown timeout (the race fixed above was the test's own, not this bound).
        assert time.perf_counter() - start < SHUTDOWN_TIMEOUT_S
        with pytest.raises(aiohttp.ClientError):
            await pending
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


async def test_intermittent_rate_is_roughly_right_and_seeded() -> None:
    async def failures(seed: int) -> list[int]:
        async with BankServer(seed=seed) as bank, aiohttp.ClientSession() as http:
            bank.faults.set("login", Fault(mode="intermittent", rate=0.3))
            statuses = []
            for _ in range(200):
                async with http.post(f"{bank.url}/login", data={"username": "alice", "password": "s3cret-pw"}) as resp:
                    statuses.append(resp.status)
            return statuses

    first = await failures(7)
    assert set(first) == {200, 500}
    rate = first.count(500) / len(first)
    assert 0.2 <= rate <= 0.4, rate
    assert await failures(7) == first  # same seed, same sequence


async def test_wrong_data_answers_200_with_zero_balances(bank: BankServer, http: aiohttp.ClientSession) -> None:
    auth = await token(http, bank)
    bank.faults.set("accounts", Fault(mode="wrong_data"))
    status, body, _ = await call(http, "GET", f"{bank.url}/accounts/acc-001/balances", headers=auth)
    assert status == 200
    assert [b["balanceAmount"]["amount"] for b in body["balances"]] == ["0.00", "0.00"]
    status, body, _ = await call(http, "GET", f"{bank.url}/accounts", headers=auth)
    assert status == 200 and len(body["accounts"]) == 2

    bank.faults.set("cards", Fault(mode="wrong_data"))
    status, body, _ = await call(http, "GET", f"{bank.url}/cards", headers=auth)
    assert (status, body) == (200, {"cards": []})
    status, body, _ = await call(http, "GET", f"{bank.url}/cards/card-001/limits", headers=auth)
    assert body["dailyLimit"]["amount"] == "0.00"


async def test_reject_by_country(bank: BankServer, http: aiohttp.ClientSession) -> None:
    auth = await token(http, bank)
    bank.faults.set("transfer", Fault(mode="reject", countries=("DE",)))
    ids = {}
    for country in ("FR", "DE"):
        body = {**PAYMENT, "creditorCountry": country}
        status, created, _ = await call(
            http, "POST", f"{bank.url}/payments", headers={**auth, "Idempotency-Key": country}, json=body
        )
        assert status == 201 and created["transactionStatus"] == "RCVD"
        ids[country] = created["paymentId"]
    await asyncio.sleep(0.25)
    _, fr, _ = await call(http, "GET", f"{bank.url}/payments/{ids['FR']}", headers=auth)
    _, de, _ = await call(http, "GET", f"{bank.url}/payments/{ids['DE']}", headers=auth)
    assert (fr["transactionStatus"], de["transactionStatus"]) == ("ACSC", "RJCT")

    bank.faults.set("payments", Fault(mode="reject", countries=("DE",)))
    req = {"cardId": "card-001", "amount": {"amount": "5.00", "currency": "EUR"}}
    _, fr, _ = await call(http, "POST", f"{bank.url}/card-authorisations", headers=auth,
                          json={**req, "merchantCountry": "FR"})
    _, de, _ = await call(http, "POST", f"{bank.url}/card-authorisations", headers=auth,
                          json={**req, "merchantCountry": "DE"})
    assert fr["status"] == "APPROVED"
    assert de["status"] == "DECLINED" and de["reason"]

    bank.faults.set("payments", Fault(mode="reject"))  # no countries: everyone
    _, fr, _ = await call(http, "POST", f"{bank.url}/card-authorisations", headers=auth,
                          json={**req, "merchantCountry": "FR"})
    assert fr["status"] == "DECLINED"


async def test_refuse_by_header_value(bank: BankServer, http: aiohttp.ClientSession) -> None:
    auth = await token(http, bank)
    bank.faults.set("accounts", Fault(mode="refuse", values=("paris",)))
    status, body, _ = await call(http, "GET", f"{bank.url}/accounts", headers={**auth, "X-Probe-Location": "paris"})
    assert (status, body) == (403, {"error": "access_denied"})
    status, _, _ = await call(http, "GET", f"{bank.url}/accounts", headers={**auth, "X-Probe-Location": "lyon"})
    assert status == 200
    status, _, _ = await call(http, "GET", f"{bank.url}/accounts", headers=auth)
    assert status == 200
    bank.faults.set("accounts", Fault(mode="refuse", header="X-Client", values=()))
    status, _, _ = await call(http, "GET", f"{bank.url}/accounts", headers=auth)
    assert status == 403


async def test_fault_paths_limit_the_routes(bank: BankServer, http: aiohttp.ClientSession) -> None:
    auth = await token(http, bank)
    bank.faults.set("cards", Fault(mode="down", paths=("/cards/card-001/limits",)))
    status, _, _ = await call(http, "GET", f"{bank.url}/cards/card-001/limits", headers=auth)
    assert status == 503
    status, _, _ = await call(http, "GET", f"{bank.url}/cards/card-001", headers=auth)
    assert status == 200


def test_fault_validation() -> None:
    assert Fault(mode="down").status == 503
    assert Fault(mode="intermittent", rate=0.5).status == 500
    with pytest.raises(FaultError, match="unknown fault mode"):
        Fault(mode="explode")
    with pytest.raises(FaultError, match="rate"):
        Fault(mode="intermittent", rate=1.5)
    with pytest.raises(FaultError, match="delay_ms"):
        Fault.from_json({"mode": "down", "delay_ms": 5})
    fault = Fault.from_json({"mode": "reject", "countries": ["DE"], "paths": ["/payments"]})
    assert fault == Fault(mode="reject", countries=("DE",), paths=("/payments",))
    assert Fault.from_json(fault.to_json()) == fault


# -- admin ---------------------------------------------------------------------------


async def test_admin_faults_api(bank: BankServer, http: aiohttp.ClientSession) -> None:
    admin = f"{bank.url}/admin/faults"
    status, body, _ = await call(http, "PUT", f"{admin}/accounts", json={"mode": "slow", "delay_ms": 50})
    assert status == 200
    assert bank.faults.get("accounts") == Fault(mode="slow", delay_ms=50)
    await call(http, "PUT", f"{admin}/login", json={"mode": "down"})
    status, body, _ = await call(http, "GET", admin)
    assert body == {
        "accounts": {"mode": "slow", "delay_ms": 50.0},
        "login": {"mode": "down", "status": 503},
    }
    status, body, _ = await call(http, "DELETE", f"{admin}/accounts")
    assert status == 200 and "accounts" not in body and bank.faults.get("accounts") is None
    status, body, _ = await call(http, "DELETE", admin)
    assert status == 200 and bank.faults.all() == {}


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/admin/faults/mortgages", {"mode": "down"}, "unknown capability"),
        ("/admin/faults/login", {"mode": "explode"}, "unknown fault mode"),
        ("/admin/faults/login", {"mode": "down", "delay": 5}, "unknown field"),
        ("/admin/faults/login", {"mode": "intermittent", "rate": "high"}, "rate"),
        ("/admin/faults/login", {"status": 500}, "mode"),
        ("/admin/faults/login", [1, 2], "JSON object"),
    ],
)
async def test_admin_fault_errors(
    bank: BankServer, http: aiohttp.ClientSession, path: str, body: Any, needle: str
) -> None:
    status, answer, _ = await call(http, "PUT", f"{bank.url}{path}", json=body)
    assert status == 400
    assert needle in answer["error"]
    assert bank.faults.all() == {}


async def test_admin_bad_json_and_unknown_delete(bank: BankServer, http: aiohttp.ClientSession) -> None:
    status, answer, _ = await call(http, "PUT", f"{bank.url}/admin/faults/login", data="{not json")
    assert status == 400 and "JSON" in answer["error"]
    status, answer, _ = await call(http, "DELETE", f"{bank.url}/admin/faults/mortgages")
    assert status == 400 and "unknown capability" in answer["error"]


async def test_admin_state_and_reset(bank: BankServer, http: aiohttp.ClientSession) -> None:
    auth = await token(http, bank)
    await call(http, "POST", f"{bank.url}/cards/card-001/freeze", headers=auth)
    headers = {**auth, "Idempotency-Key": "same"}
    for _ in range(2):
        await call(http, "POST", f"{bank.url}/payments", headers=headers, json=PAYMENT)
    bank.faults.set("accounts", Fault(mode="down"))
    status, state, _ = await call(http, "GET", f"{bank.url}/admin/state")
    assert status == 200
    assert state["cards"] == {"card-001": "FROZEN", "card-002": "ACTIVE", "card-003": "ACTIVE"}
    assert state["requests"] == {"login": 1, "accounts": 0, "transfer": 2, "cards": 1, "payments": 0}
    assert state["payments_created"] == 1 and state["idempotent_replays"] == 1
    assert state["requests_by_path"]["POST /payments"] == 2
    assert state["requests_by_path"]["POST /cards/{card_id}/freeze"] == 1

    status, _, _ = await call(http, "POST", f"{bank.url}/admin/reset")
    assert status == 200
    status, state, _ = await call(http, "GET", f"{bank.url}/admin/state")
    assert state["cards"] == {"card-001": "ACTIVE", "card-002": "ACTIVE", "card-003": "ACTIVE"}
    assert sum(state["requests"].values()) == 0 and state["payments_created"] == 0
    assert bank.faults.all() == {}
    status, _, _ = await call(http, "GET", f"{bank.url}/accounts", headers=auth)
    assert status == 401  # tokens are forgotten too


# -- scenarios -----------------------------------------------------------------------


def test_shipped_scenarios() -> None:
    assert set(SCENARIOS) == {
        "transfers-and-cards-down", "zero-balances", "card-authorisation-outage",
        "intermittent-login", "intermittent-auth", "country-declines", "healthy-noise",
    }
    down = SCENARIOS["transfers-and-cards-down"]
    assert down.capabilities == {"transfer", "cards"}
    assert SCENARIOS["country-declines"].windows[0].fault.countries == ("DE",)
    assert SCENARIOS["intermittent-login"].windows[0].fault.rate == 0.3
    auth = SCENARIOS["intermittent-auth"].windows[0]
    assert (auth.capability, auth.fault.mode, auth.fault.rate, auth.fault.status) == ("login", "intermittent", 0.4, 401)
    assert SCENARIOS["healthy-noise"].capabilities == {"login", "accounts", "transfer", "cards", "payments"}



def test_the_tour_plays_each_capability_in_turn_from_the_table() -> None:
    from prober.simbank.scenarios import HOUR, PLAYABLE, TOUR, make_tour, tour_stops

    tour = PLAYABLE[TOUR]
    assert not tour.repeat
    stops = tour_stops(SCENARIOS)
    assert [s.name for s in stops] == ["intermittent-login", "zero-balances", "transfers-and-cards-down",
                                       "card-authorisation-outage"]
    # Each stop's faults are its scenario's, over one span, and the stops do not overlap.
    spans = []
    for stop in stops:
        windows = [w for w in tour.windows if w.label == f"{stop.name}: {stop.description}"]
        assert [(w.capability, w.fault) for w in windows] == [(w.capability, w.fault) for w in stop.windows]
        assert len({(w.start_s, w.end_s) for w in windows}) == 1
        spans.append((windows[0].start_s, windows[0].end_s))
    assert all(end < next_start for (_, end), (next_start, _) in pairwise(spans))
    assert spans[-1][1] < tour.cycle_s  # the bank is healthy again before the tour ends
    # Any table: a capability's first scenario, background noise left out.
    table = {
        "noise": Scenario("noise", "Noise.", tuple(FaultWindow(0, HOUR, c, Fault(mode="intermittent", rate=0.02))
                                                   for c in ("login", "accounts", "transfer", "cards", "payments")),
                          cycle_s=HOUR),
        "b": Scenario("b", "Payments down.", (FaultWindow(0, HOUR, "payments", Fault(mode="down")),), cycle_s=HOUR),
        "a": Scenario("a", "Accounts wrong.", (FaultWindow(0, HOUR, "accounts", Fault(mode="wrong_data")),),
                      cycle_s=HOUR),
    }
    assert [(w.capability, w.label) for w in make_tour(table).windows] == [
        ("accounts", "a: Accounts wrong."), ("payments", "b: Payments down.")]


@pytest.mark.exclusive  # faults applied and cleared within windows of tenths of a second
async def test_scenario_applies_and_clears_faults_on_time(http: aiohttp.ClientSession) -> None:
    # 1 simulated hour = 0.36 real s: zero balances from 0.36 s to 1.08 s, cycle 1.44 s.
    async with BankServer(seed=1, scenario="zero-balances", time_scale=1e-4) as bank:
        auth = await token(http, bank)
        balances = f"{bank.url}/accounts/acc-001/balances"

        async def amount() -> str:
            _, body, _ = await call(http, "GET", balances, headers=auth)
            return body["balances"][0]["balanceAmount"]["amount"]

        status, info, _ = await call(http, "GET", f"{bank.url}/admin/scenario")
        assert info["name"] == "zero-balances" and info["phase"] == "healthy"
        assert info["windows"][0]["capability"] == "accounts"
        assert info["windows"][0]["start_s"] == pytest.approx(0.36)
        assert info["windows"][0]["end_s"] == pytest.approx(1.08)
        assert info["cycle_s"] == pytest.approx(1.44)
        assert await amount() == "1523.47"

        async def at(elapsed: float) -> None:
            """Until ``elapsed`` seconds into the scenario (not after chained sleeps and
            requests, which a loaded machine stretches)."""
            await asyncio.sleep(max(0.0, info["started_at"] + elapsed - time.time()))

        await at(0.72)  # the middle of the window
        assert await amount() == "0.00"
        _, info, _ = await call(http, "GET", f"{bank.url}/admin/scenario")
        assert info["phase"] == "zero balances" and info["active"] == ["accounts"]

        await at(1.26)  # window over, still in the first cycle
        assert await amount() == "1523.47"
        _, info, _ = await call(http, "GET", f"{bank.url}/admin/scenario")
        assert info["phase"] == "healthy"
        actions = [(t["capability"], t["action"]) for t in info["transitions"]]
        assert actions == [("accounts", "set"), ("accounts", "clear")]
        set_at, clear_at = (t["elapsed_s"] for t in info["transitions"])
        assert set_at == pytest.approx(0.36, abs=0.1)
        assert clear_at == pytest.approx(1.08, abs=0.1)

        await at(2.16)  # second cycle (from 1.44 s), the middle of its window again
        assert await amount() == "0.00"


@pytest.mark.exclusive  # faults applied and cleared within windows of tenths of a second
async def test_custom_scenario_without_repeat_finishes() -> None:
    scenario = Scenario(
        "blip", "login down briefly",
        (FaultWindow(0.0, 1.0, "login", Fault(mode="down"), "login down"),),
        cycle_s=2.0, repeat=False,
    )
    async with BankServer(scenario=scenario, time_scale=0.1) as bank:
        await asyncio.sleep(0.05)
        assert bank.faults.get("login") == Fault(mode="down")
        assert bank.scenario is not None and bank.scenario.phase == "login down"
        await asyncio.sleep(0.25)
        assert bank.faults.get("login") is None
        assert bank.scenario.phase == "finished"


@pytest.mark.exclusive  # faults applied and cleared within windows of tenths of a second
async def test_scenario_leaves_other_faults_alone() -> None:
    async with BankServer(scenario="card-authorisation-outage", time_scale=1e-4) as bank:
        # payments down from 0.36 s to 1.26 s, cycle 1.8 s
        bank.faults.set("accounts", Fault(mode="down"))
        await asyncio.sleep(0.6)
        assert bank.faults.get("payments") == Fault(mode="down")
        await asyncio.sleep(0.9)
        assert bank.faults.get("payments") is None
        assert bank.faults.get("accounts") == Fault(mode="down")


@pytest.mark.exclusive  # faults applied and cleared within windows of tenths of a second
async def test_reset_restarts_the_scenario(http: aiohttp.ClientSession) -> None:
    async with BankServer(scenario="country-declines", time_scale=1e-4) as bank:
        await asyncio.sleep(0.5)  # DE declines from 0.36 s to 1.44 s
        assert bank.faults.get("payments") == Fault(mode="reject", countries=("DE",))
        status, _, _ = await call(http, "POST", f"{bank.url}/admin/reset")
        assert status == 200
        assert bank.faults.get("payments") is None
        _, info, _ = await call(http, "GET", f"{bank.url}/admin/scenario")
        assert info["phase"] == "healthy" and info["elapsed_s"] < 0.2
        await asyncio.sleep(0.5)
        assert bank.faults.get("payments") is not None


async def test_admin_scenario_without_scenario(bank: BankServer, http: aiohttp.ClientSession) -> None:
    status, body, _ = await call(http, "GET", f"{bank.url}/admin/scenario")
    assert (status, body["name"], body["phase"]) == (200, None, "none")


def test_unknown_scenario_name() -> None:
    with pytest.raises(ValueError, match="known scenarios: tour, transfers-and-cards-down"):
        BankServer(scenario="meteor-strike")


# -- TLS and the entry point ---------------------------------------------------------


async def test_https_with_trustme() -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    async with BankServer(seed=1, ssl_context=server_ctx) as bank, aiohttp.ClientSession() as http:
        assert bank.url.startswith("https://127.0.0.1:")
        async with http.get(f"{bank.url}/healthz", ssl=client_ctx) as resp:
            assert resp.status == 200


def test_run_bank_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_bank("127.0.0.1", 0, scenario="meteor-strike") == 2
    err = capsys.readouterr().err
    assert "meteor-strike" in err and "known scenarios: none, tour, transfers-and-cards-down, zero-balances" in err


def test_run_bank_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert run_bank("127.0.0.1", port) == 2
    err = capsys.readouterr().err.strip()
    assert f"cannot listen on 127.0.0.1:{port}" in err and "\n" not in err


def test_run_bank_serves_until_sigterm() -> None:
    code = ("import sys; from prober.simbank import run_bank; "
            "sys.exit(run_bank('127.0.0.1', 0, scenario='healthy-noise'))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line and "healthy-noise" in line
        url = line.split()[3]
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))):
            pass
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None and proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
