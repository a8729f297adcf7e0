"""The incidents resolved lately, per site × capability, kept across restarts.

What the status page lists under "recently resolved" (and the Atom feed, and ``/status``)
and the "operational since" of a capability that is ok: both must survive a restart, or
a deployment would wipe the incident history customers read.

Bounded, since the daemon runs for months: per site × capability the latest
:data:`KEPT_PER_CAPABILITY` resolved incidents, none that ended more than
:data:`MAX_AGE_S` ago, and at most :data:`MAX_CAPABILITIES` site × capabilities (those
whose last incident ended longest ago go first). The time the latest incident of a
capability ended is kept apart from the list, not aged out, one per site × capability.

Kept in ``<state_dir>/resolved_incidents.json`` (:class:`~prober.incidents.store.StateStore`:
atomic, a corrupt or unknown file is reported and ignored). The owner saves it after a
change, in a worker thread (:meth:`ResolvedIncidents.snapshot` on the event loop,
:meth:`ResolvedIncidents.write` in the thread).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prober.incidents.store import StateStore
from prober.incidents.tracker import Incident

log = logging.getLogger("prober.incidents")

KEPT_PER_CAPABILITY = 10
"""Resolved incidents kept per site × capability."""
MAX_AGE_S = 90 * 86400.0
"""Resolved incidents older than this (by their end) are dropped: the status page's
default history of 90 days."""
MAX_CAPABILITIES = 5000
"""Site × capabilities kept at most (a configuration has far fewer)."""

SiteKind = tuple[str, str]


class ResolvedIncidents:
    """The latest resolved incidents per site × capability (see the module docstring)."""

    def __init__(self, state_dir: str | Path, *, per_capability: int = KEPT_PER_CAPABILITY,
                 max_age_s: float = MAX_AGE_S, clock: Callable[[], int] = time.time_ns) -> None:
        self.per_capability = per_capability
        self.max_age_ns = int(max_age_s * 1e9)
        self.clock = clock
        self.store = StateStore(state_dir, "resolved_incidents.json", key="capabilities",
                                what="resolved incident history", empty="the status page lists no resolved incident "
                                "from before this start")
        self.incidents: dict[SiteKind, deque[Incident]] = {}
        """Per site × capability, oldest first."""
        self.last_end: dict[SiteKind, int] = {}
        """Per site × capability, when its latest incident was resolved."""
        self.dirty = False

    def add(self, incident: Incident) -> None:
        """Keep a resolved incident (its ``resolved_ns`` set)."""
        if incident.resolved_ns is None:
            return
        key = (incident.site, incident.kind)
        kept = self.incidents.get(key)
        if kept is None:
            kept = self.incidents[key] = deque(maxlen=self.per_capability)
        kept.append(incident)
        self.last_end[key] = max(self.last_end.get(key, 0), incident.resolved_ns)
        self._prune()
        self.dirty = True

    def recent(self, limit: int) -> list[Incident]:
        """The ``limit`` latest resolved incidents, the latest end first."""
        oldest = self.clock() - self.max_age_ns
        kept = [i for items in self.incidents.values() for i in items if (i.resolved_ns or 0) >= oldest]
        return sorted(kept, key=lambda i: (i.resolved_ns or 0, i.since_ns), reverse=True)[:limit]

    # ── persistence ────────────────────────────────────────────────────────────────
    def load(self) -> None:
        """Read the saved history (blocking: at start). Malformed entries are skipped and
        counted in one logged line."""
        self.restore(self.store.load())

    def restore(self, data: dict[str, Any]) -> None:
        skipped = 0
        for text, item in data.items():
            site, sep, kind = str(text).partition("\x1f")
            if not sep or not isinstance(item, dict):
                skipped += 1
                continue
            kept: deque[Incident] = deque(maxlen=self.per_capability)
            for doc in item.get("incidents") or []:
                try:
                    incident = Incident.from_json(doc)
                except (TypeError, ValueError):
                    skipped += 1
                    continue
                if _whole(incident.since_ns) and _whole(incident.resolved_ns) and (incident.site, incident.kind) == (
                        site, kind):
                    kept.append(incident)
                else:
                    skipped += 1
            ends = [i.resolved_ns or 0 for i in kept]
            if _whole(item.get("last_end")):
                ends.append(item["last_end"])
            if ends:
                self.last_end[(site, kind)] = max(ends)
            if kept:
                self.incidents[(site, kind)] = kept
        if skipped:
            log.error("resolved incident history %s: %d malformed entries ignored", self.store.path, skipped)
        self._prune()

    def snapshot(self) -> dict[str, Any]:
        """What :meth:`write` saves (cheap: taken on the event loop, written in a thread)."""
        self.dirty = False
        return {
            f"{site}\x1f{kind}": {"last_end": self.last_end.get((site, kind)),
                                  "incidents": [i.to_json() for i in self.incidents.get((site, kind), ())]}
            for site, kind in self.last_end.keys() | self.incidents.keys()
        }

    def write(self, snapshot: dict[str, Any]) -> None:
        """Save ``snapshot`` atomically; raises ``OSError``."""
        self.store.save(snapshot)

    def _prune(self) -> None:
        oldest = self.clock() - self.max_age_ns
        for key in list(self.incidents):
            kept = self.incidents[key]
            while kept and (kept[0].resolved_ns or 0) < oldest:
                kept.popleft()
            if not kept:
                del self.incidents[key]
        if len(self.last_end) > MAX_CAPABILITIES:
            for key in sorted(self.last_end, key=self.last_end.__getitem__)[:len(self.last_end) - MAX_CAPABILITIES]:
                del self.last_end[key]
                self.incidents.pop(key, None)


def _whole(value: object) -> bool:
    """An integer (nanoseconds), not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)
