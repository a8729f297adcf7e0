"""The loaded configuration is kept out of garbage collections while the service runs."""

from __future__ import annotations

import gc
from pathlib import Path

from prober.daemon.heap import YOUNG_THRESHOLD
from prober.daemon.service import ProberService
from prober.loading import load
from prober.simbank import BankServer
from prober.writer.writer import ResultWriter
from tests.daemon_helpers import check, config_text


def _collected(obj: object) -> bool:
    """Whether later collections walk ``obj`` (frozen objects are not listed)."""
    return any(o is obj for o in gc.get_objects())


async def test_config_frozen_after_start_and_reload(bank: BankServer, tmp_path: Path) -> None:
    path = tmp_path / "prober.toml"
    path.write_text(config_text(bank.url, [check("login", interval="10s")], daemon={"state_dir": str(tmp_path / "s")}))
    first = load(path)
    service = ProberService(first, writer=ResultWriter(None, spool_dir=tmp_path / "spool"))
    threshold = gc.get_threshold()
    assert gc.is_tracked(first.plans[0]) and _collected(first.plans[0])
    await service.start()
    try:
        assert not _collected(first.plans[0]) and not _collected(service.scheduler)
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        path.write_text(path.read_text().replace('interval = "10s"', 'interval = "20s"'))
        second = load(path)
        assert _collected(second.plans[0])
        service.reload(second)
        assert not _collected(second.plans[0])
    finally:
        await service.stop(grace=1.0)
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == threshold


async def test_a_reload_before_the_start_freezes_nothing(bank: BankServer, tmp_path: Path) -> None:
    """Nothing would thaw it: a service never started is never stopped. Such a reload left
    the collector's thresholds raised and the process's heap frozen for the rest of the
    test run (found when another test of the same worker process saw them)."""
    path = tmp_path / "prober.toml"
    path.write_text(config_text(bank.url, [check("login")], daemon={"state_dir": str(tmp_path / "s")}))
    service = ProberService(load(path), writer=ResultWriter(None, spool_dir=tmp_path / "spool"))
    threshold = gc.get_threshold()
    service.reload(load(path))
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == threshold


async def test_the_start_up_collection_runs_before_any_run_is_armed(bank: BankServer, tmp_path: Path) -> None:
    """The full collection that freezes the configuration takes tenths of a second with a
    large one: made after the first runs were armed, it delayed every run due meanwhile
    (their schedule lag), at every start."""
    path = tmp_path / "prober.toml"
    path.write_text(config_text(bank.url, [check("login", interval="10s")], daemon={"state_dir": str(tmp_path / "s")}))
    service = ProberService(load(path), writer=ResultWriter(None, spool_dir=tmp_path / "spool"))
    armed_during_full_collections: list[bool] = []

    def record(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 2:
            armed_during_full_collections.append(service.scheduler.scheduling)

    gc.callbacks.append(record)
    try:
        await service.start()
    finally:
        gc.callbacks.remove(record)
        await service.stop(grace=1.0)
    assert armed_during_full_collections and not any(armed_during_full_collections), armed_during_full_collections
