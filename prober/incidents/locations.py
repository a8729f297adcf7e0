"""Deciding across probe locations: one incident per bank × capability, confirmed when
``k`` of the live locations fail.

Pure logic, no I/O: the daemon's consensus loop (:mod:`prober.daemon.locations`) reads
from InfluxDB what every prober instance wrote and hands it here.

* **Per-location state** (:class:`LocationState`): the latest ``incident`` point of each
  site × check × kind × location. A location *fails* a site × capability when any check
  of that capability has its latest point ``open`` there.
* **Live locations** (:func:`live`): the locations with a ``prober`` self-report newer
  than ``stale_after``. A location that stopped reporting neither fails nor counts.
* **Required** (:func:`required`): ``confirm`` (``k``), capped at the number of live
  locations so that losing a location never blinds the others; ``"all"`` is every live
  location.
* **Confirmed**: at least *required* live locations fail. A confirmed cross-location
  incident starts at the earliest start among its failing locations; it resolves when
  fewer than *required* fail, dated by the resolution that brought the count below it.
* **Who acts** (:func:`acting`): the live instance whose ``(location, instance)`` sorts
  first; it alone writes the ``incident_locations`` points
  (:mod:`prober.daemon.locations_influx`) and notifies. When it stops
  reporting, the next one takes over after ``stale_after`` and adopts the open
  incidents from the latest ``incident_locations`` points.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

SiteKind = tuple[str, str]


@dataclass(frozen=True, slots=True)
class LocationState:
    """The latest ``incident`` point of one check at one location."""

    site: str
    check: str
    kind: str
    location: str
    state: Literal["open", "resolved"]
    at_ns: int
    """The point's time: the incident's start (open) or its end (resolved)."""
    reason: str = ""
    failed_step: str = ""


@dataclass(frozen=True, slots=True)
class Reporter:
    """A prober instance and the time of its latest ``prober`` self-report."""

    location: str
    instance: str
    last_ns: int


def live(reporters: Iterable[Reporter], now_ns: int, stale_after_s: float) -> list[Reporter]:
    """The reporters heard from within ``stale_after_s``, in ``(location, instance)`` order."""
    limit = now_ns - int(stale_after_s * 1e9)
    return sorted((r for r in reporters if r.last_ns >= limit), key=lambda r: (r.location, r.instance))


def acting(reporters: Iterable[Reporter], now_ns: int, stale_after_s: float) -> Reporter | None:
    """The live instance that acts on the decisions (the first in ``(location, instance)`` order)."""
    alive = live(reporters, now_ns, stale_after_s)
    return alive[0] if alive else None


def required(confirm: int | str, live_count: int) -> int:
    """How many live locations must fail to confirm (at least 1)."""
    if confirm == "all":
        return max(1, live_count)
    return max(1, min(int(confirm), live_count))


@dataclass(frozen=True, slots=True)
class Decision:
    """One site × capability across locations."""

    site: str
    kind: str
    failing: tuple[str, ...]
    """Live locations where some check of the capability has an open incident."""
    live: tuple[str, ...]
    required: int
    since_ns: int
    """Earliest start among the failing locations' open incidents (0 when none fail)."""
    checks: tuple[str, ...] = ()
    reason: str = ""
    failed_step: str = ""

    @property
    def confirmed(self) -> bool:
        return bool(self.live) and len(self.failing) >= self.required

    def to_json(self) -> dict:
        return {"site": self.site, "kind": self.kind, "failing": list(self.failing), "live": list(self.live),
                "required": self.required, "confirmed": self.confirmed}


def decide(states: Iterable[LocationState], live_locations: Iterable[str], confirm: int | str) -> dict[SiteKind, Decision]:
    """Per site × capability seen in ``states``: which live locations fail, confirmed or not."""
    alive = tuple(sorted(set(live_locations)))
    need = required(confirm, len(alive))
    grouped: dict[SiteKind, list[LocationState]] = {}
    for state in states:
        grouped.setdefault((state.site, state.kind), []).append(state)
    out: dict[SiteKind, Decision] = {}
    for (site, kind), items in sorted(grouped.items()):
        failing_states = sorted((s for s in items if s.state == "open" and s.location in alive),
                                key=lambda s: (s.at_ns, s.location, s.check))
        first = failing_states[0] if failing_states else None
        out[(site, kind)] = Decision(
            site=site, kind=kind, failing=tuple(sorted({s.location for s in failing_states})), live=alive,
            required=need, since_ns=first.at_ns if first else 0,
            checks=tuple(sorted({s.check for s in failing_states})),
            reason=first.reason if first else "", failed_step=first.failed_step if first else "",
        )
    return out


