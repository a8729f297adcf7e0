"""Incidents per bank and capability: detection, persistence, InfluxDB points, notifications."""

from prober.incidents.capability import CapabilityState, capability_states, site_summary
from prober.incidents.service import IncidentService
from prober.incidents.store import StateStore
from prober.incidents.tracker import CheckKey, Incident, IncidentEvent, Observation, Thresholds, Tracker

__all__ = [
    "CapabilityState", "CheckKey", "Incident", "IncidentEvent", "IncidentService", "Observation", "StateStore",
    "Thresholds", "Tracker", "capability_states", "site_summary",
]
