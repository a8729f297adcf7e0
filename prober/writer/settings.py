"""The writer's tuning, in one frozen object (as httpx's ``Limits`` and ``Timeout``).

``[influxdb]`` (or the embedded default's spool settings) gives ``batch_size``,
``flush_interval`` and ``spool_max_mb``; the rest are the writer's own and only tests
and benchmarks change them::

    ResultWriter(config)                                              # all from [influxdb]
    ResultWriter(config, settings=WriterSettings.from_config(config, max_in_flight=4))
    ResultWriter(None, settings=WriterSettings(flush_interval=0.05, backoff_max=0.3))
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from prober.config.influxdb import DEFAULT_SPOOL_MAX_MB, InfluxDBConfig, SpoolConfig

__all__ = ["JOURNAL_INTERVAL", "MEMORY_MAX_POINTS", "SPOOL_RETRY_INTERVAL", "WriterSettings"]

JOURNAL_INTERVAL = 0.05
"""Seconds between spool commits of new points: the durability bound, commit time aside."""
MEMORY_MAX_POINTS = 100_000
"""Points kept in memory at most while the spool fails and InfluxDB does not take them."""
SPOOL_RETRY_INTERVAL = 5.0
"""Seconds between attempts to use a spool that failed (open, commit)."""


@dataclass(frozen=True, slots=True)
class WriterSettings:
    """How the writer batches, journals, retries and bounds its memory."""

    batch_size: int = SpoolConfig.model_fields["batch_size"].default
    """Points per write; a full batch is sent at once."""
    flush_interval: float = SpoolConfig.model_fields["flush_interval"].default
    """Seconds a batch that is not full waits before it is sent."""
    spool_max_mb: float = DEFAULT_SPOOL_MAX_MB
    """Spool size limit; beyond it the oldest batches are dropped (and counted)."""
    journal_interval: float = JOURNAL_INTERVAL
    """Seconds between spool commits of new points (at most ``flush_interval``)."""
    max_in_flight: int = 2
    """Writes to InfluxDB at once (new batches and, in free slots, the spool's)."""
    backoff_base: float = 0.5
    """First wait of the replay after a failed write, in seconds (doubling, with jitter)."""
    backoff_max: float = 60.0
    """Longest wait of the replay between attempts, in seconds."""
    memory_max_points: int = MEMORY_MAX_POINTS
    """Points kept in memory at most while the spool fails, and journaled points waiting
    in memory for a send (beyond that they wait in the spool)."""
    log_interval: float = 60.0
    """Seconds between two log lines of the same kind (the others are counted)."""

    @classmethod
    def from_config(cls, config: InfluxDBConfig | SpoolConfig | None, **tuning: Any) -> WriterSettings:
        """The settings ``config`` gives (``None``: the embedded default's), ``tuning`` on top."""
        spool = SpoolConfig() if config is None else config if isinstance(config, SpoolConfig) else config.spool
        base = {"batch_size": spool.batch_size, "flush_interval": spool.flush_interval,
                "spool_max_mb": spool.spool_max_mb}
        return cls(**{**base, **tuning})

    @property
    def journal_every(self) -> float:
        """Seconds between journal commits: ``journal_interval``, at most ``flush_interval``."""
        return min(self.journal_interval, self.flush_interval)

    @property
    def spool_max_bytes(self) -> int:
        return int(self.spool_max_mb * 1024 * 1024)

    def replace(self, **tuning: Any) -> WriterSettings:
        """These settings with ``tuning`` changed."""
        return dataclasses.replace(self, **tuning)
