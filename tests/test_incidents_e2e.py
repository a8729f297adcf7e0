"""Incidents end to end: real journeys against the simulated bank, the IncidentService,
and the ``incident`` points in a real InfluxDB 1.6."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from prober.config.influxdb import influxdb_config
from prober.daemon.alerting import compose_incidents
from prober.journey.runner import run_journey
from prober.loading import load
from prober.notify import parse_notifier
from prober.simbank import Fault
from prober.writer import ResultWriter
from tests.notify_helpers import Receiver

SIMBANK = Path(__file__).resolve().parent.parent / "config" / "simbank.toml"


def simbank(url: str):
    loaded = load(SIMBANK, environ={**os.environ, "SIMBANK_URL": url})
    return loaded.config, {p.check: p for p in loaded.plans}


async def _writer(influx_db, tmp_path) -> ResultWriter:
    writer = ResultWriter(influxdb_config(url=influx_db.url, api="v1", database=influx_db.name, flush_interval="50ms"),
                          spool_dir=tmp_path / "spool")
    await writer.start()
    return writer


async def test_one_failure_after_resolved_opens_nothing_and_points_carry_start_and_end(bank, influx_db, tmp_path):
    config, plans = simbank(bank.url)
    writer = await _writer(influx_db, tmp_path)
    service, alerting = compose_incidents(config, writer, state_dir=tmp_path / "state")
    await alerting.start()
    await service.start()
    runs = []

    async def run(times: int) -> None:
        for _ in range(times):
            result = await run_journey(plans["accounts"])
            runs.append(result)
            service.consume(result)

    await run(2)
    bank.faults.set("accounts", Fault(mode="down", status=503))
    await run(25)  # a long outage: resolves after resolve_after (2) successes
    bank.faults.clear("accounts")
    await run(2)
    assert [e.event for e in service.events] == ["opened", "resolved"]
    bank.faults.set("accounts", Fault(mode="down", status=503))
    await run(1)  # one 503 a moment after RESOLVED
    bank.faults.clear("accounts")
    await run(5)
    assert [e.event for e in service.events] == ["opened", "resolved"], [e.incident.rule for e in service.events]
    await service.close()
    await alerting.close()
    assert await writer.wait_idle(10)
    await writer.close()

    rows = influx_db.query('SELECT "duration_s", "state", "reason" FROM "incident"')
    assert [r["state"] for r in rows] == ["open", "resolved"]
    first_failure, first_success = runs[2].started_at_ns, runs[27].started_at_ns
    assert [r["time"] for r in rows] == [first_failure, first_success]  # estimated start, estimated end
    assert rows[1]["duration_s"] == (first_success - first_failure) / 1e9
    assert rows[0]["reason"].startswith("http_status: HTTP 503")


async def test_a_slow_journey_is_slow_and_sustained_slowness_is_a_degraded_incident(bank, influx_db, tmp_path):
    config, plans = simbank(bank.url)
    writer = await _writer(influx_db, tmp_path)
    async with Receiver() as rx:
        hook = parse_notifier({"type": "webhook", "url": rx.url})
        config = config.model_copy(update={"notifiers": [hook]})
        service, alerting = compose_incidents(config, writer, state_dir=tmp_path / "state")
        await alerting.start()
        await service.start()
        plan = replace(plans["cards"], max_duration=0.3)
        ok = await run_journey(plan)
        assert ok.outcome.value == "ok"
        bank.faults.set("cards", Fault(mode="slow", delay_ms=150))  # every cards request 150 ms late
        results = []
        for _ in range(3):
            result = await run_journey(plan)
            results.append(result)
            writer.submit(result)
            service.consume(result)
        assert await alerting.dispatcher.wait_idle(5)
        await service.close()
        await alerting.close()
    for result in results:
        assert result.outcome.value == "slow" and not result.success and result.failed_step == ""
        assert all(step.outcome.value == "ok" for step in result.steps)  # no step had a budget to break
        assert result.error.startswith("slow: journey took ") and result.error.endswith(" ms, over its 300 ms budget")
    [event] = service.events
    assert event.event == "opened" and event.incident.slow
    assert service.status().capabilities[("simbank", "cards")].state == "degraded"
    [message] = [r["json"] for r in rx.requests]
    assert message["title"] == "INCIDENT simbank: cards degraded"
    assert "works, too slowly" in message["text"]
    assert await writer.wait_idle(10)
    await writer.close()
    rows = influx_db.query("SELECT \"success\", \"outcome\" FROM \"check\" WHERE \"check\" = 'cards'")
    assert [(r["outcome"], r["success"]) for r in rows] == [("slow", 0)] * 3
