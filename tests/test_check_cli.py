"""`prober check` against the simulated bank, over real sockets, as a user runs it."""

from __future__ import annotations

import socket

import pytest

from prober.simbank import BankServer, Fault
from tests.cli import check_simbank, run_prober


@pytest.mark.exclusive  # the web checks' pages are held to 2 s budgets
async def test_every_journey_passes_on_a_healthy_bank(bank: BankServer) -> None:
    done = await check_simbank(bank.url)
    results = done.by_check()
    assert set(results) == {"login", "accounts", "transfer", "cards", "card-authorisation",
                            "web-login", "web-accounts", "web-transfer", "web-cards"}
    failing = {name: r["error"] for name, r in results.items() if not r["success"]}
    assert failing == {}
    assert done.returncode == 0
    assert {r["kind"] for r in results.values()} == {"login", "accounts", "transfer", "cards", "payments"}
    for result in results.values():
        assert result["outcome"] == "ok" and result["failed_step"] == ""
        if result["check"].startswith("web-"):  # browser steps: only those that loaded a page have a status
            assert all(
                s["outcome"] == "ok" and s["http_status"] in (200, None) and "page" in s for s in result["steps"]
            )
        else:
            assert all(s["outcome"] == "ok" and s["http_status"] in (200, 201) for s in result["steps"])


async def test_table_output_and_exit_code(bank: BankServer) -> None:
    bank.faults.set("transfer", Fault(mode="down"))
    done = await run_prober("check", "-c", "config/simbank.toml", "--check", "login", "--check", "transfer",
                            env={"SIMBANK_URL": bank.url})
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert any("login" in line and "OK" in line for line in lines)
    assert any("transfer" in line and "FAIL" in line and "http_status" in line and "create" in line for line in lines)


async def test_zero_balance_is_caught_while_every_answer_is_200(bank: BankServer) -> None:
    bank.faults.set("accounts", Fault(mode="wrong_data"))
    result = (await check_simbank(bank.url, "accounts")).by_check()["accounts"]
    assert result["success"] is False
    assert result["outcome"] == "assertion"
    assert result["failed_step"] == "balances"
    assert [s["http_status"] for s in result["steps"]] == [200, 200, 200]
    assert result["error"] == "assertion failed: closing balance: expected > 0, got 0.00"


async def test_transfer_is_created_then_polled_until_settled(bank: BankServer) -> None:
    result = (await check_simbank(bank.url, "transfer")).by_check()["transfer"]
    assert result["success"] is True
    create, status = result["steps"][1], result["steps"][2]
    assert create["http_status"] == 201
    assert status["attempts"] > 1  # RCVD first, ACSC after the settlement delay
    assert bank.state.payments_created == 1


async def test_rejected_transfer_fails_the_status_step(bank: BankServer) -> None:
    bank.faults.set("transfer", Fault(mode="reject"))
    result = (await check_simbank(bank.url, "transfer")).by_check()["transfer"]
    assert (result["outcome"], result["failed_step"]) == ("assertion", "status")
    assert result["error"].endswith("expected ACSC, got RJCT")


async def test_card_is_unfrozen_even_when_a_middle_step_fails(bank: BankServer) -> None:
    bank.faults.set("cards", Fault(mode="down", paths=("/cards/card-001/limits",)))
    result = (await check_simbank(bank.url, "cards")).by_check()["cards"]
    assert (result["outcome"], result["failed_step"]) == ("http_status", "limits")
    steps = {s["name"]: s for s in result["steps"]}
    assert steps["freeze"]["outcome"] == "ok"
    assert steps["unfreeze"]["outcome"] == "ok" and steps["unfreeze"]["always_run"] is True
    assert bank.state.cards["card-001"].status == "ACTIVE"


async def test_card_is_unfrozen_after_the_journey_timeout(bank: BankServer, tmp_path) -> None:
    # The limits step hangs past the journey budget; the cleanup step still runs.
    config = tmp_path / "bank.toml"
    text = (open("config/simbank.toml").read()
            .replace('name = "cards"\nkind = "cards"\ninterval = "60s"\ntimeout = "15s"\nmax_duration = "8s"',
                     'name = "cards"\nkind = "cards"\ninterval = "60s"\ntimeout = "1s"'))
    config.write_text(text)
    bank.faults.set("cards", Fault(mode="hang", paths=("/cards/card-001/limits",)))
    result = (await check_simbank(bank.url, "cards", config=config)).by_check()["cards"]
    assert (result["outcome"], result["failed_step"]) == ("timeout", "limits")
    assert "journey timeout 1s" in result["error"]
    assert result["steps"][-1]["name"] == "unfreeze" and result["steps"][-1]["outcome"] == "ok"
    assert bank.state.cards["card-001"].status == "ACTIVE"


