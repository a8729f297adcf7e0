"""Incidents per bank and capability: detection, persistence, and the state changes
(:class:`IncidentChange`) that subscribers turn into InfluxDB points and notifications."""

from prober.incidents.capability import CapabilityState, capability_states, site_summary
from prober.incidents.service import IncidentChange, IncidentService
from prober.incidents.status import IncidentStatus
from prober.incidents.store import StateStore
from prober.incidents.tracker import CheckKey, Incident, IncidentEvent, Observation, Thresholds, Tracker

__all__ = [
    "CapabilityState", "CheckKey", "Incident", "IncidentChange", "IncidentEvent", "IncidentService", "IncidentStatus",
    "Observation", "StateStore", "Thresholds", "Tracker", "capability_states", "site_summary",
]
