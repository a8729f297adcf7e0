"""End to end: the writer into a real InfluxDB 1.6 (v1 API) and VictoriaMetrics (v2 API)."""

from __future__ import annotations

import time

from prober.config.influxdb import influxdb_config
from prober.writer import ResultWriter, incident_point, prober_point
from tests.writer_helpers import make_result, result_clock


async def test_v1_into_influxdb(influx_db, tmp_path):
    config = influxdb_config(url=influx_db.url, api="v1", database=influx_db.name, flush_interval="50ms",
                            batch_size=100)
    writer = ResultWriter(config, spool_dir=tmp_path)
    await writer.start()
    for i in range(250):
        writer.submit(make_result("bank-a", ok=i % 5 != 0))
    writer.submit_lines([
        incident_point(site="bank-a", check="accounts daily", kind="accounts", location="par", state="open",
                       reason="3 consecutive failures", failed_step="s1", duration_s=0.0, time_ns=next(result_clock)),
        prober_point(location="par", instance="host-1", time_ns=next(result_clock), checks=1, running=0,
                     schedule_lag_ms=0.4, **{k: v for k, v in vars_of(writer.stats).items()}),
    ])
    assert await writer.wait_idle(10)
    await writer.close()
    assert influx_db.count("check") == 250
    assert influx_db.count("step") == 750
    assert influx_db.count("incident", "duration_s") == 1
    assert influx_db.count("prober", "checks") == 1
    assert writer.stats.written_points == 1002
    assert writer.stats.write_errors == 0 and writer.stats.dropped_points == 0
    assert influx_db.field_types("check") == {
        "success": "integer", "duration_ms": "float", "failed_step": "string", "error": "string", "steps": "integer",
    }
    step_types = influx_db.field_types("step")
    assert step_types["success"] == "integer" and step_types["http_status"] == "integer"
    assert step_types["bytes"] == "integer" and step_types["ttfb_ms"] == "float"
    # availability straight from InfluxQL, as the dashboards compute it
    rows = influx_db.query('SELECT mean("success") FROM "check" WHERE "site" = \'bank-a\'')
    assert abs(rows[0]["mean"] - 0.8) < 1e-9
    tags = influx_db.query('SHOW TAG KEYS FROM "step"')
    assert {r["tagKey"] for r in tags} == {"site", "check", "kind", "step", "location", "outcome"}


def vars_of(stats) -> dict:
    from dataclasses import asdict

    return asdict(stats)


async def test_v2_into_victoria_metrics(victoria_metrics, tmp_path):
    site = f"vm-{time.time_ns()}"
    config = influxdb_config(url=victoria_metrics.url, org="ops", bucket="prober", token="vm-token",
                            flush_interval="50ms", batch_size=64)
    writer = ResultWriter(config, spool_dir=tmp_path)
    await writer.start()
    for i in range(120):
        writer.submit(make_result(site, ok=i % 4 != 0))
    assert await writer.wait_idle(10)
    await writer.close()
    assert writer.stats.written_points == 480 and writer.stats.write_errors == 0
    # VictoriaMetrics keeps numeric fields as {measurement}_{field} series
    checks = victoria_metrics.export(f'{{__name__="check_success",site="{site}"}}')
    assert sum(len(s["values"]) for s in checks) == 120
    assert sorted({s["metric"]["outcome"] for s in checks}) == ["http_status", "ok"]
    assert sum(sum(s["values"]) for s in checks) == 90
    steps = victoria_metrics.export(f'{{__name__="step_duration_ms",site="{site}"}}')
    assert sum(len(s["values"]) for s in steps) == 360
    assert {s["metric"]["step"] for s in steps} == {"s0", "s1", "s2"}
    statuses = victoria_metrics.export(f'{{__name__="step_http_status",site="{site}"}}')
    assert {v for s in statuses for v in s["values"]} == {200, 503}
