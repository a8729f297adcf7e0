"""The status page over real sockets: a real prober, the simulated bank and a hostile bank."""

from __future__ import annotations

import asyncio
import gzip
import re
import urllib.request
from pathlib import Path
from xml.etree import ElementTree as ET

from prober.daemon.health import HealthServer
from prober.daemon.service import ProberService
from prober.loading import load
from prober.simbank import BankServer, Fault
from prober.statuspage import StatusPage, StatusPageServer
from prober.statuspage.page import CONTENT_SECURITY_POLICY
from prober.writer.writer import ResultWriter
from tests.daemon_helpers import get_json, wait_for
from tests.statuspage_helpers import SCRIPT, Cells, EvilBank, get, two_banks

ATOM = "{http://www.w3.org/2005/Atom}"


async def test_page_feed_badges_during_and_after_an_incident(bank: BankServer, tmp_path: Path) -> None:
    evil = await EvilBank().start()
    path = tmp_path / "prober.toml"
    path.write_text(two_banks(bank.url, evil.url, state_dir=str(tmp_path / "state")))
    loaded = load(path)
    bank.faults.set("accounts", Fault(mode="down"))
    service = ProberService(loaded, writer=ResultWriter(None, spool_dir=tmp_path / "spool"))
    health = HealthServer(service, "127.0.0.1", 0, page=StatusPage(service.page_source(), loaded.config.status_page))
    public = StatusPageServer(
        StatusPage(service.page_source(), loaded.config.status_page.model_copy(update={"public": True})), "127.0.0.1", 0
    )
    await health.start()
    await public.start()
    base = health.url + "/"
    try:
        await service.start()

        async def both_failing() -> bool:
            _, doc = await get_json(base + "api/v1/status")
            sites = doc["sites"]
            return (sites.get("simbank", {}).get("capabilities", {}).get("accounts", {}).get("state") == "outage"
                    and sites.get("evilbank", {}).get("capabilities", {}).get("custom", {}).get("state") == "outage")

        await wait_for(both_failing, timeout=30, what="accounts and evilbank's custom check in outage")

        # The internal page: the right cell, in words, with since when and what fails.
        code, headers, html = await get(base)
        assert code == 200 and headers["Content-Type"].startswith("text/html")
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "script-src" not in CONTENT_SECURITY_POLICY and "'none'" in CONTENT_SECURITY_POLICY
        assert '<meta http-equiv="refresh" content="2">' in html
        cells = Cells.of(html)
        assert re.match(r"Accounts ✖ Outage since \d\d:\d\d UTC", cells[("simbank", "accounts")])
        assert "Accounts failing at step “list”: answers with an error status." in cells[("simbank", "accounts")]
        assert "check accounts" in cells[("simbank", "accounts")]
        assert "Operational" in cells[("simbank", "login")] and "Outage" not in cells[("simbank", "login")]
        # A bank's hostile text is shown, escaped, never as markup.
        assert "<script" not in html
        assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in html
        assert "Core banking &lt;b&gt;upgrade&lt;/b&gt;" in html and "every sun 01:00 to 03:00 UTC" in html
        assert "s3cret-pw" not in html and bank.url not in html and evil.url not in html
        request = urllib.request.Request(base, headers={"Accept-Encoding": "gzip"})
        with await asyncio.to_thread(urllib.request.urlopen, request, timeout=5) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(response.read()).decode().startswith("<!doctype html>")
        code, headers, css = await get(base + "status.css")
        assert code == 200 and headers["Content-Type"].startswith("text/css") and ".grid" in css

        # The public page and JSON: names, states and times only.
        code, _, html = await get(public.url + "/")
        cells = Cells.of(html)
        assert code == 200 and "Outage" in cells[("simbank", "accounts")]
        assert "Accounts failing at step “list”." in cells[("simbank", "accounts")]
        assert "pwned" not in html and "error status" not in html and "check accounts" not in html
        _, doc = await get_json(public.url + "/api/v1/status")
        assert "pwned" not in str(doc) and "http_status" not in str(doc)
        (failing,) = doc["sites"]["simbank"]["capabilities"]["accounts"]["failing"]
        assert failing["step"] == "list" and failing["since"].endswith("Z") and "error" not in failing
        _, doc = await get_json(base + "api/v1/status")
        (failing,) = doc["sites"]["simbank"]["capabilities"]["accounts"]["failing"]
        assert failing["outcome"] == "http_status" and failing["check"] == "accounts"
        assert doc["history"]["series"][0]["runs"][-1] > 0 and len(doc["history"]["series"][0]["uptime"]) == 90

        # Badges.
        code, headers, svg = await get(base + "badge/simbank/accounts.svg")
        assert code == 200 and headers["Content-Type"].startswith("image/svg+xml")
        assert ET.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg" and ">outage<" in svg
        code, _, svg = await get(base + "badge/simbank/login.svg")
        assert code == 200 and ">ok<" in svg
        assert (await get(base + "badge/simbank/cards.svg"))[0] == 404
        assert (await get(base + "badge/nobank/login.svg"))[0] == 404

        # Recovery: the cell goes back to operational, the incident is listed resolved.
        bank.faults.clear("accounts")

        async def accounts_back() -> bool:
            _, doc = await get_json(base + "api/v1/status")
            return doc["sites"]["simbank"]["capabilities"]["accounts"]["state"] == "ok" and bool(doc["recent"])

        await wait_for(accounts_back, timeout=30, what="accounts to be resolved")
        _, _, html = await get(base)
        cells = Cells.of(html)
        assert re.match(r"Accounts ✔ Operational since \d\d:\d\d UTC", cells[("simbank", "accounts")])
        assert "Resolved" in html and "Recently resolved" in html

        # The feed: the resolved accounts incident and the ongoing evilbank one.
        code, headers, body = await get(base + "feed.atom")
        assert code == 200 and headers["Content-Type"].startswith("application/atom+xml")
        feed = ET.fromstring(body.encode())
        titles = [e.findtext(f"{ATOM}title") for e in feed.iter(f"{ATOM}entry")]
        assert "Ongoing: evilbank Other failing" in titles
        assert any(t is not None and t.startswith("Resolved: simbank Accounts (down ") for t in titles)
        summaries = " ".join(e.findtext(f"{ATOM}summary") or "" for e in feed.iter(f"{ATOM}entry"))
        assert SCRIPT in summaries  # the XML parser unescaped it: it was text, not markup
        assert "<script" not in body
        # The page's own listener serves the page only: the internal /status stays off it.
        assert (await get(public.url + "/status"))[0] == 404 and (await get(public.url + "/healthz"))[0] == 404
        code, _, body = await get(public.url + "/feed.atom")
        assert "pwned" not in body
        # /incidents points at the page's incident list.
        assert (await get(base + "incidents"))[0] == 200
    finally:
        await service.stop(grace=0.0)
        await health.stop()
        await public.stop()
        await evil.stop()


