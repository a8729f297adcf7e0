"""A bank that echoes secrets back gets no fragment of one into any output.

The echo bank (a real aiohttp server on loopback) quotes the token it issued, the
site's API key (as a header and percent-encoded in the query string) and the session
cookie in the answers whose assertions fail; the prober must mask them before it cuts
an excerpt, everywhere a result goes: `prober check` (table and JSON), the logs, the
`check`/`step`/`incident` points in a real InfluxDB, `/status`, webhook bodies, the
incident state file and the spool.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from urllib.parse import quote

from tests.cli import run_prober
from tests.daemon_helpers import ProberProcess, checks_failing, get_json, wait_for
from tests.fixtures.echo_bank import SESSION, TOKEN, EchoBank
from tests.fixtures.servers import free_port
from tests.notify_helpers import Receiver

MIN_FRAGMENT = 8  # the documented minimum: shorter runs of a secret's characters may show
API_KEY = "ak_live/" + "Ux5+Hn3=Te8" * 6 + "Jr1"  # 77 characters, some percent-encoded in a query
SECRETS = (TOKEN, API_KEY, SESSION, quote(API_KEY, safe=""), quote(API_KEY))

STEPS = """
  [[sites.checks.steps]]
  name = "token"
  method = "POST"
  path = "/oauth/token"
  form = {{ grant_type = "client_credentials" }}
  extract = {{ access_token = {{ json = "access_token" }}, session = {{ cookie = "SESSION" }} }}

  [[sites.checks.steps]]
  name = "echo"
  path = "/echo"
  headers = {{ Authorization = "Bearer {{{{ access_token }}}}", X-Api-Key = "{{{{ api_key }}}}" }}
  query = {{ key = "{{{{ api_key }}}}" }}
  expect = [ {expect} ]
"""

EXPECTATIONS = {
    "bearer": '{ json = "seen.authorization", equals = "nope" }',
    "header": '{ header = "X-Echo", matches = "^nope" }',
    "body": '{ body = true, contains = "nope" }',
    "split": '{ json = "halves", equals = "x" }',
    "query": '{ json = "seen.query", equals = "nope" }',
    "apikey": '{ json = "seen.api_key", equals = "x{{ api_key }}" }',
    "cookie": '{ json = "seen.cookie", equals = "nope" }',
}


def site_config(url: str, checks: dict[str, str], interval: str = "60s", timeout: str = "5s") -> str:
    parts = [f'[[sites]]\nname = "hostile"\nbase_url = "{url}"\ntimeout = "5s"\n'
             f'[sites.secrets]\napi_key = "{API_KEY}"\n']
    for name, expect in checks.items():
        parts.append(f'[[sites.checks]]\nname = "{name}"\nkind = "accounts"\ninterval = "{interval}"\n'
                     f'timeout = "{timeout}"\n' + STEPS.format(expect=expect))
    return "\n".join(parts)


def fragments(text: str) -> list[str]:
    """Every run of ``MIN_FRAGMENT`` characters of a secret that ``text`` contains."""
    return sorted({s[i: i + MIN_FRAGMENT] for s in SECRETS for i in range(len(s) - MIN_FRAGMENT + 1)
                   if s[i: i + MIN_FRAGMENT] in text})


async def test_check_output_and_logs_hold_no_fragment_of_a_secret(tmp_path: Path) -> None:
    config = tmp_path / "hostile.toml"
    async with EchoBank() as bank:
        config.write_text(site_config(bank.url, EXPECTATIONS))
        as_json = await run_prober("--log-level", "debug", "check", "-c", str(config), "--json")
        as_table = await run_prober("--log-level", "debug", "--log-format", "json", "check", "-c", str(config))
    results = as_json.by_check()
    assert set(results) == set(EXPECTATIONS), as_json.stderr
    for result in results.values():
        assert result["outcome"] == "assertion" and result["failed_step"] == "echo", result
        assert "***" in result["error"], result
    # The excerpts still say what was there, around the masks.
    assert results["bearer"]["error"] == "assertion failed: json seen.authorization: expected nope, got Bearer ***"
    assert (
        results["split"]["error"] == 'assertion failed: json halves: expected "x" (string), got ["***", "***"] (array)'
    )
    assert as_table.returncode == as_json.returncode == 1
    output = "".join(r.stdout + r.stderr for r in (as_json, as_table))
    assert fragments(output) == []


async def test_no_fragment_reaches_influxdb_status_webhooks_or_state(influx_db, tmp_path: Path) -> None:
    port = free_port()
    async with EchoBank() as bank, Receiver() as hook:
        config = tmp_path / "prober.toml"
        config.write_text(
            f'[daemon]\nhealth_listen = "127.0.0.1:{port}"\nstate_dir = "state"\nself_report_interval = "1s"\n'
            f'log_level = "debug"\n'
            f'[influxdb]\nurl = "{influx_db.url}"\napi = "v1"\ndatabase = "{influx_db.name}"\n'
            f'flush_interval = "100ms"\nspool_dir = "spool"\n'
            f'[incidents]\nopen_after = 1\n'
            f'[[notifiers]]\ntype = "webhook"\nurl = "{hook.url}"\n\n'
            + site_config(bank.url, {k: EXPECTATIONS[k] for k in ("bearer", "split", "apikey")}, "500ms", "500ms")
        )
        daemon = await ProberProcess(["run", "-c", str(config)], cwd=tmp_path).start()
        try:
            await wait_for(lambda: checks_failing(port, 3), timeout=30, what="three failing checks in /status")
            await wait_for(lambda: len(hook.requests) >= 3, timeout=30, what="a webhook per incident")
            _, status = await get_json(f"http://127.0.0.1:{port}/status")
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
        finally:
            await daemon.kill()
    points = {
        "check": influx_db.query('SELECT "error", "failed_step" FROM "check"'),
        "step": influx_db.query('SELECT "error" FROM "step" WHERE "outcome" = \'assertion\''),
        "incident": influx_db.query('SELECT "reason" FROM "incident"'),
    }
    assert all(points.values()), points
    assert all("***" in row["error"] for row in points["check"])
    stored = "".join(p.read_bytes().decode(errors="replace") for p in tmp_path.rglob("*")
                     if p.is_file() and p.parent.name in ("state", "spool"))
    everything = {
        "log": daemon.log,
        "status": json.dumps(status),
        "points": json.dumps(points),
        "webhooks": json.dumps([r["json"] for r in hook.requests]),
        "state and spool": stored,
    }
    assert "***" in everything["status"] and "***" in everything["webhooks"]
    assert {where: fragments(text) for where, text in everything.items()} == dict.fromkeys(everything, [])
    assert "T0KEN-SECRET" not in everything["log"]  # nor the webhook's URL
