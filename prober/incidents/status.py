"""What the incident service shows of itself at one moment: :class:`IncidentStatus`.

Typed, for whoever reads it in the process (the status page, the demo's live view);
``/status`` turns it into JSON at the HTTP edge with :meth:`IncidentStatus.to_json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prober.incidents.capability import CapabilityState, site_summary
from prober.incidents.tracker import Incident
from prober.results import KINDS
from prober.timefmt import utc_iso


@dataclass(frozen=True, slots=True)
class IncidentStatus:
    """Each site × capability's state and since when, the open incidents and the recently
    resolved ones. The incidents are copies: the tracker's own go on changing."""

    capabilities: Mapping[tuple[str, str], CapabilityState]
    """``(site, kind)`` → its state, for every site × capability that has a check or an
    open incident; each with its open incidents, oldest first."""
    open: tuple[Incident, ...]
    """Every open incident, oldest first."""
    recent: tuple[Incident, ...]
    """The latest resolved incidents, the latest end first."""

    @property
    def sites(self) -> list[str]:
        """The sites, in name order."""
        return sorted({site for site, _ in self.capabilities})

    def of_site(self, site: str) -> list[CapabilityState]:
        """The capabilities of ``site``, in the order of :data:`~prober.results.KINDS`."""
        return sorted((s for (name, _), s in self.capabilities.items() if name == site),
                      key=lambda s: KINDS.index(s.kind))

    def summary(self, site: str) -> str:
        """One line about ``site`` (:func:`~prober.incidents.capability.site_summary`)."""
        return site_summary(site, self.capabilities)

    def to_json(self) -> dict[str, Any]:
        """The ``incidents`` document of ``/status``: ``{"sites": {site: {"summary",
        "capabilities": {kind: {"state", "since", "incidents"}}}}, "open", "recent"}``."""
        return {
            "sites": {
                site: {
                    "summary": self.summary(site),
                    "capabilities": {
                        state.kind: {
                            "state": state.state,
                            "since": _iso(state.since_ns),
                            "incidents": [incident_json(i) for i in state.incidents],
                        }
                        for state in self.of_site(site)
                    },
                }
                for site in self.sites
            },
            "open": [incident_json(i) for i in self.open],
            "recent": [incident_json(i) for i in self.recent],
        }


def _iso(ns: int | None) -> str | None:
    return utc_iso(ns / 1e9) if ns else None


def incident_json(incident: Incident) -> dict[str, Any]:
    """An incident as ``/status`` shows it (its text redacted already)."""
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
        "ended": incident.ended,
    }
