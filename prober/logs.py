"""Logging setup: plain text for people, JSON lines for log shippers.

Log records never carry secrets: messages are built from names, outcomes and redacted
error strings only.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Literal

from prober.timefmt import utc_iso

LogFormat = Literal["plain", "json"]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (+ exception type, and the
    instance of a shard or worker)."""

    def __init__(self, instance: str = "") -> None:
        super().__init__()
        self.instance = instance

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": utc_iso(record.created, millis=True),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.instance:
            data["instance"] = self.instance
        if record.exc_info and record.exc_info[0] is not None:
            data["exception"] = record.exc_info[0].__name__
        return json.dumps(data, ensure_ascii=False)


def setup_logging(level: str = "info", fmt: LogFormat = "plain", instance: str = "") -> None:
    """Configure the root logger once, to stderr. ``instance`` names the shard or worker
    on every line (the workers of one ``prober run --workers N`` share its stderr)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(instance))
    else:
        who = f"[{instance}] " if instance else ""
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)-7s {who}%(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # APScheduler's lines on every job it runs, only when debugging.
    logging.getLogger("apscheduler").setLevel(logging.NOTSET if level == "debug" else logging.WARNING)
