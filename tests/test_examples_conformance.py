"""The shipped PSD2 examples send only what their standard's official OpenAPI documents
allow (``tests/specs/``, see its README for sources and licences).

Each example runs as a real ``prober check`` process against the simulated bank in that
standard's profile (signatures and client authentication verified as in
``test_examples_psd2.py``); the bank records every request as it arrived, and each request
to the standard's API is validated by :mod:`tests.conformance`: path and method, parameters
(path, query, headers), the set of headers and query parameters, the body, the bearer token.
The token endpoint (OAuth2, no OpenAPI document) and the card issuer's own API are not part
of the standards and are not validated. STET is not covered: no copy of its official
document could be obtained (tests/specs/README.md).

The second half checks the checker itself on requests built by hand: each kind of defect
it must report, and a conforming request it must pass.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from prober.simbank import profiles
from tests.cli import example_dir, run_prober
from tests.conformance import SPECS, Standard, berlin_group, close_objects, uk_open_banking
from tests.fixtures.recording_bank import RecordingBankServer, SentRequest

UK_OPERATIONS = {
    "GET /accounts (account-info-openapi.yaml)",
    "GET /accounts/{AccountId}/balances (account-info-openapi.yaml)",
    "POST /domestic-payment-consents (payment-initiation-openapi.yaml)",
    "GET /domestic-payment-consents/{ConsentId} (payment-initiation-openapi.yaml)",
    "POST /domestic-vrps (vrp-openapi.yaml)",
    "GET /domestic-vrps/{DomesticVRPId} (vrp-openapi.yaml)",
    "POST /funds-confirmations (confirmation-funds-openapi.yaml)",
}
BG_FILE = "psd2-api_1.3.9_2021-05-04v1.yaml"
BG_OPERATIONS = {
    f"GET /v1/consents/{{consentId}}/status ({BG_FILE})",
    f"GET /v1/accounts ({BG_FILE})",
    f"GET /v1/accounts/{{account-id}}/balances ({BG_FILE})",
    f"GET /v1/card-accounts ({BG_FILE})",
    f"GET /v1/card-accounts/{{account-id}}/balances ({BG_FILE})",
    f"POST /v1/{{payment-service}}/{{payment-product}} ({BG_FILE})",
    f"GET /v1/{{payment-service}}/{{payment-product}}/{{paymentId}}/status ({BG_FILE})",
    f"POST /v1/funds-confirmations ({BG_FILE})",
}


@pytest.fixture(scope="module")
def uk() -> Standard:
    return uk_open_banking()


@pytest.fixture(scope="module")
def bg() -> Standard:
    return berlin_group()


@pytest.mark.parametrize(("profile", "example", "standard", "operations"), [
    ("uk-open-banking", "uk-open-banking.toml", uk_open_banking, UK_OPERATIONS),
    ("berlin-group", "berlin-group.toml", berlin_group, BG_OPERATIONS),
])
async def test_every_request_of_the_example_conforms_to_the_official_documents(
    tmp_path: Any, profile: str, example: str, standard: Callable[[], Standard], operations: set[str],
) -> None:
    setup = profiles.setup(profile, tmp_path / "keys")
    async with RecordingBankServer(seed=1, profile=profile, signatures=setup.signatures, oauth=setup.oauth) as bank:
        run = await run_prober("check", "-c", str(example_dir(tmp_path, example)), "--json",
                               env=setup.environment(bank.url), timeout=120)
    # Every journey ran to its end, so every request it has was sent and recorded.
    assert run.returncode == 0 and {r["outcome"] for r in run.by_check().values()} == {"ok"}, run.stdout + run.stderr
    assert setup.signatures.refused == {} and setup.oauth.rejected == {}
    checked = standard()
    api = [sent for sent in bank.sent if checked.covers(sent)]
    assert operations <= {str(checked.operation(sent)) for sent in api}
    problems = [problem for sent in api for problem in checked.problems(sent)]
    assert problems == [], "\n".join(problems)


def test_the_official_documents_are_kept_as_published() -> None:
    sums = (line.split("  ", 1) for line in (SPECS / "SHA256SUMS").read_text().splitlines())
    listed = {name: digest for digest, name in sums}
    present = {str(p.relative_to(SPECS)) for p in SPECS.rglob("*.yaml")}
    assert set(listed) == present
    changed = [
        name for name, digest in listed.items() if hashlib.sha256((SPECS / name).read_bytes()).hexdigest() != digest
    ]
    assert changed == [], f"tests/specs: {changed} differ from the published files (tests/specs/README.md)"


# -- the checker, on requests built by hand ------------------------------------------

UK = "/open-banking/v4.0"
COMMON = (("Host", "ob.bank.example"), ("User-Agent", "bank-prober/0.1"), ("Accept", "application/json"),
          ("x-fapi-interaction-id", "5b2c3a5e-92a4-4d38-9a4b-3f2c1a1e0b61"), ("Authorization", "Bearer at-1"),
          ("Accept-Encoding", "gzip, deflate"))
CREDITOR = {"SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": "40400487654321", "Name": "test"}
REMITTANCE = {"Structured": [{"CreditorReferenceInformation": {"Reference": "bank-prober"}}]}
VRP_BODY = {
    "Data": {
        "ConsentId": "vrp-consent-1", "PSUAuthenticationMethod": "UK.OBIE.SCANotRequired",
        "VRPType": "UK.OBIE.VRPType.Sweeping",
        "Initiation": {"CreditorAccount": CREDITOR, "RemittanceInformation": REMITTANCE},
        "Instruction": {"InstructionIdentification": "run-1", "EndToEndIdentification": "run-1",
                        "InstructedAmount": {"Amount": "0.01", "Currency": "GBP"}, "CreditorAccount": CREDITOR,
                        "RemittanceInformation": REMITTANCE},
    },
    "Risk": {},
}


def post(path: str, body: dict[str, Any], *headers: tuple[str, str]) -> SentRequest:
    data = json.dumps(body).encode()
    sent = (*COMMON, ("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers)
    return SentRequest("POST", path, (), sent, data)


def vrp(body: dict[str, Any] = VRP_BODY) -> SentRequest:
    return post(f"{UK}/pisp/domestic-vrps", body, ("x-idempotency-key", "run-1-pay"), ("x-jws-signature", "e30..c2ln"))


def without(sent: SentRequest, header: str) -> SentRequest:
    return replace(sent, headers=tuple(h for h in sent.headers if h[0].lower() != header.lower()))


def test_a_conforming_vrp_payment_passes(uk: Standard) -> None:
    assert uk.problems(vrp()) == []


def test_a_vrp_payment_without_vrptype_is_reported(uk: Standard) -> None:
    data = {k: v for k, v in VRP_BODY["Data"].items() if k != "VRPType"}
    [problem] = uk.problems(vrp({**VRP_BODY, "Data": data}))
    assert "POST /open-banking/v4.0/pisp/domestic-vrps [POST /domestic-vrps (vrp-openapi.yaml)]" in problem
    assert "at Data: 'VRPType' is a required property" in problem


def test_the_v3_1_remittance_information_is_reported_though_the_schema_leaves_it_open(uk: Standard) -> None:
    data = {
        **VRP_BODY["Data"],
        "Initiation": {"CreditorAccount": CREDITOR, "RemittanceInformation": {"Reference": "x"}},
    }
    [problem] = uk.problems(vrp({**VRP_BODY, "Data": data}))
    assert "at Data/Initiation/RemittanceInformation: Additional properties are not allowed ('Reference'" in problem


def test_a_jws_on_a_funds_confirmation_is_reported(uk: Standard) -> None:
    body = {"Data": {"ConsentId": "cof-1", "Reference": "r", "InstructedAmount": {"Amount": "1.00", "Currency": "GBP"}}}
    assert uk.problems(post(f"{UK}/cbpii/funds-confirmations", body)) == []
    [problem] = uk.problems(post(f"{UK}/cbpii/funds-confirmations", body, ("x-jws-signature", "e30..c2ln")))
    assert problem.endswith("header x-jws-signature is not declared for this operation")


def test_a_missing_required_header_is_reported(uk: Standard) -> None:
    [problem] = uk.problems(without(vrp(), "x-idempotency-key"))
    assert "Missing required header parameter: x-idempotency-key" in problem


def test_a_request_without_a_bearer_token_is_reported(uk: Standard) -> None:
    accounts = without(SentRequest("GET", f"{UK}/aisp/accounts", (), COMMON, b""), "Authorization")
    problems = uk.problems(accounts)
    assert any("Missing required header parameter: Authorization" in p for p in problems), problems
    assert any("security ['PSUOAuth2Security'] needs Authorization: Bearer <token>, got none" in p
               for p in problems), problems


def test_an_operation_the_standard_does_not_have_is_reported(uk: Standard) -> None:
    assert uk.problems(SentRequest("DELETE", f"{UK}/pisp/domestic-vrps/pay-1", (), COMMON, b"")) == [
        f"DELETE {UK}/pisp/domestic-vrps/pay-1: no operation of UK Open Banking Read/Write API 4.0.0 matches "
        f"DELETE {UK}/pisp/domestic-vrps/pay-1"]
    # v3.1's path is not v4.0's
    assert "no operation" in uk.problems(SentRequest("GET", "/open-banking/v3.1/aisp/accounts", (), COMMON, b""))[0]


BG_HEADERS = (("Host", "xs2a.bank.example"), ("X-Request-ID", "99391c7e-ad88-49ec-a2ad-99ddcb1f7721"),
              ("Authorization", "Bearer at-1"), ("Consent-ID", "consent-1"))


def test_bg_accounts_conform_and_a_query_or_body_too_many_is_reported(bg: Standard) -> None:
    accounts = SentRequest("GET", "/v1/accounts", (("withBalance", "false"),), BG_HEADERS, b"")
    assert bg.problems(accounts) == []
    [problem] = bg.problems(replace(accounts, query=(("withBalance", "false"), ("dateFrom", "2024-01-01"))))
    assert problem.endswith("query parameter dateFrom is not declared for this operation")
    [problem] = bg.problems(replace(accounts, query=(("withBalance", "maybe"),)))
    assert "withBalance" in problem
    assert bg.problems(replace(accounts, body=b"{}"))[-1].endswith(
        "a body is sent, but the operation has no requestBody"
    )
    [problem] = bg.problems(without(accounts, "X-Request-ID"))
    assert "Missing required header parameter: X-Request-ID" in problem


def test_bg_payment_body_is_validated(bg: Standard) -> None:
    body = {
        "instructedAmount": {"currency": "EUR", "amount": "0.01"},
        "debtorAccount": {"iban": "DE89370400440532013000"},
        "creditorName": "test",
        "creditorAccount": {"iban": "DE02120300000000202051"},
    }
    headers = (*BG_HEADERS[:3], ("PSU-IP-Address", "192.0.2.10"), ("Content-Type", "application/json"))
    payment = SentRequest("POST", "/v1/payments/sepa-credit-transfers", (), headers, json.dumps(body).encode())
    assert bg.problems(payment) == []
    del body["creditorAccount"]
    problems = bg.problems(replace(payment, body=json.dumps(body).encode()))
    assert problems and all("Request body validation error" in p for p in problems), problems
    assert "Missing required header parameter: PSU-IP-Address" in bg.problems(without(payment, "PSU-IP-Address"))[0]


def test_closing_objects_refuses_an_allof_of_two_property_lists() -> None:
    document: dict[str, Any] = {"components": {"schemas": {
        "A": {"type": "object", "properties": {"a": {"type": "string"}}},
        "B": {"allOf": [{"$ref": "#/components/schemas/A"}, {"properties": {"b": {"type": "string"}}}]},
    }}}
    with pytest.raises(ValueError, match="#/components/schemas/B: allOf combines 2 schemas with properties"):
        close_objects(document)


def test_closing_objects_closes_only_schemas_that_say_nothing() -> None:
    document: dict[str, Any] = {"components": {"schemas": {
        "Open": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": True},
        "Silent": {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {}}}},
                   "example": {"properties": {"x": 1}}},
    }}}
    close_objects(document)
    schemas = document["components"]["schemas"]
    assert schemas["Open"]["additionalProperties"] is True
    assert schemas["Silent"]["additionalProperties"] is False
    assert schemas["Silent"]["properties"]["a"]["additionalProperties"] is False
    assert schemas["Silent"]["example"] == {"properties": {"x": 1}}
