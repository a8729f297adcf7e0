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
* **Confirmed**: at least *required* live locations fail; it resolves when fewer than
  *required* fail.
* **Start and end** (:func:`pooled_start`, :func:`pooled_end`): estimated from the
  *pooled* runs of the failing locations (the ``check`` points of the failing checks,
  merged in time order, :class:`RunsWindow` says which), by the maximum-likelihood split
  of the per-location tracker (:func:`~prober.incidents.tracker.rate_start`,
  :func:`~prober.incidents.tracker.rate_end`). Its first guess, kept unless a split of
  the pooled runs is clearly better, is the earliest start among the failing
  locations, and the first pooled success after the last pooled failure. Without the
  pooled runs (InfluxDB did not answer the second read), the start is the earliest
  start among the failing locations and the end the resolution that brought the count
  below *required* (:func:`resolution_time`).
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

from prober.incidents.tracker import CLOSED_MARK, rate_end, rate_start
from prober.results import KINDS, IncidentState

SiteKind = tuple[str, str]
Run = tuple[bool, int]
"""``(failed, at_ns)`` of one counted run, as in the tracker's window."""


@dataclass(frozen=True, slots=True)
class LocationState:
    """The latest ``incident`` point of one check at one location."""

    site: str
    check: str
    kind: str
    location: str
    state: IncidentState
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


def decide(
    states: Iterable[LocationState], live_locations: Iterable[str], confirm: int | str
) -> dict[SiteKind, Decision]:
    """Per site × capability seen in ``states``: which live locations fail, confirmed or not.

    Incidents that are not about a capability (kind ``certificate``: each prober's own
    certificates, announced by the prober that has them) are left out."""
    alive = tuple(sorted(set(live_locations)))
    need = required(confirm, len(alive))
    grouped: dict[SiteKind, list[LocationState]] = {}
    for state in states:
        if state.kind not in KINDS:
            continue
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
    ended: str = ""
    """Why it ended without a recovery: every location that stopped failing had its
    incidents closed (their checks no longer probed), none saw the capability back."""

    @property
    def duration_s(self) -> float:
        return max(0.0, ((self.resolved_ns or self.since_ns) - self.since_ns) / 1e9)


def incident_id(site: str, kind: str, since_ns: int) -> str:
    """Stable across instances: the same site, capability and start give the same id."""
    return hashlib.sha1(f"{site}\0{kind}\0{since_ns}".encode()).hexdigest()[:12]


def closing(incident: CrossIncident, states: Iterable[LocationState]) -> str:
    """Why ``incident`` ends without a recovery, when every resolved ``incident`` point of
    its site × capability at its counted locations closed an incident (its reason carries
    :data:`~prober.incidents.tracker.CLOSED_MARK`); "" when any saw it back."""
    counted = _counted(incident)
    reasons = [s.reason for s in states if s.site == incident.site and s.kind == incident.kind
               and s.location in counted and s.state == "resolved"]
    if not reasons or not all(CLOSED_MARK in reason for reason in reasons):
        return ""
    return reasons[0].split(CLOSED_MARK, 1)[1]


def resolution_time(incident: CrossIncident, states: Iterable[LocationState], now_ns: int) -> int:
    """When fewer than ``incident.required`` of its locations still failed.

    Each location that failed is back at the latest resolution among its checks of the
    capability; with ``m`` locations and ``k`` required, the count fell below ``k`` at the
    ``m - k + 1``-th of those. Only the locations still live count (one that stopped
    reporting says nothing about the end); one not back yet counts as back ``now``.
    """
    counted = _counted(incident)
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


@dataclass(frozen=True, slots=True)
class RunsWindow:
    """Which runs to pool for one site × capability: the ``check`` points of ``checks`` at
    ``locations`` between ``start_ns`` and ``end_ns`` (inclusive)."""

    site: str
    kind: str
    checks: tuple[str, ...]
    locations: tuple[str, ...]
    start_ns: int
    end_ns: int


POOL_SPAN_MAX_S = 6 * 3600.0
"""The longest stretch read on either side of a per-location estimate (bounds the read
after a long incident)."""


def around(estimate_ns: int, now_ns: int, floor_ns: int = 0, span_max_s: float = POOL_SPAN_MAX_S) -> tuple[int, int]:
    """``(start, end)``: as long a stretch before ``estimate_ns`` as there is after it up
    to ``now_ns`` (at most ``span_max_s``), never before ``floor_ns``.

    At the opening the stretch after the start holds the failing runs that confirmed it,
    and as many calm ones before it let the split weigh one rate against the other; at
    the resolution, the calm runs after the end weigh against as many failing ones.
    """
    span = min(max(now_ns - estimate_ns, 0), int(span_max_s * 1e9))
    return max(estimate_ns - span, floor_ns), min(estimate_ns + span, now_ns)