@dataclass(slots=True)
class CrossIncident:
    """A confirmed incident of one site × capability across locations."""

    id: str
    site: str
    kind: str
    since_ns: int
    locations: tuple[str, ...]
    """Every location that failed during the incident."""
    checks: tuple[str, ...]
    reason: str
    failed_step: str
    live: tuple[str, ...] = ()
    required: int = 1
    resolved_ns: int | None = None
    notified_ns: int = 0
    """When it was last notified (opened or reminder)."""

    @property
    def duration_s(self) -> float:
        return max(0.0, ((self.resolved_ns or self.since_ns) - self.since_ns) / 1e9)


def incident_id(site: str, kind: str, since_ns: int) -> str:
    """Stable across instances: the same site, capability and start give the same id."""
    return hashlib.sha1(f"{site}\0{kind}\0{since_ns}".encode()).hexdigest()[:12]


def resolution_time(incident: CrossIncident, states: Iterable[LocationState], now_ns: int) -> int:
    """When fewer than ``incident.required`` of its locations still failed.

    Each location that failed is back at the latest resolution among its checks of the
    capability; with ``m`` locations and ``k`` required, the count fell below ``k`` at the
    ``m - k + 1``-th of those. Only the locations still live count (one that stopped
    reporting says nothing about the end); one not back yet counts as back ``now``.
    """
    counted = [loc for loc in incident.locations if loc in incident.live] or list(incident.locations)
    back: dict[str, int] = {}
    still: set[str] = set()
    for s in states:
        if s.site != incident.site or s.kind != incident.kind or s.location not in counted:
            continue
        if s.state == "open":
            still.add(s.location)
        else:
            back[s.location] = max(back.get(s.location, 0), s.at_ns)
    ends = sorted(back.get(loc, now_ns) if loc not in still else now_ns for loc in counted)
    index = min(max(len(ends) - incident.required, 0), len(ends) - 1)
    return max(incident.since_ns, ends[index] if ends else now_ns)


EventKind = Literal["opened", "reminder", "resolved"]


@dataclass(frozen=True, slots=True)
class CrossEvent:
    event: EventKind
    incident: CrossIncident
    at_ns: int


@dataclass
class Consensus:
    """The open cross-location incidents and their transitions (see the module docstring)."""

    open: dict[SiteKind, CrossIncident] = field(default_factory=dict)

    def adopt(self, incidents: Mapping[SiteKind, CrossIncident]) -> None:
        """Take the open incidents another instance wrote (when this one starts acting)."""
        for key, incident in incidents.items():
            self.open.setdefault(key, incident)

    def step(self, decisions: Mapping[SiteKind, Decision], states: Iterable[LocationState], now_ns: int,
             remind_every_s: float | None = None) -> list[CrossEvent]:
        """Apply one round of decisions; the events to write and notify."""
        states = list(states)
        events: list[CrossEvent] = []
        for key, decision in decisions.items():
            current = self.open.get(key)
            if decision.confirmed and current is None:
                incident = CrossIncident(
                    id=incident_id(decision.site, decision.kind, decision.since_ns), site=decision.site,
                    kind=decision.kind, since_ns=decision.since_ns, locations=decision.failing,
                    checks=decision.checks, reason=decision.reason, failed_step=decision.failed_step,
                    live=decision.live, required=decision.required, notified_ns=now_ns)
                self.open[key] = incident
                events.append(CrossEvent("opened", incident, now_ns))
            elif decision.confirmed and current is not None:
                current.locations = tuple(sorted(set(current.locations) | set(decision.failing)))
                current.checks = tuple(sorted(set(current.checks) | set(decision.checks)))
                current.live, current.required = decision.live, decision.required
                if remind_every_s and now_ns - current.notified_ns >= remind_every_s * 1e9:
                    current.notified_ns = now_ns
                    events.append(CrossEvent("reminder", replace(current), now_ns))
        for key in [k for k in self.open if not (k in decisions and decisions[k].confirmed)]:
            incident = self.open.pop(key)
            if key in decisions:
                incident.live, incident.required = decisions[key].live, decisions[key].required
            incident.resolved_ns = resolution_time(incident, states, now_ns)
            events.append(CrossEvent("resolved", incident, now_ns))
        return events
