"""The ``[status_page]`` section: the status page, its JSON twin, Atom feed and badges.

Example (every key optional; these are the defaults)::

    [status_page]
    enabled = true
    listen = ""                  # "" = on [daemon] health_listen; or its own "HOST:PORT"
    public = false               # true: only names, states and times (for customers)
    title = "Bank status"
    refresh = "30s"              # the page reloads itself (meta refresh)
    history_days = 90            # daily uptime bars per capability
    history = "auto"             # auto: from InfluxDB when [influxdb] is set | influxdb | local
    base_url = ""                # absolute address of the page, for the Atom feed's links

The page is served on the health listener (bound to localhost by default) unless
``listen`` gives it its own address. ``public = true`` is what a bank can put in front of
customers; the default, internal view adds each failing check's step, outcome, error
text (escaped), latency and location.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from prober.config.daemon import _check_listen, split_listen
from prober.config.types import STRICT, Duration


class StatusPageConfig(BaseModel):
    """Settings of the status page (see the module docstring)."""

    model_config = STRICT

    enabled: bool = True
    listen: str = ""
    """``HOST:PORT`` of a listener of its own; ``""`` serves the page on ``health_listen``."""
    public: bool = False
    title: str = Field(default="Bank status", min_length=1, max_length=200)
    refresh: Duration = Field(default=30.0, ge=1.0, le=3600.0)
    history_days: int = Field(default=90, ge=1, le=400)
    history: Literal["auto", "influxdb", "local"] = "auto"
    """Where the daily uptime bars come from: ``influxdb`` (InfluxQL ``/query`` on the
    ``[influxdb]`` server, the prober's own aggregate when it cannot answer), ``local``
    (the aggregate the prober keeps in ``state_dir``), ``auto`` (InfluxDB when there is
    an ``[influxdb]`` section)."""
    base_url: str = ""
    """Where readers reach the page (``https://status.example.net/``); the Atom feed's
    links are made absolute with it, relative to the request's host otherwise."""

    check_listen = field_validator("listen")(_check_listen)

    def listen_address(self) -> tuple[str, int] | None:
        """``(host, port)`` of the page's own listener, or None (on the health listener)."""
        return split_listen(self.listen)
