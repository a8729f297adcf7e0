"""The writer's tuning: what the configuration sets, what only tests and benchmarks change."""

from __future__ import annotations

import dataclasses

import pytest

from prober.config.influxdb import SpoolConfig, influxdb_config
from prober.writer import ResultWriter, WriterSettings


def test_settings_come_from_the_configuration_with_tuning_on_top() -> None:
    config = influxdb_config(url="http://127.0.0.1:9", api="v1", database="db", batch_size=123,
                             flush_interval="250ms", spool_max_mb=7)
    settings = WriterSettings.from_config(config, max_in_flight=5)
    assert (settings.batch_size, settings.flush_interval, settings.spool_max_mb) == (123, 0.25, 7)
    assert settings.max_in_flight == 5 and settings.backoff_max == WriterSettings().backoff_max
    assert WriterSettings.from_config(None) == WriterSettings.from_config(SpoolConfig()) == WriterSettings()
    assert ResultWriter(config).settings == WriterSettings.from_config(config)
    assert ResultWriter(config, settings=settings).settings is settings


def test_settings_are_frozen_and_journal_no_slower_than_they_flush() -> None:
    settings = WriterSettings(flush_interval=0.02)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.batch_size = 1  # type: ignore[misc]  # frozen: the point of the test
    assert settings.journal_every == 0.02  # journal_interval (50 ms) is capped by flush_interval
    assert WriterSettings().journal_every == 0.05
    assert settings.replace(journal_interval=0.01).journal_every == 0.01
    assert WriterSettings(spool_max_mb=0.5).spool_max_bytes == 512 * 1024
