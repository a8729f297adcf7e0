"""Nothing is lost: outages, 503/401 answers, rejections, a full spool, the embedded default."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from prober.config.influxdb import InfluxDBConfig, influxdb_config
from prober.writer import ResultWriter, WriterSettings
from prober.writer.spool import Spool
from tests.writer_helpers import FAST, make_result, stream


def v1(url: str, database: str, **extra) -> InfluxDBConfig:
    return influxdb_config(url=url, api="v1", database=database, timeout="2s", **extra)


async def test_influxdb_outage_loses_nothing(influxdb_private, tmp_path):
    server = influxdb_private
    server.create_database("prober")
    writer = ResultWriter(v1(server.url, "prober"), spool_dir=tmp_path, settings=FAST)
    await writer.start()
    n = await stream(writer, "outage", 0.4)
    await asyncio.to_thread(server.stop)
    n += await stream(writer, "outage", 1.0)
    assert writer.stats.spooled_points > 0  # results went to disk while the server was down
    await asyncio.to_thread(server.start)
    n += await stream(writer, "outage", 0.4)
    assert await writer.wait_idle(20)
    await writer.close()
    assert server.count("prober", "check") == n
    assert server.count("prober", "step") == 3 * n
    stats = writer.stats
    assert stats.write_errors > 0 and stats.last_error
    assert stats.dropped_points == 0 and stats.spooled_points == 0
    assert stats.written_points == 4 * n


async def test_503_then_401_then_recovery(fault_proxy, influx_db, tmp_path):
    writer = ResultWriter(v1(fault_proxy.url, influx_db.name), spool_dir=tmp_path, settings=FAST)
    await writer.start()
    n = await stream(writer, "proxy", 0.3)
    fault_proxy.mode = 503
    fault_proxy.retry_after = "0.1"
    n += await stream(writer, "proxy", 0.6)
    fault_proxy.mode = 401
    fault_proxy.retry_after = None
    n += await stream(writer, "proxy", 0.6)
    assert writer.stats.spooled_points > 0
    assert "HTTP 401" in writer.stats.last_error
    fault_proxy.mode = "forward"
    n += await stream(writer, "proxy", 0.3)
    assert await writer.wait_idle(20)
    await writer.close()
    assert fault_proxy.requests.get("503", 0) >= 1 and fault_proxy.requests.get("401", 0) >= 1
    assert influx_db.count("check") == n
    assert influx_db.count("step") == 3 * n
    assert writer.stats.dropped_points == 0


async def test_400_is_rejected_counted_and_not_retried(fault_proxy, influx_db, tmp_path):
    writer = ResultWriter(v1(fault_proxy.url, influx_db.name), spool_dir=tmp_path, settings=FAST)
    await writer.start()
    fault_proxy.mode = 400
    fault_proxy.body = '{"error":"unable to parse \'x\': invalid field format"}'
    for _ in range(5):
        writer.submit(make_result("rejected"))
    await writer.flush()
    await asyncio.sleep(0.5)  # time enough for retries, were there any
    assert fault_proxy.requests == {"400": 1}
    stats = writer.stats
    assert stats.dropped_points == 20 and stats.spooled_points == 0 and stats.write_errors == 1
    assert "HTTP 400" in stats.last_error
    await writer.close()
    rows = sqlite3.connect(writer.spool_path).execute("SELECT reason, points, lines FROM rejected").fetchall()
    assert len(rows) == 1 and rows[0][1] == 20 and "HTTP 400" in rows[0][0]
    assert rows[0][2].count("\n") == 19


async def test_partial_write_from_real_influxdb(influx_db, tmp_path):
    writer = ResultWriter(v1(influx_db.url, influx_db.name), spool_dir=tmp_path, settings=FAST)
    await writer.start()
    writer.submit_lines(["m v=1i 1"])
    await writer.flush()
    writer.submit_lines(['m v="text" 2', "m v=3i 3"])  # field type conflict: one point dropped
    await writer.flush()
    stats = writer.stats
    assert stats.dropped_points == 1 and stats.written_points == 2 and stats.spooled_points == 0
    assert "partial write" in stats.last_error
    await writer.close()
    assert influx_db.count("m", "v") == 2
    assert sqlite3.connect(writer.spool_path).execute("SELECT points FROM rejected").fetchall() == [(2,)]


def test_full_spool_drops_the_oldest(tmp_path):
    spool = Spool(tmp_path, max_bytes=1000)
    dropped = 0
    for i in range(30):
        dropped += spool.put(f"m v={i}i {i}".ljust(100, " "), 10)
    assert spool.bytes <= 1000 and spool.batches == 10
    assert dropped == 200 and spool.points == 100
    oldest = spool.oldest()
    assert oldest is not None and oldest.lines.startswith("m v=20i")  # the 20 oldest went first
    spool.close()
    again = Spool(tmp_path, max_bytes=1000)  # totals survive a restart
    assert (again.batches, again.points) == (10, 100)
    again.close()


async def test_full_spool_in_the_writer_counts_and_logs_once(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="prober.writer")
    writer = ResultWriter(None, spool_dir=tmp_path,
                          settings=WriterSettings(spool_max_mb=0.01, batch_size=10, flush_interval=0.01))
    await writer.start()
    total = 0
    for _ in range(40):
        for _ in range(10):
            writer.submit(make_result("full"))
            total += 4
        await writer.flush()
    await writer.close()
    stats = writer.stats
    assert stats.dropped_points > 0
    assert Spool(tmp_path, 1 << 20).points + stats.dropped_points == total
    full_lines = [r for r in caplog.records if "spool full" in r.getMessage()]
    assert len(full_lines) == 1  # rate-limited, not one line per batch


async def test_embedded_default_spools_then_a_later_start_replays(influx_db, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="prober.writer")
    writer = ResultWriter(None, spool_dir=tmp_path, settings=WriterSettings(flush_interval=0.02))
    await writer.start()
    assert "local spool only" in caplog.text and str(tmp_path) in caplog.text
    for _ in range(50):
        writer.submit(make_result("embedded"))
    await writer.close(timeout=5)
    assert writer.stats.spooled_points == 200
    assert influx_db.count("check") == 0
    writer = ResultWriter(v1(influx_db.url, influx_db.name), spool_dir=tmp_path, settings=FAST)
    await writer.start()
    assert await writer.wait_idle(10)
    await writer.close()
    assert influx_db.count("check") == 50 and influx_db.count("step") == 150


async def test_close_spools_what_cannot_be_written(influxdb_private, tmp_path):
    influxdb_private.create_database("prober")
    url = influxdb_private.url
    influxdb_private.stop()
    writer = ResultWriter(v1(url, "prober"), spool_dir=tmp_path,
                          settings=WriterSettings(flush_interval=60.0, batch_size=5000))
    await writer.start()
    for _ in range(30):
        writer.submit(make_result("closing"))
    await writer.close(timeout=1)  # buffer never flushed by interval: close must not lose it
    assert writer.stats.spooled_points == 120
    writer.submit(make_result("late"))  # after close: refused, counted, never raises
    assert writer.stats.dropped_points == 4


async def test_logs_and_errors_never_contain_secrets(fault_proxy, influx_db, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    password, token = "PW-do-not-log-41", "TOKEN-do-not-log-42"
    config = influxdb_config(url=fault_proxy.url, api="v1", database=influx_db.name, username="prober",
                            password=password, timeout="1s")
    fault_proxy.mode = 401
    writer = ResultWriter(config, spool_dir=tmp_path / "a", settings=FAST)
    await writer.start()
    writer.submit(make_result("secret"))
    await writer.flush()
    await asyncio.sleep(0.2)
    await writer.close()
    v2 = influxdb_config(url="http://127.0.0.1:9", org="o", bucket="b", token=token, timeout="1s")
    writer2 = ResultWriter(v2, spool_dir=tmp_path / "b", settings=FAST)
    await writer2.start()
    writer2.submit(make_result("secret"))
    await writer2.flush()
    await writer2.close()
    assert writer.stats.write_errors >= 1 and writer2.stats.write_errors >= 1
    text = caplog.text + writer.stats.last_error + writer2.stats.last_error + repr(config) + repr(v2)
    assert password not in text and token not in text
    assert "UFctZG8tbm90" not in text  # nor the basic-auth header value


class AlwaysFailingSink:
    """A sink whose database never accepts a write (as InfluxDB answering 503 for ever)."""

    description = "always-failing"

    def __init__(self) -> None:
        self.writes = 0

    async def start(self) -> None:
        pass

    async def write(self, body: str, points: int):
        from prober.writer.sinks import WriteResult, WriteStatus

        self.writes += 1
        await asyncio.sleep(0)
        return WriteResult(WriteStatus.RETRY, "HTTP 503")

    async def close(self) -> None:
        pass


async def test_background_loops_end_on_stop_even_if_a_cancellation_is_lost(tmp_path):
    # On Python 3.11 `asyncio.wait_for` can swallow a cancellation that races with its
    # inner wait finishing; the loops must then still end, not retry without backoff
    # for ever (a hung shutdown, a database hammered).
    sink = AlwaysFailingSink()
    writer = ResultWriter(v1("http://127.0.0.1:9", "db"), spool_dir=tmp_path, sink=sink, settings=FAST)
    await writer.start()
    writer.submit(make_result("stop"))
    await asyncio.sleep(0.3)
    assert sink.writes >= 2  # failing, backing off, retrying
    assert writer._stop is not None and writer._wake is not None and writer._replay is not None
    assert writer._journal_task is not None and writer._replay.task is not None
    writer._stop.set()  # what close() does before cancelling; here the cancellation never comes
    tasks = [writer._journal_task, writer._replay.task]
    writer._wake.set()
    done, pending = await asyncio.wait(tasks, timeout=2)
    assert not pending
    writes = sink.writes
    await asyncio.sleep(0.2)
    assert sink.writes == writes
    await writer.close(timeout=1)
    assert writer.stats.spooled_points == 4


def test_spool_journal_rows_are_held_merged_and_deleted(tmp_path):
    spool = Spool(tmp_path, max_bytes=1 << 20)
    ids, dropped = spool.append([("m v=1i 1", 1), ("m v=2i 2", 1)], hold=True)  # one commit, two rows
    assert dropped == 0 and len(ids) == 2 and spool.held_points == 2
    assert spool.oldest(10) is None  # held rows belong to the sender that holds them
    spool.put("m v=3i 3", 1, "ms")
    spool.release(tuple(ids))
    batch = spool.take_oldest(10)  # merges rows of one precision, holds them
    assert batch is not None
    assert batch.ids == tuple(ids) and batch.lines == "m v=1i 1\nm v=2i 2" and batch.points == 2
    second = spool.take_oldest(10)
    assert second is not None and second.precision == "ms" and spool.take_oldest(10) is None
    assert spool.delete(batch) == 2 and spool.points == 1 and spool.held_points == 1
    spool.close()
    again = Spool(tmp_path, max_bytes=1 << 20)  # a restart holds nothing: everything is replayed
    replayed = again.oldest(10)
    assert replayed is not None and replayed.lines == "m v=3i 3"
    again.close()
