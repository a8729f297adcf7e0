"""``incident`` points from the incident service's state changes.

:class:`IncidentPoints` subscribes to the incident service (the composition root hands
it in) and writes one ``incident`` point per ``opened`` or ``resolved`` change; reminders
write nothing. The point is dated by the estimate it reports: the incident's start for
``open``, its end for ``resolved`` (not the run that detected the change).

The change is read by its shape (:class:`ChangeLike`): the writer does not import the
incidents package.
"""

from __future__ import annotations

from typing import Protocol

from prober.config.types import Precision
from prober.writer.points import incident_point


class IncidentLike(Protocol):
    """What an ``incident`` point is made of."""

    @property
    def site(self) -> str: ...
    @property
    def check(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def location(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def failed_step(self) -> str: ...
    @property
    def since_ns(self) -> int: ...
    @property
    def resolved_ns(self) -> int | None: ...
    @property
    def duration_s(self) -> float: ...


class ChangeLike(Protocol):
    """An incident state change: ``opened``, ``resolved`` or ``reminder``."""

    @property
    def event(self) -> str: ...
    @property
    def incident(self) -> IncidentLike: ...


class LineWriter(Protocol):
    """Takes encoded lines (:class:`~prober.writer.writer.ResultWriter` does)."""

    precision: Precision

    def submit_lines(self, lines: list[str]) -> None: ...


class IncidentPoints:
    """Subscriber: each ``opened`` / ``resolved`` change → one ``incident`` point, tagged
    with ``instance`` (``[prober] instance``)."""

    def __init__(self, writer: LineWriter, instance: str = "") -> None:
        self.writer = writer
        self.instance = instance

    def __call__(self, change: ChangeLike) -> None:
        if change.event not in ("opened", "resolved"):
            return
        incident = change.incident
        resolved = change.event == "resolved"
        self.writer.submit_lines([incident_point(
            site=incident.site, check=incident.check, kind=incident.kind, location=incident.location,
            state="resolved" if resolved else "open", reason=incident.reason, failed_step=incident.failed_step,
            duration_s=incident.duration_s if resolved else 0.0,
            time_ns=incident.resolved_ns if resolved and incident.resolved_ns is not None else incident.since_ns,
            precision=self.writer.precision, instance=self.instance,
        )])
