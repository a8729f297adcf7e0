"""Timeouts cut where they should, and phase timings add up, over HTTP and HTTPS."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from prober.journey.plan import JourneyPlan
from prober.journey.runner import run_journey
from prober.loading import load
from prober.results import Outcome
from prober.simbank import BankServer, Fault

pytestmark = pytest.mark.exclusive  # a known delay measured within 50 ms


def plan_for(tmp_path: Path, base_url: str, steps: str, *, timeout: str = "10s", step_timeout: str = "5s",
             tls: str = "") -> JourneyPlan:
    (tmp_path / "t.toml").write_text(f"""
[[sites]]
name = "bank"
base_url = "{base_url}"
timeout = "{step_timeout}"
{tls}
[[sites.checks]]
name = "c"
kind = "login"
interval = "60s"
timeout = "{timeout}"
{steps}
""")
    return load(tmp_path / "t.toml", environ={}).plans[0]


TOKEN_STEP = """
[[sites.checks.steps]]
name = "token"
method = "POST"
path = "/oauth/token"
form = { grant_type = "password", username = "alice", password = "s3cret-pw" }
"""
ME_STEP = """
[[sites.checks.steps]]
name = "session"
method = "POST"
path = "/login"
form = { username = "alice", password = "s3cret-pw" }
"""


@pytest.mark.parametrize(("journey_timeout", "step_timeout", "expected"), [("10s", "1s", 1.0), ("1500ms", "5s", 1.5)],
                         ids=["step-timeout", "journey-timeout"])
async def test_hanging_endpoint_is_cut_within_ten_percent(
    bank: BankServer, tmp_path: Path, journey_timeout: str, step_timeout: str, expected: float
) -> None:
    bank.faults.set("login", Fault(mode="hang"))
    plan = plan_for(tmp_path, bank.url, TOKEN_STEP, timeout=journey_timeout, step_timeout=step_timeout)
    result = await run_journey(plan)
    step = result.steps[0]
    assert step.outcome is Outcome.TIMEOUT
    assert expected * 1000 <= step.duration_ms <= expected * 1000 * 1.10
    assert expected * 1000 <= result.duration_ms <= expected * 1000 * 1.10


async def test_known_delay_lands_in_ttfb_and_phases_add_up(bank: BankServer, tmp_path: Path) -> None:
    bank.faults.set("login", Fault(mode="slow", delay_ms=150))
    result = await run_journey(plan_for(tmp_path, bank.url, TOKEN_STEP + ME_STEP))
    assert result.success, result.error
    first, second = result.steps
    assert first.phases is not None and second.phases is not None
    for step in (first, second):
        assert step.phases is not None
        assert step.phases.ttfb_ms >= 150.0
        assert step.phases.ttfb_ms < 150.0 + 50.0
        assert abs(step.phases.total_ms - step.duration_ms) <= 1.0
    assert first.phases.connect_ms > 0.0  # the run's first request opens a fresh connection
    assert second.phases.connect_ms == 0.0  # later steps of the run reuse it
    assert first.phases.tls_ms == 0.0


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def test_tls_phase_is_measured_and_phases_add_up(ca: trustme.CA, tmp_path: Path) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async with BankServer(ssl_context=server_context) as bank:
        bank.faults.set("login", Fault(mode="slow", delay_ms=50))
        plan = plan_for(tmp_path, bank.url, TOKEN_STEP + ME_STEP, tls=f'[sites.tls]\nca_file = "{ca_file}"')
        result = await run_journey(plan)
    assert result.success, result.error
    first = result.steps[0]
    assert first.phases is not None
    assert first.phases.tls_ms > 0.0 and first.phases.connect_ms > 0.0
    assert first.phases.ttfb_ms >= 50.0
    assert abs(first.phases.total_ms - first.duration_ms) <= 1.0
    assert result.steps[1].phases is not None
    assert result.steps[1].phases.tls_ms == 0.0


async def test_untrusted_certificate_is_tls_outcome(ca: trustme.CA, tmp_path: Path) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    async with BankServer(ssl_context=server_context) as bank:
        result = await run_journey(plan_for(tmp_path, bank.url, TOKEN_STEP))
    assert result.outcome is Outcome.TLS
    assert result.error.startswith("tls: certificate verify failed")


async def test_mutual_tls_client_certificate_is_presented(ca: trustme.CA, tmp_path: Path) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca.configure_trust(server_context)
    server_context.verify_mode = ssl.CERT_REQUIRED
    client = ca.issue_cert("prober.example")
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key"
    ca.cert_pem.write_to_path(str(ca_file))
    client.cert_chain_pems[0].write_to_path(str(cert_file))
    client.private_key_pem.write_to_path(str(key_file))
    async with BankServer(ssl_context=server_context) as bank:
        without = await run_journey(plan_for(tmp_path, bank.url, TOKEN_STEP, tls=f'[sites.tls]\nca_file = "{ca_file}"'))
        with_cert = await run_journey(plan_for(
            tmp_path, bank.url, TOKEN_STEP,
            tls=f'[sites.tls]\nca_file = "{ca_file}"\ncert_file = "{cert_file}"\nkey_file = "{key_file}"'))
    assert without.outcome in (Outcome.TLS, Outcome.CONNECT)
    assert with_cert.success, with_cert.error


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_name_lookup_is_timed_apart_and_phases_add_up(bank: BankServer, tmp_path: Path, host: str) -> None:
    url = bank.url.replace("127.0.0.1", host)
    result = await run_journey(plan_for(tmp_path, url, TOKEN_STEP + ME_STEP))
    assert result.success, result.error
    first, second = result.steps
    assert first.phases is not None and second.phases is not None
    if host == "localhost":
        assert first.phases.dns_ms > 0.0  # a name is looked up...
    else:
        assert first.phases.dns_ms == 0.0  # ...an address is not
    assert first.phases.connect_ms > 0.0
    for step in (first, second):
        assert step.phases is not None
        assert abs(step.phases.total_ms - step.duration_ms) <= 1.0
    assert second.phases.dns_ms == 0.0 and second.phases.connect_ms == 0.0  # the connection is reused
