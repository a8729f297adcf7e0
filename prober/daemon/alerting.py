"""Incident changes → notifications, and the wiring of the incident service.

:class:`Alerting` subscribes to the :class:`~prober.incidents.IncidentService`: for each
state change or reminder it counts it as ``silenced`` when a maintenance window covers
the site and capability, and otherwise builds a :class:`~prober.notify.message.Message`
and hands it to the :class:`~prober.notify.dispatcher.Dispatcher` (which routes, retries
and delivers in background tasks). Maintenance windows and notifiers are read at start.

:func:`compose_incidents` is the one place the incident service gets its subscribers:
the writer's :class:`~prober.writer.incidents.IncidentPoints` (``incident`` points),
then :class:`Alerting`. The daemon and the demo both build theirs through it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from prober.config.incidents import MaintenanceWindow
from prober.config.model import Config
from prober.incidents import IncidentChange, IncidentService
from prober.notify.dispatcher import Dispatcher
from prober.notify.message import Message
from prober.notify.settings import NotifierSettings
from prober.results import KINDS
from prober.writer.incidents import IncidentPoints, LineWriter


class Alerting:
    """Subscriber: incident changes → maintenance silencing → notifiers.

    Lifecycle: ``await start()`` before the incident service starts, ``await close()``
    after it closed (pending deliveries get ``timeout`` seconds).
    """

    def __init__(
        self,
        maintenance: Sequence[MaintenanceWindow],
        notifiers: Sequence[NotifierSettings],
        *,
        session: aiohttp.ClientSession | None = None,
        evidence: Callable[[str, str], tuple[str, ...]] | None = None,
    ) -> None:
        self.maintenance = list(maintenance)
        self.evidence = evidence
        """The files kept of a check's latest failed run (browser checks), by site and check."""
        self.dispatcher = Dispatcher(notifiers, session=session)
        self.silenced = 0
        """Changes not notified because a maintenance window covered them."""

    def __call__(self, change: IncidentChange) -> None:
        incident = change.incident
        at = datetime.fromtimestamp(change.at_ns / 1e9, tz=UTC)
        if any(w.covers(incident.site, incident.kind, at) for w in self.maintenance):
            self.silenced += 1
            return
        if not self.dispatcher.configs:
            return
        resolved = change.event == "resolved"
        self.dispatcher.submit(Message(
            event=change.event, incident_id=incident.id, site=incident.site, kind=incident.kind,
            check=incident.check, location=incident.location, failed_step=incident.failed_step,
            outcome=incident.outcome, error=incident.error, reason=incident.reason, since_ns=incident.since_ns,
            at_ns=change.at_ns,
            duration_s=incident.duration_s if resolved else max(0.0, (change.at_ns - incident.since_ns) / 1e9),
            capability_state=change.capability_state, site_summary=change.site_summary,
            resolved_ns=incident.resolved_ns, ended=incident.ended, tags=dict(change.tags),
            evidence=self.evidence(incident.site, incident.check) if self.evidence is not None else (),
        ))

    async def start(self) -> None:
        await self.dispatcher.start()

    async def close(self, timeout: float = 5.0) -> None:
        await self.dispatcher.close(timeout)

    def status(self) -> dict[str, Any]:
        """The notifiers' counters (``incidents.notifications`` of ``/status``)."""
        dispatcher = self.dispatcher
        return {
            "notifiers": len(dispatcher.configs),
            "sent": dispatcher.sent,
            "failed": dispatcher.failed,
            "dropped": dispatcher.dropped,
            "pending": dispatcher.pending,
            "silenced": self.silenced,
        }


def compose_incidents(
    config: Config,
    writer: LineWriter,
    *,
    state_dir: str | Path | None = None,
    session: aiohttp.ClientSession | None = None,
    evidence: Callable[[str, str], tuple[str, ...]] | None = None,
) -> tuple[IncidentService, Alerting]:
    """The incident service of ``config``, its changes written by ``writer`` and notified.

    With ``[incidents.locations]`` (and InfluxDB to decide from) the per-location changes
    are written but not notified: the cross-location loop
    (:mod:`prober.daemon.locations`) notifies through the same :class:`Alerting`'s
    dispatcher; incidents about no capability (certificate warnings) are still notified
    here, by the prober that holds the certificate. Start the :class:`Alerting` before the service and close it after.
    """
    alerting = Alerting(config.incidents.maintenance, config.notifiers, session=session, evidence=evidence)
    subscribers: list = [IncidentPoints(writer, config.prober.instance)]
    if config.incidents.locations is None or config.influxdb is None:
        subscribers.append(alerting)
    else:  # certificate warnings are this prober's own: it notifies them itself
        subscribers.append(lambda change: alerting(change) if change.incident.kind not in KINDS else None)
    service = IncidentService(config, subscribers=subscribers, state_dir=state_dir)
    return service, alerting
