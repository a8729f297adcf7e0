"""A known password and the tokens a run obtains appear in no output and no log."""

from __future__ import annotations

from pathlib import Path

from prober.simbank import BankServer, Fault
from tests.cli import SIMBANK_CONFIG, run_prober

PASSWORD = "Pw-7c1e-known-to-the-test"


async def _all_outputs(bank: BankServer, config: Path, *extra: str) -> tuple[str, list]:
    env = {"SIMBANK_URL": bank.url, "SIMBANK_PASSWORD": PASSWORD}
    runs = [
        await run_prober("--log-level", "debug", "check", "-c", str(config), *extra, env=env),
        await run_prober("--log-level", "debug", "--log-format", "json", "check", "-c", str(config), "--json",
                         *extra, env=env),
    ]
    return "".join(r.stdout + r.stderr for r in runs), runs


async def test_password_and_tokens_never_appear(tmp_path: Path) -> None:
    config = tmp_path / "leaky.toml"
    # An assertion that fails on the token's value and one that fails on the password's echo:
    # the failure messages would quote them if redaction did not work.
    text = SIMBANK_CONFIG.read_text().replace(
        'expect = [ { json = "token_type", equals = "Bearer" } ]',
        'expect = [ { json = "access_token", equals = "{{ password }}" } ]',
    )
    config.write_text(text)
    async with BankServer(password=PASSWORD, seed=1) as bank:
        bank.faults.set("accounts", Fault(mode="wrong_data"))
        output, runs = await _all_outputs(bank, config)
        tokens = list(bank.state.tokens)
        sessions = list(getattr(bank.state, "sessions", {}))
    assert all(r.returncode == 1 for r in runs)
    assert "assertion failed: json access_token: expected ***, got ***" in output
    assert tokens, "the run should have obtained tokens"
    assert PASSWORD not in output
    for secret in tokens + sessions:
        assert secret not in output


async def test_wrong_password_failure_does_not_echo_it() -> None:
    async with BankServer(password="the-real-one", seed=1) as bank:
        output, runs = await _all_outputs(bank, SIMBANK_CONFIG, "--check", "login")
    assert runs[1].by_check()["login"]["outcome"] == "auth"
    assert PASSWORD not in output


async def test_config_errors_do_not_echo_secret_values(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(SIMBANK_CONFIG.read_text().replace(
        'password = "${SIMBANK_PASSWORD:-s3cret-pw}"', "password = 12345678"))
    done = await run_prober("validate", "-c", str(config), env={"SIMBANK_PASSWORD": PASSWORD})
    assert done.returncode == 2
    assert "sites[simbank].secrets.password: Input should be a valid string" in done.stderr
    assert "12345678" not in done.stderr

    config.write_text(SIMBANK_CONFIG.read_text().replace(
        'base_url = "${SIMBANK_URL:-http://127.0.0.1:8480}"', f'base_url = "ftp://alice:{PASSWORD}@bank.example/x?token={PASSWORD}"'))
    done = await run_prober("validate", "-c", str(config))
    assert done.returncode == 2
    assert "sites[simbank].base_url: invalid URL 'ftp://***@bank.example/x'" in done.stderr
    assert PASSWORD not in done.stderr
