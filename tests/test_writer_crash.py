"""A prober SIGKILLed with results in the spool: the next start writes every one of them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from prober.config.influxdb import influxdb_config
from prober.writer import ResultWriter, WriterSettings

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from prober.config.influxdb import influxdb_config
    from prober.writer import ResultWriter, WriterSettings
    from tests.writer_helpers import make_result

    async def main(url, spool_dir, n):
        config = influxdb_config(url=url, api="v1", database="prober", timeout="1s")
        fast = WriterSettings(flush_interval=0.02, batch_size=25, backoff_base=0.05, backoff_max=0.2)
        writer = ResultWriter(config, spool_dir=spool_dir, settings=fast)
        await writer.start()
        for _ in range(n):
            writer.submit(make_result("crash"))
            await asyncio.sleep(0)
        while writer.stats.spooled_points < 4 * n:
            await asyncio.sleep(0.02)
        print("SPOOLED", writer.stats.spooled_points, flush=True)
        await asyncio.sleep(3600)  # killed here, never closed

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


async def test_sigkill_then_restart_writes_every_spooled_point(influxdb_private, tmp_path):
    server = influxdb_private
    server.create_database("prober")
    server.stop()  # InfluxDB down while the first prober runs
    spool_dir = tmp_path / "spool"
    n = 300
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, server.url, str(spool_dir), str(n)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )
    try:
        assert child.stdout is not None and child.stderr is not None  # both piped
        line = child.stdout.readline()
        assert line.startswith("SPOOLED"), child.stderr.read() if child.poll() is not None else line
        assert int(line.split()[1]) == 4 * n
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL

    server.start()
    config = influxdb_config(url=server.url, api="v1", database="prober")
    writer = ResultWriter(config, spool_dir=spool_dir, settings=WriterSettings(flush_interval=0.05))
    await writer.start()
    assert await writer.wait_idle(20)
    await writer.close()
    assert server.count("prober", "check") == n
    assert server.count("prober", "step") == 3 * n
    assert writer.stats.written_points == 4 * n and writer.stats.dropped_points == 0