async def test_mutating_journey_is_sent_once_with_an_idempotency_key(bank: BankServer) -> None:
    bank.faults.set("transfer", Fault(mode="down", paths=("/payments",)))
    result = (await check_simbank(bank.url, "transfer")).by_check()["transfer"]
    assert (result["outcome"], result["failed_step"]) == ("http_status", "create")
    assert bank.state.requests_by_path.get("POST /payments") == 1
    # The bank refuses a payment without Idempotency-Key (400): a 503 proves the key was sent.
    assert result["steps"][1]["http_status"] == 503


@pytest.mark.parametrize(
    ("capability", "fault", "check", "outcome", "failed_step"),
    [
        ("login", Fault(mode="down"), "login", "http_status", "token"),
        ("login", Fault(mode="intermittent", rate=1.0), "login", "http_status", "token"),
        ("login", Fault(mode="refuse", values=("local",)), "login", "auth", "token"),
        ("accounts", Fault(mode="down", status=502), "accounts", "http_status", "list"),
        ("accounts", Fault(mode="hang", paths=("/accounts/acc-001/balances",)), "accounts", "timeout", "balances"),
        ("payments", Fault(mode="reject", countries=("DE",)), "card-authorisation", "assertion", "authorise-de"),
        ("payments", Fault(mode="down", paths=("/funds-confirmations",)), "card-authorisation", "http_status", "funds"),
        ("login", Fault(mode="slow", delay_ms=2100), "login", "slow", "token"),
    ],
    ids=["down", "intermittent", "refuse", "down-502", "hang", "reject-country", "down-one-path", "slow"],
)
async def test_fault_modes_give_outcome_and_failed_step(
    bank: BankServer, capability: str, fault: Fault, check: str, outcome: str, failed_step: str
) -> None:
    bank.faults.set(capability, fault)
    env = {"PROBER_LOCATION": "local"}
    result = (await check_simbank(bank.url, check, env=env)).by_check()[check]
    assert (result["outcome"], result["failed_step"], result["success"]) == (outcome, failed_step, False)
    assert result["error"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_connection_refused_is_connect() -> None:
    result = (await check_simbank(f"http://127.0.0.1:{_closed_port()}", "login")).by_check()["login"]
    assert (result["outcome"], result["failed_step"]) == ("connect", "token")
    assert result["error"].startswith("connect: connect call failed") or "refused" in result["error"]


async def test_unresolvable_host_is_dns() -> None:
    result = (await check_simbank("http://no-such-bank.invalid:8480", "login")).by_check()["login"]
    assert (result["outcome"], result["failed_step"]) == ("dns", "token")
    assert result["error"] == "dns: cannot resolve no-such-bank.invalid"


async def test_tls_to_a_plain_http_server_is_tls(bank: BankServer) -> None:
    result = (await check_simbank(bank.url.replace("http://", "https://"), "login")).by_check()["login"]
    assert (result["outcome"], result["failed_step"]) == ("tls", "token")


async def test_unknown_site_or_check_exits_2(bank: BankServer) -> None:
    done = await run_prober("check", "-c", "config/simbank.toml", "--check", "nope", env={"SIMBANK_URL": bank.url})
    assert done.returncode == 2
    assert "no check named 'nope'" in done.stderr


async def test_json_output_into_a_closed_pipe_exits_quietly(bank: BankServer) -> None:
    """``prober check --json | head -1``: the reader leaves early; no traceback, SIGPIPE's status."""
    import asyncio
    import os
    import sys

    from tests.cli import REPO, SIMBANK_CONFIG

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "prober", "check", "-c", str(SIMBANK_CONFIG), "--json",
        stdout=write_end, stderr=asyncio.subprocess.PIPE, cwd=REPO,
        env={**os.environ, "SIMBANK_URL": bank.url},
    )
    os.close(write_end)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert err.decode() == ""
    assert proc.returncode == 141


async def test_a_cleanup_step_that_needs_a_value_never_extracted_is_skipped_and_says_which(bank: BankServer) -> None:
    # The token request fails: the card was never listed nor frozen, and the always_run
    # unfreeze cannot be sent without the token; it is skipped and names the missing value.
    bank.faults.set("login", Fault(mode="down"))
    result = (await check_simbank(bank.url, "cards")).by_check()["cards"]
    steps = {s["name"]: s for s in result["steps"]}
    assert steps["unfreeze"]["always_run"] is True
    assert steps["unfreeze"]["outcome"] == "skipped"
    assert steps["unfreeze"]["error"] == "skipped: needs a value no earlier step extracted ('token' is undefined)"
