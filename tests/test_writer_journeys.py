"""Real journeys against the simulated bank, written through the writer into the real
InfluxDB 1.6 and VictoriaMetrics: one `check` point per run, one `step` point per
executed step (skipped steps write none), with the schema's tags and field types."""

from __future__ import annotations

import asyncio
import os
import time

from prober.config.influxdb import influxdb_config
from prober.journey.runner import run_journey
from prober.loading import load
from prober.results import JourneyResult
from prober.simbank import BankServer, Fault
from prober.writer import ResultWriter
from tests.cli import SIMBANK_CONFIG

ROUNDS = 4


async def _run_rounds(bank: BankServer, writer: ResultWriter, location: str) -> list[JourneyResult]:
    plans = load(SIMBANK_CONFIG, environ={**os.environ, "SIMBANK_URL": bank.url, "PROBER_LOCATION": location}).plans
    results: list[JourneyResult] = []
    for round_no in range(ROUNDS):
        # Cards fail at `limits` every other round: `unfreeze` still runs, nothing is skipped;
        # transfer fails at `create` on odd rounds: its `status` step is skipped.
        if round_no % 2:
            bank.faults.set("transfer", Fault(mode="down", paths=("/payments",)))
        else:
            bank.faults.clear("transfer")
        for result in await asyncio.gather(*(run_journey(plan) for plan in plans)):
            writer.submit(result)
            results.append(result)
    return results


async def test_journeys_into_influxdb_v1(bank: BankServer, influx_db, tmp_path) -> None:
    config = influxdb_config(url=influx_db.url, api="v1", database=influx_db.name, flush_interval="50ms")
    writer = ResultWriter(config, spool_dir=tmp_path)
    await writer.start()
    results = await _run_rounds(bank, writer, "par")
    assert await writer.wait_idle(15)
    await writer.close()

    executed = sum(len(r.executed_steps) for r in results)
    skipped = sum(len(r.steps) - len(r.executed_steps) for r in results)
    assert skipped >= ROUNDS // 2  # the transfer status step of the failing rounds
    assert influx_db.count("check") == len(results)
    assert influx_db.count("step") == executed
    assert influx_db.field_types("check") == {
        "success": "integer", "duration_ms": "float", "failed_step": "string", "error": "string", "steps": "integer",
        "trace_id": "string",  # a field, not a tag: one value per run
    }
    step_types = influx_db.field_types("step")
    for field in ("duration_ms", "dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "transfer_ms"):
        assert step_types[field] == "float"
    assert step_types["success"] == step_types["http_status"] == step_types["bytes"] == "integer"
    tags = {r["tagKey"] for r in influx_db.query('SHOW TAG KEYS FROM "check"')}
    assert tags == {"site", "check", "kind", "location", "outcome", "merchant_country"}
    # The check's own tag (simbank.toml: card-authorisation) is on its check and step points only.
    for measurement in ("check", "step"):
        tagged = influx_db.query(
            f'SELECT "success", "check" FROM "{measurement}" WHERE "merchant_country" = \'DE\'')
        assert {r["check"] for r in tagged} == {"card-authorisation"}
        expected = sum(1 if measurement == "check" else len(r.executed_steps)
                       for r in results if r.check == "card-authorisation")
        assert len(tagged) == expected
    rows = influx_db.query('SELECT mean("success") FROM "check" WHERE "check" = \'transfer\'')
    assert rows[0]["mean"] == 0.5
    failed = influx_db.query(
        'SELECT "failed_step", "error" FROM "check" WHERE "check" = \'transfer\' AND "success" = 0'
    )
    assert {r["failed_step"] for r in failed} == {"create"}
    assert all(r["error"] == "HTTP 503 (expected 201)" for r in failed)


async def test_journeys_into_victoria_metrics_v2(bank: BankServer, victoria_metrics, tmp_path) -> None:
    location = f"vm{time.time_ns()}"
    config = influxdb_config(url=victoria_metrics.url, org="ops", bucket="prober", token="t", flush_interval="50ms")
    writer = ResultWriter(config, spool_dir=tmp_path)
    await writer.start()
    results = await _run_rounds(bank, writer, location)
    assert await writer.wait_idle(15)
    await writer.close()

    checks = victoria_metrics.export(f'{{__name__="check_success",location="{location}"}}')
    assert sum(len(s["values"]) for s in checks) == len(results)
    steps = victoria_metrics.export(f'{{__name__="step_duration_ms",location="{location}"}}')
    assert sum(len(s["values"]) for s in steps) == sum(len(r.executed_steps) for r in results)
    assert {s["metric"]["kind"] for s in checks} == {"login", "accounts", "transfer", "cards", "payments"}
