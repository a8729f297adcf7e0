"""``prober run``'s first steps, without starting a daemon: the options against
``[daemon]``, and the configuration refused before anything starts (pure, no servers).
The daemon's whole life, with real ``prober run`` processes, is in the other
tests/test_daemon_*.py files."""

from __future__ import annotations

from pathlib import Path

import pytest

from prober.config.daemon import DaemonConfig
from prober.daemon.lifecycle import EXIT_CONFIG, RunOptions, load_for_run, run
from prober.daemon.sharding import Share
from tests.daemon_helpers import SITE


def test_options_beat_the_daemon_section() -> None:
    settings = DaemonConfig.model_validate({"workers": 3})
    assert RunOptions().supervises(settings) and RunOptions().worker_count(settings) == 3
    assert not RunOptions(workers=1).supervises(settings)
    assert RunOptions(workers=2).supervises(DaemonConfig())
    # a worker never supervises, whatever [daemon] workers says
    assert not RunOptions(worker=Share("worker", 1, 3)).supervises(settings)


def test_the_shares_this_process_runs() -> None:
    shard, worker = Share("shard", 2, 3), Share("worker", 1, 2)
    assert RunOptions().shares == []
    assert RunOptions(shard=Share("shard", 1, 1)).shares == []  # 1/1 is every site
    assert RunOptions(shard=shard, worker=worker).shares == [shard, worker]
    assert RunOptions(worker=worker).shares == [worker]


@pytest.mark.parametrize(("extra", "message"), [
    ('[daemon]\nhealth_listen = "0.0.0.0:9480"\n', "config error: FILE: daemon.health_listen: "),
    ("[daemon]\nworkers = 0\n", "config error: FILE: daemon.workers: "),
])
def test_a_refused_configuration_stops_before_anything_starts(tmp_path: Path, capsys, extra: str,
                                                               message: str) -> None:
    path = tmp_path / "prober.toml"
    path.write_text(extra + SITE)
    assert load_for_run(path, None) is None
    assert capsys.readouterr().err.startswith(message.replace("FILE", str(path)))
    assert run(path) == EXIT_CONFIG
    assert capsys.readouterr().err.startswith(message.replace("FILE", str(path)))
    path.write_text(SITE)
    assert load_for_run(path, None) is not None and capsys.readouterr().err == ""
