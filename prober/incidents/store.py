"""Persistence of the tracker: open incidents and windows survive a restart.

One JSON file, ``<state_dir>/incidents.json``, replaced atomically
(:func:`prober.atomic.write_atomic`), so a crash leaves the old or the new
state, never half of one. An incident open before a restart is the same incident after
it: no second "opened", and its "resolved" still comes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from prober.atomic import write_atomic

log = logging.getLogger("prober.incidents")

VERSION = 1


class StateStore:
    def __init__(self, state_dir: str | Path, name: str = "incidents.json") -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / name

    def load(self) -> dict[str, Any]:
        """The saved tracker state, or ``{}`` when there is none (or it is unreadable)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("incident state %s is unreadable (%s); starting with no open incidents", self.path, exc)
            return {}
        if not isinstance(data, dict) or data.get("version") != VERSION:
            log.error("incident state %s has an unknown format; starting with no open incidents", self.path)
            return {}
        return data.get("checks", {})

    def save(self, checks: dict[str, Any]) -> None:
        """Atomically replace the saved state."""
        body = json.dumps({"version": VERSION, "checks": checks}, separators=(",", ":"))
        write_atomic(self.path, body.encode())
