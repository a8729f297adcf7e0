"""Across locations end to end: two ``prober run`` processes (two locations) against the
simulated bank, writing into a real InfluxDB 1.6, a real webhook receiver counting
notifications. One bank down everywhere is one incident, notified once, naming both
locations; when the deciding instance stops, the other takes over without notifying twice."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from prober.simbank import BankServer, Fault
from tests.daemon_helpers import ProberProcess, check, config_text, get_json, wait_for
from tests.fixtures.servers import InfluxDatabase, free_port
from tests.notify_helpers import Receiver

LOCATIONS = ("fra", "par")  # fra sorts first: it decides while it is live
STALE = 3.0


def _config(bank: BankServer, db: InfluxDatabase, location: str, hook: str, port: int, state: Path) -> str:
    text = config_text(
        bank.url, [check("accounts", interval="300ms")],
        daemon={"health_listen": f"127.0.0.1:{port}", "self_report_interval": "300ms", "state_dir": str(state),
                "grace_period": "2s"},
        influxdb={"url": db.url, "api": "v1", "database": db.name, "flush_interval": "100ms"},
    )
    return text + (
        f'\n[prober]\nlocation = "{location}"\ninstance = "prober-{location}"\n'
        f'\n[incidents]\nremind_every = "1h"\n'
        f'[incidents.locations]\nconfirm = 2\npoll = "300ms"\nstale_after = "{STALE:g}s"\n'
        f'\n[[notifiers]]\ntype = "webhook"\nurl = "{hook}"\n'
    )


def _events(rx: Receiver) -> list[tuple[str, str]]:
    return [(r["json"]["event"], r["json"]["kind"]) for r in rx.requests]


async def test_one_bank_down_everywhere_is_one_incident_and_one_notification(bank, influx_db, tmp_path):
    async with Receiver() as rx:
        probers: dict[str, ProberProcess] = {}
        ports = {}
        try:
            for location in LOCATIONS:
                workdir = tmp_path / location
                workdir.mkdir()
                ports[location] = free_port()
                (workdir / "prober.toml").write_text(
                    _config(bank, influx_db, location, rx.url, ports[location], workdir / "state"))
                probers[location] = await ProberProcess(["run", "-c", "prober.toml"], workdir).start()

            async def cross(location: str) -> dict:
                _, doc = await get_json(f"http://127.0.0.1:{ports[location]}/status")
                return doc["incidents"]["locations"]

            async def both_live() -> bool:
                try:
                    views = [await cross(loc) for loc in LOCATIONS]
                    return all(len(v["live"]) == 2 for v in views)
                except (OSError, KeyError, ValueError):
                    return False

            await wait_for(both_live, timeout=30, interval=0.2, what="both locations live")
            view = await cross("par")
            assert view["acting"] == {"location": "fra", "instance": "prober-fra"}
            assert not view["this_instance_acts"] and (await cross("fra"))["this_instance_acts"]

            bank.faults.set("accounts", Fault(mode="down", status=503))
            await wait_for(lambda: rx.requests, timeout=20, interval=0.1, what="the notification")
            await asyncio.sleep(2.0)  # both locations have long opened their own incident by now
            assert _events(rx) == [("opened", "accounts")]
            (opened,) = [r["json"] for r in rx.requests]
            assert opened["location"] == "fra, par" and opened["capability_state"] == "outage"
            assert opened["title"] == "INCIDENT simbank: accounts outage"
            assert "failing at 2 location(s): fra, par" in opened["reason"]
            rows = influx_db.query('SELECT "reason", "state", "location" FROM "incident"')
            assert sorted(r["location"] for r in rows if r["state"] == "open") == ["fra", "par"]
            (capability,) = (await cross("par"))["capabilities"]
            assert capability["failing"] == ["fra", "par"] and capability["confirmed"]
            assert capability["incident"]["id"] == opened["incident_id"]

            # The deciding instance stops while the incident is open: par takes over after
            # stale_after, adopts the incident (no second "opened") and resolves it once.
            probers["fra"].signal(signal.SIGTERM)
            assert await probers["fra"].wait(20) == 0
            await wait_for(lambda: _acting(cross("par")), timeout=STALE + 10, interval=0.2, what="par to take over")
            await asyncio.sleep(1.0)
            assert _events(rx) == [("opened", "accounts")]
            bank.faults.clear("accounts")
            await wait_for(lambda: len(rx.requests) >= 2, timeout=20, interval=0.1, what="the resolution")
            await asyncio.sleep(1.5)
            assert _events(rx) == [("opened", "accounts"), ("resolved", "accounts")]
            resolved = rx.requests[1]["json"]
            assert resolved["incident_id"] == opened["incident_id"] and resolved["title"].startswith(
                "RESOLVED simbank: accounts is back after")
            written = influx_db.query('SELECT "id", "state", "locations", "instance" FROM "incident_locations"')
            assert [(r["state"], r["instance"]) for r in written] == [
                ("open", "prober-fra"),
                ("resolved", "prober-par"),
            ]
            assert {r["id"] for r in written} == {opened["incident_id"]}
        finally:
            for prober in probers.values():
                if prober.proc is not None and prober.proc.returncode is None:
                    prober.signal(signal.SIGTERM)
                    try:
                        await prober.wait(20)
                    except TimeoutError:
                        await prober.kill()


async def _acting(view) -> bool:
    return (await view)["this_instance_acts"]
