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

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from prober.incidents.tracker import CheckKey, Incident
from prober.results import KINDS
from prober.timefmt import utc_iso

State = Literal["ok", "degraded", "outage", "unknown"]

UNUSABLE_CERTIFICATE = "unusable certificate"
"""The rule of an incident opened because a certificate the prober presents or signs with
has expired or is not valid yet (:mod:`prober.daemon.certificates`)."""
CAPABILITY_WIDE_RULES = frozenset({UNUSABLE_CERTIFICATE})
"""Rules of incidents that put their capability in outage on their own."""


@dataclass(frozen=True, slots=True)
class CapabilityState:
    site: str
    kind: str
    state: State
    incidents: tuple[Incident, ...] = ()

    @property
    def failing(self) -> bool:
        return self.state in ("degraded", "outage")


def capability_states(
    checks: Iterable[tuple[CheckKey, str]], incidents: Iterable[Incident]
) -> dict[tuple[str, str], CapabilityState]:
    """``(site, kind) → state`` for every site × kind that has a check.

    ``checks`` are the known ``(key, kind)`` pairs (configured or seen).
    """
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
        found = open_by.get((site, kind), [])
        if not found:
            state: State = "ok"
        else:
            failing = {CheckKey(i.site, i.check, i.location) for i in found}
            steady = all(not i.flapping and not i.slow for i in found)
            wide = any(i.rule in CAPABILITY_WIDE_RULES for i in found)
            state = "outage" if wide or (failing >= keys and steady) else "degraded"
        states[(site, kind)] = CapabilityState(site, kind, state, tuple(found))
    return states


def site_summary(site: str, states: dict[tuple[str, str], CapabilityState]) -> str:
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


def _iso(ns: int | None) -> str | None:
    return utc_iso(ns / 1e9) if ns else None


def incident_document(incident: Incident) -> dict:
    """An incident as ``/status`` and the status page show it (already redacted text)."""
    return {
        "id": incident.id,
        "site": incident.site,
        "kind": incident.kind,
        "check": incident.check,
        "location": incident.location,
        "since": _iso(incident.since_ns),
        "resolved_at": _iso(incident.resolved_ns),
        "duration_s": round(incident.duration_s, 3),
        "failed_step": incident.failed_step,
        "outcome": incident.outcome,
        "error": incident.error,
        "flapping": incident.flapping,
    }


def status_document(
    states: dict[tuple[str, str], CapabilityState], changed_ns: dict[tuple[str, str], int] | None = None
) -> dict[str, dict]:
    """``{site: {"summary": ..., "capabilities": {kind: {"state", "since", "incidents"}}}}``.

    ``since`` is when the capability entered its state: the start of its oldest open
    incident while failing, the last resolution while ok (``None``: ok since the prober
    started, as far as it knows). ``changed_ns`` holds those resolution times.
    """
    changed_ns = changed_ns or {}
    sites = sorted({site for site, _ in states})
    out: dict[str, dict] = {}
    for site in sites:
        capabilities = {}
        for (name, kind), state in sorted(states.items(), key=lambda item: KINDS.index(item[0][1])):
            if name != site:
                continue
            since = min((i.since_ns for i in state.incidents), default=None) if state.failing else changed_ns.get((site, kind))
            capabilities[kind] = {
                "state": state.state,
                "since": _iso(since),
                "incidents": [incident_document(i) for i in sorted(state.incidents, key=lambda i: i.since_ns)],
            }
        out[site] = {"summary": site_summary(site, states), "capabilities": capabilities}
    return out
