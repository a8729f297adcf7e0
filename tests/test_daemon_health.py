"""/healthz and /status over real sockets, and the states of /healthz through a shutdown."""

from __future__ import annotations

import asyncio
import json
import time
from itertools import pairwise
from pathlib import Path

from prober.daemon.health import STATUS_TTL, HealthServer
from prober.daemon.service import ProberService
from prober.loading import load
from prober.simbank import BankServer, Fault
from prober.writer.writer import ResultWriter
from tests.daemon_helpers import check, config_text, get_json, wait_for


async def test_healthz_and_status(bank: BankServer, tmp_path: Path) -> None:
    bank.faults.set("accounts", Fault(mode="hang"))
    path = tmp_path / "prober.toml"
    path.write_text(config_text(
        bank.url,
        [check("login", interval="300ms"), check("accounts", name="hanging", interval="1s", timeout="900ms")],
        daemon={"state_dir": str(tmp_path / "state")},
    ))
    service = ProberService(load(path), writer=ResultWriter(None, spool_dir=tmp_path / "spool"))
    health = HealthServer(service, "127.0.0.1", 0)
    await health.start()
    base = health.url
    try:
        assert await get_json(f"{base}/healthz") == (503, {"status": "starting"})
        await service.start()
        assert await get_json(f"{base}/healthz") == (200, {"status": "ok"})

        async def both_ran() -> bool:
            _, doc = await get_json(f"{base}/status")
            return all(c["runs"] >= 2 for c in doc["checks"])

        await wait_for(both_ran, what="both checks to run twice")

        async def accounts_incident_open() -> bool:
            _, doc = await get_json(f"{base}/status")
            return bool(doc["incidents"]["open"])

        await wait_for(accounts_incident_open, what="the hanging capability's incident")
        code, doc = await get_json(f"{base}/status")
        assert code == 200 and doc["status"] == "running"
        checks = {c["check"]: c for c in doc["checks"]}
        assert set(checks) == {"login", "hanging"}
        login, hanging = checks["login"], checks["hanging"]
        assert login["outcome"] == "ok" and login["success"] is True and login["consecutive_failures"] == 0
        assert login["duration_ms"] > 0 and login["time"].endswith("Z") and login["kind"] == "login"
        assert hanging["outcome"] == "timeout" and hanging["success"] is False
        assert hanging["failed_step"] == "list" and "timeout" in hanging["error"]
        assert hanging["consecutive_failures"] >= 2
        assert set(doc["writer"]) >= {
            "written_points",
            "spooled_points",
            "dropped_points",
            "write_errors",
            "last_error",
        }
        assert doc["scheduler"]["checks"] == 2 and doc["scheduler"]["schedule_lag_ms"]["p99"] >= 0
        # The answer the prober exists for: which bank, which capability, since when.
        capabilities = doc["incidents"]["sites"]["simbank"]["capabilities"]
        assert capabilities["login"]["state"] == "ok"
        accounts = capabilities["accounts"]
        assert accounts["state"] == "outage" and accounts["since"].endswith("Z")
        (incident,) = doc["incidents"]["open"]
        assert (incident["kind"], incident["check"], incident["failed_step"], incident["outcome"]) == (
            "accounts", "hanging", "list", "timeout")
        assert incident["since"] == accounts["since"] and incident["resolved_at"] is None
        assert doc["incidents"]["notifications"] == {"notifiers": 0, "sent": 0, "failed": 0, "dropped": 0,
                                                     "pending": 0, "silenced": 0}
        text = str(doc)
        assert "s3cret-pw" not in text and bank.url not in text  # no secrets, no URLs

        # While shutting down (a hanging run holds the grace period), /healthz says 503.
        # Stop just after a hanging run starts, so that it holds the stop for most of its
        # 0.9 s timeout: any run in flight could be a 1 ms login or a hanging run about to end.
        def hanging_running() -> bool:
            return any(name == "hanging" for _, name in service.scheduler.running)

        await wait_for(lambda: not hanging_running(), interval=0.01, what="the hanging run to end")
        await wait_for(hanging_running, interval=0.01, what="the next hanging run to start")
        stopping = asyncio.create_task(service.stop(grace=1.5))
        await asyncio.sleep(0.05)  # the hanging run holds the stop for up to its 0.9 s timeout
        assert await get_json(f"{base}/healthz") == (503, {"status": "stopping"})
        await stopping
        assert await get_json(f"{base}/healthz") == (503, {"status": "stopped"})
    finally:
        await service.stop(grace=0.0)
        await health.stop()


async def test_one_rendering_of_status_serves_every_reader_for_a_second(bank: BankServer, tmp_path: Path) -> None:
    """Rendering /status holds the event loop: however many ask, it is rendered at most
    once a second (STATUS_TTL), and what it says is at most that old."""
    path = tmp_path / "prober.toml"
    path.write_text(config_text(bank.url, [check("login", interval="300ms")],
                                daemon={"state_dir": str(tmp_path / "state")}))
    service = ProberService(load(path), writer=ResultWriter(None, spool_dir=tmp_path / "spool"))
    renderings: list[float] = []
    render = service.status_document

    def counted() -> dict:
        renderings.append(time.monotonic())
        return render()

    service.status_document = counted  # type: ignore[method-assign]  # counts the renderings
    health = HealthServer(service, "127.0.0.1", 0)
    await health.start()
    try:
        await service.start()
        answers = [await get_json(f"{health.url}/status") for _ in range(20)]
        # Twenty readers in a row (more than a second of them on a loaded machine): each
        # rendering at least STATUS_TTL after the one before, each answer one of them.
        assert all(later - earlier >= STATUS_TTL - 0.01 for earlier, later in pairwise(renderings)), renderings
        assert len(renderings) < len(answers)
        assert len({json.dumps(a, sort_keys=True) for a in answers}) == len(renderings)
        assert answers[0][0] == 200 and answers[0][1]["status"] == "running"
        before = len(renderings)
        await asyncio.sleep(STATUS_TTL + 0.05)
        code, fresh = await get_json(f"{health.url}/status")
        assert code == 200 and len(renderings) == before + 1
        assert fresh["scheduler"]["runs"] > answers[0][1]["scheduler"]["runs"]
    finally:
        await service.stop(grace=0.0)
        await health.stop()
