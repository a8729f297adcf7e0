"""The state of each bank capability, from the open incidents of its checks.

A site is never summed up as "down" or "up": each capability (``login``, ``accounts``,
``transfer``, ``cards``, ``payments``, ``custom``) has its own state, and a bank whose
login works while transfers fail is a *partial outage of transfer*.

State of one site × kind:

* ``ok`` — no check of that kind has an open incident;
* ``degraded`` — some of its checks (or locations) fail, the failures are
  intermittent (a flapping incident), or the journeys work but too slowly (an
  incident made only of ``slow`` runs);
* ``outage`` — every check of that kind, at every location that runs it, has a steady
  open incident of failures (not only slowness);
* ``unknown`` — no check of that kind has reported yet.

Incidents about something that is not a capability (kind ``certificate``: a certificate
nearing its expiry, the service still working) never change a capability's state. An
incident decided outside the tracker whose cause fails every check of its capability
(rule in :data:`CAPABILITY_WIDE_RULES`: the prober's own certificate expired, so the
bank refuses every connection that presents it) makes the capability an ``outage`` by
itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from prober.incidents.tracker import CheckKey, Incident
from prober.results import KINDS

State = Literal["ok", "degraded", "outage", "unknown"]

UNUSABLE_CERTIFICATE = "unusable certificate"
"""The rule of an incident opened because a certificate the prober presents or signs with
has expired or is not valid yet (:mod:`prober.daemon.certificates`)."""
CAPABILITY_WIDE_RULES = frozenset({UNUSABLE_CERTIFICATE})
"""Rules of incidents that put their capability in outage on their own."""


@dataclass(frozen=True, slots=True)
class CapabilityState:
    """One site × capability: its state, since when, and its open incidents (oldest first)."""

    site: str
    kind: str
    state: State
    incidents: tuple[Incident, ...] = ()
    since_ns: int | None = None
    """When it entered its state: the start of its oldest open incident while failing,
    its last incident's end while ok (None: ok since the prober started, as far as it
    knows, or not known to the caller)."""

    @property
    def failing(self) -> bool:
        return self.state in ("degraded", "outage")


def capability_states(
    checks: Iterable[tuple[CheckKey, str]], incidents: Iterable[Incident],
    last_end_ns: Mapping[tuple[str, str], int] | None = None,
) -> dict[tuple[str, str], CapabilityState]:
    """``(site, kind) → state`` for every site × kind that has a check.

    ``checks`` are the known ``(key, kind)`` pairs (configured or seen); ``last_end_ns``
    when each site × kind's last incident was resolved (the ``since`` of an ok state).
    """
    last_end_ns = last_end_ns or {}
    members: dict[tuple[str, str], set[CheckKey]] = {}
    for key, kind in checks:
        members.setdefault((key.site, kind), set()).add(key)
    open_by: dict[tuple[str, str], list[Incident]] = {}
    for incident in incidents:
        if incident.kind not in KINDS:  # a certificate expiring: the capabilities still work
            continue
        open_by.setdefault((incident.site, incident.kind), []).append(incident)
        members.setdefault((incident.site, incident.kind), set()).add(
            CheckKey(incident.site, incident.check, incident.location)
        )
    states: dict[tuple[str, str], CapabilityState] = {}
    for (site, kind), keys in members.items():
        found = sorted(open_by.get((site, kind), []), key=lambda i: i.since_ns)
        if not found:
            state: State = "ok"
            since = last_end_ns.get((site, kind))
        else:
            failing = {CheckKey(i.site, i.check, i.location) for i in found}
            steady = all(not i.flapping and not i.slow for i in found)
            wide = any(i.rule in CAPABILITY_WIDE_RULES for i in found)
            state = "outage" if wide or (failing >= keys and steady) else "degraded"
            since = found[0].since_ns
        states[(site, kind)] = CapabilityState(site, kind, state, tuple(found), since)
    return states


def site_summary(site: str, states: Mapping[tuple[str, str], CapabilityState]) -> str:
    """One line about a site, by capability, e.g.
    ``partial outage: transfer (outage), cards (degraded); ok: login, accounts``."""
    mine = sorted((s for (name, _), s in states.items() if name == site), key=lambda s: KINDS.index(s.kind))
    failing = [s for s in mine if s.failing]
    fine = [s.kind for s in mine if s.state == "ok"]
    if not failing:
        return "all checked capabilities ok: " + ", ".join(fine) if fine else "no results yet"
    listed = ", ".join(f"{s.kind} ({s.state})" for s in failing)
    if fine:
        return f"partial outage: {listed}; ok: {', '.join(fine)}"
    return f"every checked capability failing: {listed}"
