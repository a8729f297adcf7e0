"""Persistence of state that must survive a restart: one JSON file per kind of state.

Each file, ``<state_dir>/<name>``, holds ``{"version": 1, "<key>": {...}}`` and is
replaced atomically (:func:`prober.atomic.write_atomic`), so a crash leaves the old or
the new state, never half of one. The incident tracker keeps ``incidents.json`` (an
incident open before a restart is the same incident after it: no second "opened", and
its "resolved" still comes); other parts of the daemon keep their own files through the
same class.

A file that cannot be read, is not JSON, or has another version or shape is *reported*
(one error line naming the file and what is lost) and ignored: the daemon starts with
empty state rather than not at all.
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
    """One state file: :meth:`load` the saved document, :meth:`save` a new one atomically.

    ``what`` names the state in messages (``"incident state"``), ``empty`` says what an
    unreadable file costs (``"starting with no open incidents"``), ``key`` is the
    document's key in the file.
    """

    def __init__(self, state_dir: str | Path, name: str = "incidents.json", *, key: str = "checks",
                 what: str = "incident state", empty: str = "starting with no open incidents") -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / name
        self.key = key
        self.what = what
        self.empty = empty

    def load(self) -> dict[str, Any]:
        """The saved document, or ``{}`` when there is none (or it is unreadable: logged)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("%s %s is unreadable (%s); %s", self.what, self.path, exc, self.empty)
            return {}
        if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get(self.key), dict):
            found = data.get("version") if isinstance(data, dict) else None
            log.error("%s %s has an unknown format (version %r, expected %d with %r); %s",
                      self.what, self.path, found, VERSION, self.key, self.empty)
            return {}
        return data[self.key]

    def save(self, document: dict[str, Any]) -> None:
        """Atomically replace the saved document; raises ``OSError``."""
        body = json.dumps({"version": VERSION, self.key: document}, separators=(",", ":"))
        write_atomic(self.path, body.encode())
