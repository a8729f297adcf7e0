"""The cross-location consensus loop (``[incidents.locations]``).

Every ``poll`` seconds each prober instance reads from InfluxDB (one InfluxQL request,
:mod:`prober.daemon.locations_influx`) the latest per-location incident state of
every site × check, which instances are live (``prober`` self-reports newer than
``stale_after``) and the cross-location incidents written so far, and decides per site ×
capability (:mod:`prober.incidents.locations`). The instance whose ``(location,
instance)`` sorts first among the live ones *acts*: it writes one ``incident_locations``
point per change and sends one notification per confirmed incident (opened, reminders,
resolved). The others only keep the view for ``/status``; when the acting one stops
reporting, the next takes over after ``stale_after`` and adopts the open incidents from
the latest ``incident_locations`` points, so nothing is notified twice.

When the acting instance is about to open or resolve an incident, a second request reads
the ``check`` points of its failing checks and locations around it, and the incident is
dated from those pooled runs (:func:`~prober.incidents.locations.pooled_start`,
:func:`~prober.incidents.locations.pooled_end`); when that request fails, from the
per-location estimates.

While InfluxDB cannot answer, nothing is decided (the last view stays, ``last_error``
says why, logged once per change).

The end of the previous incident per site × capability (the runs of the next one are
read from after it, :attr:`~prober.incidents.locations.Consensus.resolved`) is the later
of the one this instance resolved, kept in ``<state_dir>/locations.json``
(:class:`PreviousEnds`), and the latest resolution read from the ``incident_locations``
points: neither a restart nor a takeover lets the next incident's pooled start reach
back into the previous one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from prober.config.incidents import LocationsConfig, MaintenanceWindow
from prober.daemon.locations_influx import LocationsReader, LoginSteps, Snapshot, point
from prober.incidents.capability import CapabilityState, site_summary
from prober.incidents.locations import (
    Consensus,
    CrossEvent,
    Decision,
    Reporter,
    Run,
    RunsWindow,
    SiteKind,
    decide,
    live,
)
from prober.incidents.service import login_dependent_steps
from prober.incidents.store import StateStore
from prober.notify.message import Message
from prober.report.influx import QueryError
from prober.results import JourneyResult
from prober.timefmt import utc_iso
from prober.waiting import cancel_and_wait
from prober.writer.incidents import LineWriter

log = logging.getLogger("prober.incidents")

MAX_PREVIOUS_ENDS = 5000
"""Site × capabilities whose previous end is kept at most (the latest ends win)."""


class Reader(Protocol):
    def read(self) -> Snapshot: ...

    def read_runs(self, windows: Mapping[SiteKind, RunsWindow],
                  login_steps: LoginSteps | None = None) -> dict[SiteKind, list[Run]]: ...


def cross_message(event: CrossEvent, decisions: Mapping[SiteKind, Decision], open_keys: set[SiteKind]) -> Message:
    """The notification of one cross-location event: names the failing locations."""
    incident = event.incident
    resolved = event.event == "resolved"
    outcome = incident.reason.split(":", 1)[0] if ":" in incident.reason else ""
    states = {key: CapabilityState(key[0], key[1], "outage" if key in open_keys else "ok")
              for key in decisions if key[0] == incident.site}
    states[(incident.site, incident.kind)] = CapabilityState(
        incident.site, incident.kind, "ok" if resolved else "outage"
    )
    duration = incident.duration_s if resolved else max(0.0, (event.at_ns - incident.since_ns) / 1e9)
    where = ", ".join(incident.locations)
    return Message(
        event=event.event, incident_id=incident.id, site=incident.site, kind=incident.kind,
        check=", ".join(incident.checks), location=where, failed_step=incident.failed_step, outcome=outcome,
        error=incident.reason, since_ns=incident.since_ns, at_ns=event.at_ns, duration_s=duration,
        reason=(f"failing at {len(incident.locations)} location(s): {where} "
                f"({incident.required} of {len(incident.live)} live required)"),
        capability_state=states[(incident.site, incident.kind)].state,
        site_summary=site_summary(incident.site, states), resolved_ns=incident.resolved_ns, ended=incident.ended,
    )


class PreviousEnds:
    """``<state_dir>/locations.json``: per site × capability, the end of the latest
    cross-location incident this instance resolved. One entry per site × capability, at
    most :data:`MAX_PREVIOUS_ENDS` (those that ended longest ago go first); written
    atomically, a corrupt or unknown file is reported and ignored."""

    def __init__(self, state_dir: str | Path) -> None:
        self.store = StateStore(state_dir, "locations.json", key="resolved", what="cross-location incident state",
                                empty="the next incident of each capability may pool runs from before the "
                                      "previous one's end")

    def load(self) -> dict[SiteKind, int]:
        ends: dict[SiteKind, int] = {}
        skipped = 0
        for text, end in self.store.load().items():
            site, sep, kind = str(text).partition("\x1f")
            if sep and isinstance(end, int) and not isinstance(end, bool):
                ends[(site, kind)] = end
            else:
                skipped += 1
        if skipped:
            log.error("cross-location incident state %s: %d malformed entries ignored", self.store.path, skipped)
        return bounded(ends)

    def save(self, ends: Mapping[SiteKind, int]) -> None:
        """Atomically replace the saved ends; raises ``OSError``."""
        self.store.save({f"{site}\x1f{kind}": end for (site, kind), end in ends.items()})


def bounded(ends: dict[SiteKind, int]) -> dict[SiteKind, int]:
    """``ends`` without those that ended longest ago, beyond :data:`MAX_PREVIOUS_ENDS`."""
    if len(ends) <= MAX_PREVIOUS_ENDS:
        return ends
    return dict(sorted(ends.items(), key=lambda item: item[1])[-MAX_PREVIOUS_ENDS:])


class CrossLocationIncidents:
    """The consensus loop: a result consumer only for its lifecycle (``consume`` does nothing).

    ``notify`` receives each :class:`~prober.notify.message.Message` to send. With a
    ``state_dir``, the previous incidents' ends survive a restart (:class:`PreviousEnds`).
    """

    def __init__(
        self,
        settings: LocationsConfig,
        *,
        reader: Reader,
        writer: LineWriter,
        notify: Callable[[Message], None],
        location: str,
        instance: str,
        remind_every: float | None = None,
        maintenance: tuple[MaintenanceWindow, ...] | list[MaintenanceWindow] = (),
        clock: Callable[[], int] = time.time_ns,
        open_after: int = 3,
        login_steps: LoginSteps | None = None,
        state_dir: str | Path | None = None,
    ) -> None:
        self.settings = settings
        self.reader = reader
        self.writer = writer
        self.notify = notify
        self.me = (location, instance)
        self.remind_every = remind_every
        self.maintenance = list(maintenance)
        self.clock = clock
        self.consensus = Consensus(min_failures=open_after)
        self.login_steps = dict(login_steps or {})
        """Steps of non-login checks that repeat the login check's: their failures are not
        pooled for the check (``attribute_login_failures``)."""
        self.decisions: dict[SiteKind, Decision] = {}
        self.live: list[Reporter] = []
        self.acting = False
        self.polls = 0
        self.notified = 0
        self.silenced = 0
        self.last_poll_ns = 0
        self.last_error = ""
        self.pooled_errors = 0
        self._now = 0
        self._task: asyncio.Task[None] | None = None
        self.previous_ends = PreviousEnds(state_dir) if state_dir is not None else None
        if self.previous_ends is not None:
            self.consensus.resolved.update(self.previous_ends.load())
        self._saved_ends = dict(self.consensus.resolved)

    @classmethod
    def from_config(cls, config: Any, writer: LineWriter, notify: Callable[[Message], None]) -> CrossLocationIncidents:
        """From a :class:`~prober.config.model.Config` with ``[influxdb]`` and ``[incidents.locations]``."""
        settings = config.incidents.locations
        return cls(settings, reader=LocationsReader.from_config(config.influxdb, settings.stale_after,
                                                                timeout=max(1.0, min(10.0, settings.poll * 2))),
                   writer=writer, notify=notify, location=config.prober.location, instance=config.prober.instance,
                   remind_every=config.incidents.remind_every, maintenance=config.incidents.maintenance,
                   open_after=config.incidents.open_after,
                   login_steps=login_dependent_steps(config) if config.incidents.attribute_login_failures else {},
                   state_dir=config.daemon.state_dir)

    # ── result consumer lifecycle ──────────────────────────────────────────────────
    def consume(self, result: JourneyResult) -> None:
        """Nothing: the decision reads what every instance wrote to InfluxDB."""

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="cross-location incidents")

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.save()

    async def save(self) -> None:
        """Save the previous incidents' ends when they changed (in a worker thread)."""
        if self.previous_ends is None or self.consensus.resolved == self._saved_ends:
            return
        ends = self.consensus.resolved = bounded(self.consensus.resolved)
        snapshot = dict(ends)
        try:
            await asyncio.to_thread(self.previous_ends.save, snapshot)
        except OSError as exc:
            log.error("cannot save the cross-location incident state to %s: %s", self.previous_ends.store.path, exc)
            return
        self._saved_ends = snapshot

    async def _loop(self) -> None:
        while True:
            try:
                await self.poll()
            except Exception:  # a bug here must not stop the loop for good
                log.exception("cross-location decision failed")
            await asyncio.sleep(self.settings.poll)

    # ── one round ──────────────────────────────────────────────────────────────────
    async def poll(self) -> list[CrossEvent]:
        """Read, decide, and (when acting) write and notify. Returns the events acted on."""
        try:
            snap = await asyncio.to_thread(self.reader.read)
        except QueryError as exc:
            if str(exc) != self.last_error:
                log.warning("cross-location incidents: cannot read InfluxDB (%s); nothing is decided meanwhile", exc)
            self.last_error = str(exc)
            return []
        if self.last_error:
            log.warning("cross-location incidents: reading InfluxDB again")
            self.last_error = ""
        if not self.prepare(snap):
            return []
        runs: dict[SiteKind, list[Run]] = {}
        windows = self.consensus.windows(self.decisions, snap.states, self._now)
        if windows:
            try:
                runs = await asyncio.to_thread(self.reader.read_runs, windows, self.login_steps)
            except QueryError as exc:
                self.pooled_errors += 1
                log.warning("cross-location incidents: cannot read the runs to pool (%s); "
                            "dated by the per-location estimates", exc)
        events = self.act(snap, runs)
        await self.save()
        return events

    def apply(self, snap: Snapshot, runs: Mapping[SiteKind, list[Run]] | None = None) -> list[CrossEvent]:
        """Decide on one snapshot and, optionally, the pooled runs of the incidents it opens
        or resolves (the pure part of :meth:`poll`)."""
        return self.act(snap, runs) if self.prepare(snap) else []

    def prepare(self, snap: Snapshot) -> bool:
        """The live instances and decisions of ``snap``; whether this instance acts on them."""
        now = self._now = self.clock()
        self.polls += 1
        self.last_poll_ns = now
        self.live = live(snap.reporters, now, self.settings.stale_after)
        self.decisions = decide(snap.states, {r.location for r in self.live}, self.settings.confirm)
        for key, end in snap.ended.items():  # resolved by another instance (or before a lost state_dir)
            if end > self.consensus.resolved.get(key, 0):
                self.consensus.resolved[key] = end
        acting = bool(self.live) and (self.live[0].location, self.live[0].instance) == self.me
        if not acting or not self.acting:
            # Not acting: mirror what the acting instance wrote. Taking over: adopt it.
            self.consensus.open = dict(snap.written)
            for incident in self.consensus.open.values():
                incident.notified_ns = now
        if acting and not self.acting:
            log.warning("cross-location incidents: this instance (%s/%s) decides now", *self.me)
        self.acting = acting
        return acting

    def act(self, snap: Snapshot, runs: Mapping[SiteKind, list[Run]] | None = None) -> list[CrossEvent]:
        """Step the consensus on the decisions :meth:`prepare` made; write and notify."""
        now = self._now
        events = self.consensus.step(self.decisions, snap.states, now, self.remind_every, runs)
        if events:
            precision = getattr(self.writer, "precision", "ns")
            self.writer.submit_lines([point(e, self.me[1], precision) for e in events])
        open_keys = set(self.consensus.open)
        for event in events:
            incident = event.incident
            log.warning("cross-location incident %s: %s/%s at %s", event.event, incident.site, incident.kind,
                        ", ".join(incident.locations))
            at = datetime.fromtimestamp(now / 1e9, tz=UTC)
            if any(w.covers(incident.site, incident.kind, at) for w in self.maintenance):
                self.silenced += 1
                continue
            self.notified += 1
            self.notify(cross_message(event, self.decisions, open_keys))
        return events

    # ── /status ────────────────────────────────────────────────────────────────────
    def status(self) -> dict[str, Any]:
        """The cross-location view: per site × capability the failing and live locations,
        confirmed or not, the end of the previous incident this instance resolved (its
        next incident's runs are read from after it), and which instance acts."""
        actor = self.live[0] if self.live else None
        capabilities = []
        for key, decision in sorted(self.decisions.items()):
            item = decision.to_json()
            incident = self.consensus.open.get(key)
            item["incident"] = None if incident is None else {
                "id": incident.id, "since": utc_iso(incident.since_ns / 1e9), "locations": list(incident.locations)}
            previous = self.consensus.resolved.get(key)
            item["previous_end"] = utc_iso(previous / 1e9) if previous else None
            capabilities.append(item)
        return {
            "confirm": self.settings.confirm,
            "acting": None if actor is None else {"location": actor.location, "instance": actor.instance},
            "this_instance_acts": self.acting,
            "live": [{"location": r.location, "instance": r.instance} for r in self.live],
            "polls": self.polls,
            "last_poll": utc_iso(self.last_poll_ns / 1e9) if self.last_poll_ns else None,
            "last_error": self.last_error,
            "notified": self.notified,
            "silenced": self.silenced,
            "pooled_errors": self.pooled_errors,
            "capabilities": capabilities,
        }
