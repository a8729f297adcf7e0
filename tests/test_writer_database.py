"""An InfluxDB 1.x database that does not exist, against the real InfluxDB 1.6: created
when `create_database = true`, otherwise one clear error naming it, `last_error` saying
what to do, and the results kept in the spool until it exists."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os

import pytest

from prober.config.influxdb import influxdb_config
from prober.writer import ResultWriter
from tests.writer_helpers import FAST, stream

_names = itertools.count()


def fresh_name() -> str:
    return f"absent_{os.getpid()}_{next(_names)}"


async def until(predicate, seconds: float = 20.0) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not predicate():
        if loop.time() > end:
            return False
        await asyncio.sleep(0.05)
    return True


def databases(server) -> set[str]:
    return {row["name"] for row in server.query("SHOW DATABASES")}


async def test_missing_database_is_reported_once_and_results_wait_in_the_spool(influxdb_v1, tmp_path, caplog):
    name = fresh_name()
    config = influxdb_config(url=influxdb_v1.url, api="v1", database=name, timeout="2s")
    writer = ResultWriter(config, spool_dir=tmp_path, settings=FAST)
    await writer.start()
    with caplog.at_level(logging.ERROR, logger="prober.writer"):
        n = await stream(writer, "nodb", 0.5)
        assert await until(lambda: writer.stats.write_errors >= 3)
    stats = writer.stats
    assert stats.last_error == (
        f"database {name!r} does not exist on InfluxDB {influxdb_v1.url}: create it (CREATE DATABASE) "
        "or set [influxdb] create_database = true; results are kept in the spool"
    )
    assert stats.spooled_points > 0 and stats.dropped_points == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [stats.last_error]  # once, however many writes failed
    assert name not in databases(influxdb_v1)  # never created behind the operator's back

    influxdb_v1.create_database(name)
    try:
        assert await writer.wait_idle(20)
        await writer.close()
        assert influxdb_v1.count(name, "check") == n
        assert writer.stats.dropped_points == 0
    finally:
        influxdb_v1.drop_database(name)


async def test_create_database_creates_it_and_writes(influxdb_v1, tmp_path, caplog):
    name = fresh_name()
    config = influxdb_config(url=influxdb_v1.url, api="v1", database=name, timeout="2s", create_database=True)
    writer = ResultWriter(config, spool_dir=tmp_path, settings=FAST)
    await writer.start()
    try:
        with caplog.at_level(logging.WARNING, logger="prober.writer"):
            n = await stream(writer, "createdb", 0.3)
            assert await writer.wait_idle(20)
        await writer.close()
        assert name in databases(influxdb_v1)
        assert influxdb_v1.count(name, "check") == n
        assert writer.stats.write_errors == 0 and writer.stats.dropped_points == 0
        assert any(f"created database {name!r}" in r.getMessage() for r in caplog.records)
    finally:
        influxdb_v1.drop_database(name)


def test_create_database_is_v1_only():
    with pytest.raises(ValueError, match="create_database\n  Extra inputs are not permitted"):
        influxdb_config(url="http://127.0.0.1:1", org="o", bucket="b", token="t", create_database=True)