def pooled_start(runs: list[Run], since_ns: int, min_failures: int) -> int:
    """The start of the failing part of the pooled ``runs`` (merged across locations, in
    time order): the maximum-likelihood split of :func:`~prober.incidents.tracker.rate_start`,
    whose first guess is the first failure at or after ``since_ns`` (the earliest start
    among the locations). ``since_ns`` when no run failed from it on.
    """
    default = next((i for i, (bad, at) in enumerate(runs) if bad and at >= since_ns), None)
    if default is None:
        return since_ns
    return runs[rate_start(runs, default, 0, min_failures)][1]


def pooled_end(runs: list[Run], end_ns: int, min_failures: int) -> int:
    """The end of the failing part of the pooled ``runs``: the maximum-likelihood split of
    :func:`~prober.incidents.tracker.rate_end`, whose first guess is the first success
    after the last failure. ``end_ns`` (the per-location estimate) when the runs do not
    show an end: none failed, or the last one did.
    """
    last = max((i for i, (bad, _) in enumerate(runs) if bad), default=None)
    if last is None or last == len(runs) - 1:
        return end_ns
    return runs[rate_end(runs, last + 1, min_failures)][1]


EventKind = Literal["opened", "reminder", "resolved"]


@dataclass(frozen=True, slots=True)
class CrossEvent:
    event: EventKind
    incident: CrossIncident
    at_ns: int


@dataclass
class Consensus:
    """The open cross-location incidents and their transitions (see the module docstring).

    ``min_failures`` is the least number of pooled failures a failing part holds
    (``open_after`` of ``[incidents]``, as in the tracker).
    """

    open: dict[SiteKind, CrossIncident] = field(default_factory=dict)
    min_failures: int = 3
    resolved: dict[SiteKind, int] = field(default_factory=dict)
    """The end of the latest incident resolved here per site × capability: the runs of
    the next one are read from after it."""

    def adopt(self, incidents: Mapping[SiteKind, CrossIncident]) -> None:
        """Take the open incidents another instance wrote (when this one starts acting)."""
        for key, incident in incidents.items():
            self.open.setdefault(key, incident)

    def windows(self, decisions: Mapping[SiteKind, Decision], states: Iterable[LocationState],
                now_ns: int) -> dict[SiteKind, RunsWindow]:
        """The runs to pool for the incidents :meth:`step` would open or resolve now."""
        states = list(states)
        out: dict[SiteKind, RunsWindow] = {}
        for key, decision in decisions.items():
            if decision.confirmed and key not in self.open:
                start, end = around(decision.since_ns, now_ns, self.resolved.get(key, 0))
                out[key] = RunsWindow(decision.site, decision.kind, decision.checks, decision.failing, start, end)
        for key, incident in self.open.items():
            if key in decisions and decisions[key].confirmed:
                continue
            incident = self._closing(incident, decisions.get(key))
            start, end = around(resolution_time(incident, states, now_ns), now_ns, incident.since_ns)
            out[key] = RunsWindow(incident.site, incident.kind, incident.checks, _counted(incident), start, end)
        return out

    @staticmethod
    def _closing(incident: CrossIncident, decision: Decision | None) -> CrossIncident:
        """``incident`` with the live locations and requirement of its last decision."""
        if decision is None:
            return incident
        return replace(incident, live=decision.live, required=decision.required)

    def step(self, decisions: Mapping[SiteKind, Decision], states: Iterable[LocationState], now_ns: int,
             remind_every_s: float | None = None, runs: Mapping[SiteKind, list[Run]] | None = None) -> list[CrossEvent]:
        """Apply one round of decisions; the events to write and notify.

        ``runs``: the pooled runs of the :meth:`windows` asked for, when they could be
        read; an incident without them is dated by the per-location estimates.
        """
        states = list(states)
        runs = runs or {}
        events: list[CrossEvent] = []
        for key, decision in decisions.items():
            current = self.open.get(key)
            if decision.confirmed and current is None:
                since = decision.since_ns
                if key in runs:
                    since = pooled_start(runs[key], since, self.min_failures)
                incident = CrossIncident(
                    id=incident_id(decision.site, decision.kind, since), site=decision.site,
                    kind=decision.kind, since_ns=since, locations=decision.failing,
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
            end = resolution_time(incident, states, now_ns)
            incident.ended = closing(incident, states)
            if key in runs and not incident.ended:  # closed: no passing run to date an end by
                end = max(incident.since_ns, pooled_end(runs[key], end, self.min_failures))
            incident.resolved_ns = end
            self.resolved[key] = end
            events.append(CrossEvent("resolved", incident, now_ns))
        return events


def _counted(incident: CrossIncident) -> tuple[str, ...]:
    """The locations whose runs date the end of ``incident``: those that failed and are still live."""
    return tuple(loc for loc in incident.locations if loc in incident.live) or incident.locations