async def test_daemon_serves_the_page_on_the_health_listener_unless_disabled(bank: BankServer, tmp_path: Path) -> None:
    from prober.daemon.lifecycle import Daemon
    from tests.daemon_helpers import check, config_text

    for enabled in (True, False):
        path = tmp_path / f"prober-{enabled}.toml"
        path.write_text(config_text(bank.url, [check("login")], daemon={
            "health_listen": "127.0.0.1:0", "state_dir": str(tmp_path / "state")}) +
            f"\n[status_page]\nenabled = {str(enabled).lower()}\n")
        daemon = Daemon(path, load(path))
        await daemon.startup()
        try:
            assert daemon.page_server is None and daemon.health is not None
            code, headers, html = await get(daemon.health.url + "/")
            assert (code == 200 and "<h1>Bank status</h1>" in html) if enabled else code == 404
            assert (await get(daemon.health.url + "/healthz"))[0] == 200
        finally:
            await daemon.shutdown()


async def test_reload_says_status_page_changes_need_a_restart(bank: BankServer, tmp_path: Path, caplog) -> None:
    from tests.daemon_helpers import check, config_text

    path = tmp_path / "prober.toml"
    text = config_text(bank.url, [check("login")], daemon={"state_dir": str(tmp_path / "state")})
    path.write_text(text)
    service = ProberService(load(path), writer=ResultWriter(None, spool_dir=tmp_path / "spool"))
    path.write_text(text + '\n[status_page]\ntitle = "New title"\n')
    service.reload(load(path))
    assert "reload: changes to [status_page] take effect at the next restart" in caplog.text


async def test_evidence_files_on_the_internal_page_only(bank: BankServer, tmp_path: Path) -> None:
    """A failed browser run's screenshot is served by the name the runner gave it, on the
    internal page; any other name, a file that is not there, or the public page: 404."""
    from tests.daemon_helpers import check, config_text

    path = tmp_path / "prober.toml"
    path.write_text(config_text(bank.url, [check("login")], daemon={"state_dir": str(tmp_path / "state")}))
    loaded = load(path)
    folder = tmp_path / "state" / "evidence" / "simbank" / "login"
    folder.mkdir(parents=True)
    (folder / "20261207T084522Z-9c5be9c8.png").write_bytes(b"\x89PNG shot")
    (folder / "notes.txt").write_text("not evidence")
    (tmp_path / "state" / "secret.png").write_bytes(b"not evidence either")
    service = ProberService(loaded, writer=ResultWriter(None, spool_dir=tmp_path / "spool"))
    internal = StatusPageServer(StatusPage(service.page_source(), loaded.config.status_page), "127.0.0.1", 0)
    public = StatusPageServer(
        StatusPage(service.page_source(), loaded.config.status_page.model_copy(update={"public": True})), "127.0.0.1", 0
    )
    await internal.start()
    await public.start()
    try:
        code, headers, body = await asyncio.to_thread(
            fetch_bytes, internal.url + "/evidence/simbank/login/20261207T084522Z-9c5be9c8.png"
        )
        assert (code, headers["Content-Type"], body) == (200, "image/png", b"\x89PNG shot")
        assert headers["Content-Disposition"] == 'inline; filename="20261207T084522Z-9c5be9c8.png"'
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        for name in ("notes.txt", "20261207T084522Z-00000000.png", "..%2F..%2Fsecret.png"):
            assert (await get(internal.url + f"/evidence/simbank/login/{name}"))[0] == 404, name
        assert (await get(internal.url + "/evidence/otherbank/login/20261207T084522Z-9c5be9c8.png"))[0] == 404
        assert (await get(public.url + "/evidence/simbank/login/20261207T084522Z-9c5be9c8.png"))[0] == 404
    finally:
        await internal.stop()
        await public.stop()


def fetch_bytes(url: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, dict(response.headers), response.read()
