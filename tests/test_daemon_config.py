"""The [daemon] section: defaults, durations, and exact messages for invalid values."""

from __future__ import annotations

from pathlib import Path

import pytest

from prober.config.daemon import DaemonConfig
from prober.config.errors import ConfigError
from prober.loading import load
from tests.daemon_helpers import SITE


def _load(tmp_path: Path, daemon: str):
    path = tmp_path / "p.toml"
    path.write_text(f"[daemon]\n{daemon}\n{SITE}")
    return load(path)


def test_defaults(tmp_path: Path) -> None:
    daemon = _load(tmp_path, "").config.daemon
    assert daemon == DaemonConfig()
    assert daemon.health_listen == "127.0.0.1:9480" and daemon.listen_address() == ("127.0.0.1", 9480)
    assert (daemon.max_concurrency, daemon.grace_period, daemon.self_report_interval) == (None, 20.0, 10.0)
    assert (daemon.jitter, daemon.lockout_after, daemon.lockout_cooldown) == (1.0, 3, 900.0)
    assert daemon.lockout_first_pause is None  # the site's shortest check interval
    assert daemon.log_format == "plain" and daemon.state_dir == "var/state"


def test_values(tmp_path: Path) -> None:
    daemon = _load(tmp_path, 'health_listen = "[::1]:0"\ngrace_period = "1m30s"\njitter = 0\n'
                             'lockout_cooldown = "2h"\nlockout_first_pause = "45s"\nlog_format = "json"').config.daemon
    assert daemon.listen_address() == ("::1", 0)
    assert daemon.grace_period == 90.0 and daemon.jitter == 0.0 and daemon.lockout_cooldown == 7200.0
    assert daemon.lockout_first_pause == 45.0
    assert _load(tmp_path, 'health_listen = ""').config.daemon.listen_address() is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("max_concurrency = 0", "daemon.max_concurrency: Input should be greater than or equal to 1"),
        ("grace_period = 20", 'daemon.grace_period: expected a duration string such as "30s", got int 20'),
        ('grace_period = "0s"', "daemon.grace_period: duration '0s' is out of range: allowed 1ms to 7d"),
        ("jitter = 1.5", "daemon.jitter: Input should be less than or equal to 1"),
        ('log_format = "xml"', "daemon.log_format: Input should be 'plain' or 'json'"),
        ('health_listen = "9480"', 'daemon.health_listen: invalid address \'9480\': write "HOST:PORT"'),
        ("lockout_after = 0", "daemon.lockout_after: Input should be greater than or equal to 1"),
        ("interval = \"1s\"", "daemon.interval: unknown key"),
    ],
)
def test_invalid(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, line)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(f"{tmp_path / 'p.toml'}: {message}"), info.value.problems
