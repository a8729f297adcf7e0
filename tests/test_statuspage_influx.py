"""Daily uptime from a real InfluxDB 1.x through InfluxQL, and the fallback to the local
aggregate when InfluxDB cannot answer."""

from __future__ import annotations

import logging
import socket
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from prober.config.influxdb import influxdb_config
from prober.results import JourneyResult, Outcome
from prober.statuspage.history import DailyHistory
from prober.statuspage.influx import InfluxHistory, InfluxQueryError, parse_answer

pytestmark = pytest.mark.servers
DAY = 86400


def _write(url: str, db: str, lines: list[str]) -> None:
    request = urllib.request.Request(f"{url}/write?db={db}&precision=s", data="\n".join(lines).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


def _line(site: str, kind: str, outcome: str, at: int) -> str:
    success = 1 if outcome == "ok" else 0
    return (
        f"check,site={site},check=c,kind={kind},location=local,outcome={outcome} success={success}i,duration_ms=1 {at}"
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _local() -> DailyHistory:
    local = DailyHistory("/nonexistent")
    local.consume(JourneyResult(site="local-only", check="c", kind="login", location="l", outcome=Outcome.OK,
                                started_at_ns=time.time_ns(), duration_ms=1.0))
    return local


async def test_daily_uptime_from_influxql(influx_db) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    noon = (
        int(today.timestamp()) + 12 * 3600
        if time.time() > today.timestamp() + 12 * 3600
        else int(today.timestamp()) + 60
    )
    lines = [_line("bank-a", "accounts", "ok", noon - 2 * DAY + i) for i in range(4)]
    lines += [_line("bank-a", "accounts", o, noon - DAY + i) for i, o in enumerate(["ok", "ok", "ok", "timeout"])]
    lines += [_line("bank-a", "accounts", "skipped", noon - DAY + 10 + i) for i in range(2)]  # not counted
    lines += [_line("bank-a", "login", "ok", noon), _line("bank-a", "accounts", "ok", noon - 40 * DAY)]
    _write(influx_db.url, influx_db.name, lines)
    source = InfluxHistory(influxdb_config(url=influx_db.url, api="v1", database=influx_db.name),
                           _local())
    series = await source.daily(3)
    assert set(series) == {("bank-a", "accounts"), ("bank-a", "login")}
    assert [(d.runs, d.failures) for d in series[("bank-a", "accounts")]] == [(4, 0), (4, 1), (0, 0)]
    assert series[("bank-a", "accounts")][1].uptime == 0.75
    assert [d.day for d in series[("bank-a", "login")]] == [(today - timedelta(days=n)).date() for n in (2, 1, 0)]
    assert source.name.startswith("InfluxDB (v1 http://127.0.0.1:")


@pytest.mark.parametrize("where", ["closed port", "unknown database"])
async def test_falls_back_to_the_local_aggregate(influx_db, caplog: pytest.LogCaptureFixture, where: str) -> None:
    url = f"http://127.0.0.1:{_closed_port()}" if where == "closed port" else influx_db.url
    config = influxdb_config(url=url, api="v1", database="no_such_db", username="prober", password="hunter2-secret")
    source = InfluxHistory(config, _local(), timeout=2.0)
    with caplog.at_level(logging.WARNING, logger="prober.statuspage"):
        series = await source.daily(2)
        await source.daily(2)
    assert set(series) == {("local-only", "login")} and series[("local-only", "login")][-1].runs == 1
    assert source.name.startswith("the prober's local state (InfluxDB: ")
    warnings = [r.getMessage() for r in caplog.records if "cannot read the uptime history" in r.getMessage()]
    assert len(warnings) == 1 and "hunter2" not in caplog.text  # logged once, no credential


def test_parse_answer_rejects_errors_and_skips_junk() -> None:
    with pytest.raises(InfluxQueryError, match="database not found"):
        parse_answer({"results": [{"statement_id": 0, "error": "database not found: x"}]})
    with pytest.raises(InfluxQueryError):
        parse_answer([1, 2])
    doc = {"results": [{"series": [
        {"tags": {"site": "a", "kind": "login"}, "columns": ["time", "runs", "ok"],
         "values": [["2026-03-10T00:00:00Z", 10, 9], ["junk", 1, 1], ["2026-03-11T00:00:00Z", None, None]]},
        {"tags": {"site": "b"}, "columns": ["time"], "values": [["2026-03-10T00:00:00Z"]]},
    ]}]}
    assert parse_answer(doc) == {("a", "login"): {datetime(2026, 3, 10).date(): (10, 1)}}
