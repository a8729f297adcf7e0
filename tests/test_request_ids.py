"""``{{ uuid() }}`` in a header is new for every request sent, and signed as sent.

Berlin Group (and STET) want each request's ``X-Request-ID`` unique; a step sends more
than one request when it polls or follows a redirect. The server here is a real aiohttp
server on loopback behind the simulated bank's own signature checks, which rebuild the
signing string from the request received: a signature made before the header changed
would be refused.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from aiohttp import web

from prober.bank.signatures import SignatureProfile, signature_middleware
from prober.journey.runner import run_journey
from prober.journey.templating import fresh_per_use
from prober.loading import load
from prober.results import Outcome
from tests.signing_keys import make_key

STET_KEY_ID = "https://tpp.example/qseal.pem#714f8154"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


@pytest.mark.parametrize(("text", "fresh"), [
    ("{{ uuid() }}", True), ("req-{{ uuid() }}", True), ("{{ run.id }}-{{ uuid() }}", True),
    ("{{ uuid() | upper }}", True), ("{% if x %}{{ uuid() }}{% endif %}", True),
    ("{{ run.uuid }}", False), ("{{ run.id }}", False), ("Bearer {{ token }}", False), ("uuid()", False),
])
def test_templates_that_change_at_each_use(text: str, fresh: bool) -> None:
    assert fresh_per_use(text) is fresh


@pytest.mark.parametrize("profile", ["berlin-group", "stet"])
async def test_each_poll_attempt_and_redirect_hop_has_its_own_signed_request_id(tmp_path: Path, profile: str) -> None:
    key = make_key(tmp_path, "tpp")
    if profile == "berlin-group":
        signatures = SignatureProfile("berlin-group", certificates=[key.certificate])
        signing = f'certificate_file = "{key.certificate_file}"'
    else:
        signatures = SignatureProfile("stet", keys={STET_KEY_ID: key.key.public_key()})
        signing = f'key_id = "{STET_KEY_ID}"'
    seen: list[dict[str, str]] = []

    def record(request: web.Request) -> None:
        seen.append({"path": request.path, **{h: request.headers.get(h, "") for h in
                                                ("X-Request-ID", "X-Correlation-ID", "X-Run", "Authorization")}})

    async def old(request: web.Request) -> web.Response:
        record(request)
        raise web.HTTPTemporaryRedirect("/new")

    async def new(request: web.Request) -> web.Response:
        record(request)
        return web.json_response({"transactionStatus": "RCVD" if len(seen) < 6 else "ACSC"})

    app = web.Application(middlewares=[signature_middleware(signatures)])
    app.router.add_get("/old", old)
    app.router.add_get("/new", new)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    config = tmp_path / "poll.toml"
    config.write_text(f"""
[[sites]]
name = "psd2"
base_url = "{url}"
headers = {{ "X-Request-ID" = "{{{{ uuid() }}}}", "X-Run" = "{{{{ run.id }}}}" }}
  [sites.signing]
  profile = "{profile}"
  key_file = "{key.key_file}"
  {signing}
  [sites.secrets]
  token = "at-0123456789"
[[sites.checks]]
name = "status"
kind = "transfer"
  [[sites.checks.steps]]
  name = "status"
  path = "/old"
  headers = {{ Authorization = "Bearer {{{{ token }}}}", "X-Correlation-ID" = "{{{{ run.id }}}}-{{{{ uuid() }}}}" }}
  expect = [ {{ json = "transactionStatus", equals = "ACSC" }} ]
  poll = {{ attempts = 5, interval = "10ms" }}
""")
    try:
        [plan] = load(config).plans
        result = await run_journey(plan)
    finally:
        await runner.cleanup()
    assert result.outcome is Outcome.OK, result.error
    assert result.steps[0].attempts == 3
    assert [s["path"] for s in seen] == ["/old", "/new"] * 3
    # Every request, hop or attempt, has an id of its own: unique, a version 4 UUID...
    request_ids = [s["X-Request-ID"] for s in seen]
    assert len(set(request_ids)) == 6 and all(re.fullmatch(UUID, i) for i in request_ids), request_ids
    correlation = [s["X-Correlation-ID"] for s in seen]
    assert len(set(correlation)) == 6
    assert all(re.fullmatch(f"{result.run_id}-{UUID}", c) for c in correlation), correlation
    # ...while the values of the run stay the run's.
    assert {s["X-Run"] for s in seen} == {result.run_id}
    assert {s["Authorization"] for s in seen} == {"Bearer at-0123456789"}
    # The bank rebuilt each signing string from the request it received: all verify.
    assert signatures.verified == 6 and signatures.refused == {}
    assert all(uuid.UUID(i).version == 4 for i in request_ids)
