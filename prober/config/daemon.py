"""The ``[daemon]`` section: how ``prober run`` schedules, reports and shuts down.

Example (every key optional; these are the defaults)::

    [daemon]
    health_listen = "127.0.0.1:9480"   # GET /healthz, GET /status; "" disables it
    log_level = "info"                 # debug, info, warning, error
    log_format = "plain"               # or "json" (one object per line, for shippers)
    # max_concurrency = 200            # cap on journeys at once; default: what the checks need
    grace_period = "20s"               # on SIGTERM, how long running journeys may finish
    self_report_interval = "10s"       # how often the `prober` measurement is written
    jitter = 1.0                       # fraction of the interval used to spread first runs
    lockout_after = 3                  # consecutive auth failures of a site before backing off
    # lockout_first_pause = "30s"      # first pause; default: the site's shortest check interval
    lockout_cooldown = "15m"           # longest pause (each refused probe doubles it up to this)
    state_dir = "var/state"            # kept across restarts: lockout, incidents, resolved incidents, uptime history
    workers = 1                        # processes sharing the sites (one per core); see below
    worker_stall_timeout = "60s"       # a worker whose health endpoint answers nothing this long is restarted
    # max_browser_concurrency = 2      # browser journeys at once (default: one per core)
    chromium = "/usr/bin/chromium"     # the browser browser checks drive
    evidence_runs = 10                 # failed browser runs whose screenshot and trace are kept, per check
    evidence_max_size = "50MiB"        # and at most this many bytes of them, per check

``workers`` above 1 makes ``prober run`` a supervisor of that many worker processes,
the sites split among them by a stable hash of their names (``prober run --workers N``
overrides it; :mod:`prober.daemon.sharding`). The supervisor asks each worker's health
endpoint every few seconds; a worker that answers nothing at all (any status counts as an
answer: a worker whose InfluxDB is down is alive) for ``worker_stall_timeout`` is stuck
(an event loop that no longer turns) and is killed and restarted. ``health_listen`` is then
the supervisor's: it answers ``/healthz`` and ``/status`` for every worker
(:mod:`prober.daemon.workers`), and worker k listens on its port + k.

Changes to this section and to ``[influxdb]`` take effect at the next start; a reload
(SIGHUP) applies the ``[[sites]]`` only and logs that a restart is needed for the rest.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from prober.config.types import STRICT, ByteSize, Duration


def _check_listen(value: str) -> str:
    if value == "":
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f'invalid address {value!r}: write "HOST:PORT" such as "127.0.0.1:9480", or "" to disable')
    return value


def split_listen(value: str) -> tuple[str, int] | None:
    """``"HOST:PORT"`` (checked by :func:`_check_listen`) as ``(host, port)``; ``""`` → None.
    An IPv6 host may be bracketed: ``"[::1]:9480"``."""
    if not value:
        return None
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


class DaemonConfig(BaseModel):
    """Settings of the long-running prober (``prober run``)."""

    model_config = STRICT

    health_listen: str = "127.0.0.1:9480"
    """``HOST:PORT`` of the health server (``/healthz``, ``/status``); port 0 picks a free
    port; ``""`` disables it. IPv6 hosts are written in brackets: ``"[::1]:9480"``."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["plain", "json"] = "plain"
    max_concurrency: int | None = Field(default=None, ge=1, le=100_000)
    """Cap on journeys running at once, across every site. Unset (the default), it is
    the sum of the sites' own limits, so no site ever waits for another. Set lower, it
    is divided among the sites in proportion to their limits (at least one slot each):
    every site keeps its own share, and a hanging bank only ever holds its share. It
    must be at least the number of sites with enabled checks. See
    :mod:`prober.daemon.slots`."""
    grace_period: Duration = 20.0
    """On SIGTERM/SIGINT, how long running journeys (cleanup steps included) may finish
    before they are cancelled."""
    self_report_interval: Duration = 10.0
    jitter: float = Field(default=1.0, ge=0.0, le=1.0)
    """Fraction of each check's interval over which first runs are spread (by a hash of
    location, site and check, so restarts keep the same spread and two locations probe a
    bank at different instants). Each run also gets a small random
    delay of up to 5% of the interval (at most 1 s)."""
    lockout_after: int = Field(default=3, ge=1, le=1000)
    """Consecutive runs of a site failing with outcome ``auth`` before all its checks
    back off, so the prober never locks the test customer out."""
    lockout_first_pause: Duration | None = None
    """How long a site backs off before one run probes again (see
    :mod:`prober.daemon.lockout`); unset, the site's shortest check interval. Each probe
    refused again doubles the pause, up to ``lockout_cooldown``."""
    lockout_cooldown: Duration = 900.0
    """The longest pause: a site whose credentials stopped working is probed this often."""
    state_dir: str = "var/state"
    """Where the lockout and incident state, the recently resolved incidents, the
    cross-location incidents' previous ends, rotated refresh tokens (``tokens/``) and the
    status page's daily uptime are kept across restarts (relative to the working
    directory unless absolute)."""

    workers: int = Field(default=1, ge=1, le=256)
    """Worker processes of ``prober run`` (1: the prober runs in one process). Each worker
    runs the checks of its share of the sites, with its own spool and state directory
    (``worker-<k>/`` below ``spool_dir`` and ``state_dir``), instance name
    (``<instance>-w<k>``) and health listener (``health_listen``'s port + k: the port
    itself is the supervisor's, which answers for every worker). A site is never split:
    a configuration with fewer sites than workers leaves some idle."""
    worker_stall_timeout: Duration = 60.0
    """With ``workers`` above 1 and a health listener on a fixed port: how long a worker's
    health endpoint may answer nothing before the supervisor kills and restarts it. The
    supervisor asks every ``worker_stall_timeout / 4`` seconds (at most every 5 s)."""

    max_browser_concurrency: int | None = Field(default=None, ge=1, le=256)
    """Browser journeys running at once in this process (each holds a browser context,
    tens of MB of memory and a good share of a core while it runs). Unset: one per core
    (:func:`browser_concurrency`). Browser runs beyond it wait for a slot, within their
    journey's timeout."""
    chromium: str = "/usr/bin/chromium"
    """The Chromium executable browser checks drive (Debian's ``chromium`` package)."""
    evidence_runs: int = Field(default=10, ge=0, le=10_000)
    """Failed browser runs of a check whose evidence (screenshot, trace) is kept under
    ``state_dir/evidence/``; the oldest go first. 0 keeps none."""
    evidence_max_size: ByteSize = 50 << 20
    """Most bytes of evidence kept per check; the oldest runs' files go first."""

    @property
    def browser_concurrency(self) -> int:
        """``max_browser_concurrency``, or one per core when unset."""
        return self.max_browser_concurrency or max(1, os.cpu_count() or 1)

    @field_validator("jitter", mode="before")
    @classmethod
    def _int_is_fraction(cls, value: object) -> object:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    check_listen = field_validator("health_listen")(_check_listen)

    def listen_address(self) -> tuple[str, int] | None:
        """``(host, port)`` of the health server, or None when disabled."""
        return split_listen(self.health_listen)
