"""The incident service: a result consumer that turns runs into incidents.

The daemon hands every finished :class:`~prober.results.JourneyResult` to
:meth:`IncidentService.consume` (synchronous, cheap, never blocks). The service

1. counts the run in the :class:`~prober.incidents.tracker.Tracker` (skipped runs, and
   runs of a non-login check that failed at the site's login step, are not counted);
2. publishes every state change (``opened``, ``resolved``) and every reminder while an
   incident stays open as an :class:`IncidentChange` to the subscribers the
   composition root hands in (:mod:`prober.daemon.alerting` wires the ``incident``
   points and the notifications); this package neither writes nor notifies;
3. saves the tracker to ``[daemon] state_dir`` (at once after a state change, within a
   second after a failed run or a run of a check with failures in its window or an open
   incident, at most once a minute when only passing runs of healthy checks were
   counted; the file is written in a worker thread), so open incidents survive restarts;
   and, after each resolution, the recently resolved incidents
   (:mod:`prober.incidents.resolved`), so the status page's incident history does too.

Incidents decided elsewhere in the daemon (lockout protection: a site refusing the
prober's logins, :mod:`prober.daemon.lockout`; certificates expiring or expired,
:mod:`prober.daemon.certificates`) enter through :meth:`IncidentService.open_external`,
:meth:`~IncidentService.escalate_external` and :meth:`~IncidentService.resolve_external`
and are announced, saved and shown like the others.

Lifecycle: ``IncidentService(config, subscribers=[...])`` → ``await start()`` →
``consume(...)``… → ``await close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from copy import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prober.config.incidents import IncidentsConfig
from prober.config.model import Config
from prober.incidents.capability import CapabilityState, capability_states, site_summary
from prober.incidents.resolved import ResolvedIncidents
from prober.incidents.status import IncidentStatus
from prober.incidents.store import StateStore
from prober.incidents.tracker import (
    CheckKey,
    CheckTracker,
    EventKind,
    Incident,
    IncidentEvent,
    Observation,
    Thresholds,
    Tracker,
)
from prober.results import JourneyResult, Outcome
from prober.waiting import wait_event

log = logging.getLogger("prober.incidents")

SAVE_INTERVAL = 1.0
QUIET_SAVE_INTERVAL = 60.0
"""How stale the saved state may get when only passing runs of healthy checks (no
failure in the window, no open incident) were counted: such runs change nothing that
opens or resolves an incident, and serializing every check each second costs more CPU
than the runs themselves at a thousand checks."""
EVENTS_KEPT = 1000
"""State changes kept in memory for the live status."""
RECENT = 20
"""Resolved incidents ``/status`` lists."""


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """One state change (``opened``, ``resolved``) or reminder, as subscribers get it.

    ``capabilities`` and ``site_summary`` describe every site × capability *after* the
    change; ``tags`` are the check's own configured tags.
    """

    event: EventKind
    incident: Incident
    at_ns: int
    """When the change was detected (the run's start; the clock for a reminder)."""
    capabilities: Mapping[tuple[str, str], CapabilityState]
    site_summary: str
    tags: Mapping[str, str]

    @property
    def state(self) -> str:
        """``open`` or ``resolved``: the incident's state after the change."""
        return "resolved" if self.event == "resolved" else "open"

    @property
    def capability_state(self) -> str:
        """State of the incident's site × capability after the change (``unknown`` if none)."""
        state = self.capabilities.get((self.incident.site, self.incident.kind))
        return state.state if state else "unknown"


Subscriber = Callable[[IncidentChange], None]
"""Takes each :class:`IncidentChange`; synchronous and cheap (I/O goes to background tasks)."""


def thresholds_of(cfg: IncidentsConfig) -> tuple[Thresholds, dict[str, Thresholds]]:
    base = Thresholds(
        open_after=cfg.open_after, flap_failures=cfg.flap_failures, flap_window=cfg.flap_window,
        resolve_after=cfg.resolve_after, flap_resolve_after=cfg.flap_resolve_after or cfg.flap_window,
    )
    overrides = {}
    for check, override in cfg.overrides.items():
        window = override.flap_window or base.flap_window
        overrides[check] = Thresholds(
            open_after=override.open_after or base.open_after,
            flap_failures=override.flap_failures or base.flap_failures,
            flap_window=window,
            resolve_after=override.resolve_after or base.resolve_after,
            flap_resolve_after=override.flap_resolve_after or (cfg.flap_resolve_after or window),
        )
    return base, overrides


def login_dependent_steps(config: Config) -> dict[tuple[str, str], frozenset[str]]:
    """``(site, check) → names of its steps that repeat a step of the site's login check``.

    A step repeats a login step when it sends the same method to the same path or URL
    (e.g. the OAuth token request every journey starts with).
    """
    out: dict[tuple[str, str], frozenset[str]] = {}
    for site in config.sites:
        login = {
            (step.method, step.path or step.url)
            for check in site.checks if check.kind == "login" and check.enabled and not check.is_browser
            for step in check.api_steps
        }
        if not login:
            continue
        for check in site.checks:
            if check.kind == "login" or check.is_browser:  # a web journey's sign-in is its own
                continue
            names = frozenset(s.name for s in check.api_steps if (s.method, s.path or s.url) in login)
            if names:
                out[(site.name, check.name)] = names
    return out


NO_LONGER_PROBED = "its check is no longer probed (removed from the configuration or disabled)"
"""Why an incident of a check that is not configured any more was closed."""


def configured_checks(config: Config) -> dict[CheckKey, str]:
    """Every enabled check of ``config`` → its kind."""
    return {
        CheckKey(site.name, check.name, config.location_of(site)): check.kind
        for site in config.sites for check in site.checks if check.enabled
    }


def check_tags(config: Config, site: str, check: str) -> dict[str, str]:
    """The own tags of a configured check (empty when it is no longer configured)."""
    for s in config.sites:
        if s.name == site:
            return next((dict(c.tags) for c in s.checks if c.name == check), {})
    return {}


class IncidentService:
    """Result consumer: tracker → saved state → :class:`IncidentChange` to the subscribers."""

    def __init__(
        self,
        config: Config,
        *,
        subscribers: Sequence[Subscriber] = (),
        state_dir: str | Path | None = None,
        clock: Any = time.time_ns,
    ) -> None:
        self.config = config
        self.settings: IncidentsConfig = config.incidents
        self.subscribers = list(subscribers)
        self.clock = clock
        base, overrides = thresholds_of(self.settings)
        self.tracker = Tracker(base, overrides)
        self.store = StateStore(state_dir if state_dir is not None else config.daemon.state_dir)
        skipped = self.tracker.restore(self.store.load())
        if skipped:
            log.error("incident state %s: %d malformed entries ignored", self.store.path, skipped)
        self._login_steps = login_dependent_steps(config) if self.settings.attribute_login_failures else {}
        self._known: dict[CheckKey, str] = configured_checks(config)
        self._dirty = False
        self._stale = False
        """Only passing runs of healthy checks counted since the last save."""
        self._saved_at = time.monotonic()
        self._save_now = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.events: deque[IncidentEvent] = deque(maxlen=EVENTS_KEPT)
        """The latest state changes (for the live status; bounded: the daemon runs for months)."""
        self.changes = 0
        """State changes since start (``events`` keeps only the latest)."""
        self.resolved = ResolvedIncidents(state_dir if state_dir is not None else config.daemon.state_dir, clock=clock)
        """The latest resolved incidents per site × capability and when each capability's
        last one ended (``since`` of an ok state), kept across restarts."""
        self.resolved.load()
        self._external: dict[tuple[str, str], CheckKey] = {}
        """``(site, location)`` → the key of its open incident decided outside the tracker
        that counts the site's ``auth`` failures (lockout protection)."""
        self._decided: dict[str, tuple[CheckKey, frozenset[str]]] = {}
        """Other incidents decided outside the tracker: id → its key and the checks whose
        failures count towards it (an expired certificate: the checks that present it)."""
        restored = self.tracker.open_incidents()
        if restored:
            log.info("restored %d open incident(s) from %s", len(restored), self.store.path)

    # ── lifecycle ──────────────────────────────────────────────────────────────────
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._save_loop(), name="incident state saver"))
        if self.settings.remind_every:
            self._tasks.append(
                loop.create_task(self._remind_loop(self.settings.remind_every), name="incident reminders")
            )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._save()
        if self.resolved.dirty:
            self._save_resolved(self.resolved.snapshot())

    # ── the consumer interface ─────────────────────────────────────────────────────
    def reload(self, config: Config) -> None:
        """Take a reloaded configuration's checks: open incidents and windows of the
        checks it keeps are kept, those of checks it no longer has are closed
        (:meth:`forget_unconfigured`).

        Thresholds, maintenance windows and notifiers are read at start; changes to
        them are logged as needing a restart.
        """
        if config.incidents != self.settings or config.notifiers != self.config.notifiers:
            log.warning("reload: changes to [incidents] and [[notifiers]] take effect at the next restart")
        self.config = config
        self._login_steps = login_dependent_steps(config) if self.settings.attribute_login_failures else {}
        self._known = configured_checks(config)
        self.forget_unconfigured()

    def forget_unconfigured(self) -> None:
        """Close the incidents of checks the configuration no longer has, or has probing
        another capability, and forget their runs (a reload does this; the daemon calls
        it once at start, after every consumer restored its state, for checks changed
        while it was stopped).

        Incidents decided outside the tracker (lockout protection, certificates) are
        left to what decided them. Each closed one is published as ``resolved``, its
        ``ended`` saying why: not as back, which nobody saw."""
        decided = {*self._external.values(), *(key for key, _ in self._decided.values())}
        reasons: dict[str, list[CheckKey]] = {}
        for key, tracker in self.tracker.checks.items():
            if key in decided:
                continue
            kind = self._known.get(key)
            if kind is None:
                reasons.setdefault(NO_LONGER_PROBED, []).append(key)
            elif tracker.kind and tracker.kind != kind:  # its runs and incident are another capability's
                reasons.setdefault(f"its check now probes {kind}, not {tracker.kind}", []).append(key)
        if not reasons:
            return
        self._dirty = True
        now = self.clock()
        for why, keys in reasons.items():
            for event in self.tracker.forget(keys, now, why):
                self._changed(event)

    def consume(self, result: JourneyResult) -> None:
        """Count one finished run. Synchronous and cheap: I/O happens in background tasks."""
        if not self.settings.enabled:
            return
        outcome = result.outcome.value if isinstance(result.outcome, Outcome) else str(result.outcome)
        if outcome not in ("ok", "skipped") and result.failed_step in self._login_steps.get(
            (result.site, result.check), ()
        ):
            outcome = "skipped"  # the login check carries this failure
        if outcome == "auth" and self._external and (result.site, result.location) in self._external:
            outcome = "skipped"  # the site's lockout incident carries its refused logins
        if self._decided and outcome not in ("ok", "skipped") and self._carried(result):
            outcome = "skipped"  # an incident decided elsewhere (an expired certificate) carries it
        key = CheckKey(result.site, result.check, result.location)
        self._known.setdefault(key, result.kind)
        material = outcome != "ok" or not self._healthy(key)
        event = self.tracker.observe(Observation(
            site=result.site, check=result.check, kind=result.kind, location=result.location, outcome=outcome,
            at_ns=result.started_at_ns, failed_step=result.failed_step, error=result.error,
        ))
        if outcome != "skipped":
            if material:
                self._dirty = True
            else:
                self._stale = True
        if event is not None:
            self._changed(event)

    def _carried(self, result: JourneyResult) -> bool:
        """Whether an open incident decided outside the tracker counts ``result``'s failure."""
        return any(key.site == result.site and key.location == result.location and result.check in checks
                   for key, checks in self._decided.values())

    def _healthy(self, key: CheckKey) -> bool:
        """Whether ``key`` is known, has no open incident and no failure in its window."""
        check = self.tracker.checks.get(key)
        return (check is not None and check.incident is None and not check.streak
                and not any(bad for bad, _ in check.window))

    # ── state changes ──────────────────────────────────────────────────────────────
    def _changed(self, event: IncidentEvent) -> None:
        incident = event.incident
        self.events.append(event)
        self.changes += 1
        if event.event == "resolved":
            self.resolved.add(incident)
        self._save_now.set()
        log.warning("incident %s: %s/%s (%s) at %s: %s", event.event, incident.site, incident.kind, incident.check,
                    incident.location, incident.reason)
        self._publish(event)

    def _publish(self, event: IncidentEvent) -> None:
        incident = event.incident
        states = self.capabilities()
        change = IncidentChange(
            event=event.event, incident=incident, at_ns=event.at_ns, capabilities=states,
            site_summary=site_summary(incident.site, states),
            tags=check_tags(self.config, incident.site, incident.check),
        )
        for subscriber in self.subscribers:
            try:
                subscriber(change)
            except Exception:  # one subscriber's bug must not cost the others the change
                log.exception("incident subscriber %r failed", subscriber)

    # ── incidents decided outside the tracker (lockout protection) ─────────────────
    def open_external(self, *, site: str, check: str, kind: str, location: str, outcome: str, reason: str,
                      rule: str, since_ns: int, exclusive: bool = True, absorbs_auth: bool = True,
                      absorbs: Iterable[str] = ()) -> str:
        """Open an incident another part of the daemon decided (lockout protection: a
        site refusing the prober's logins; a certificate); returns its id.

        It is published like any incident (to the subscribers: ``incident`` point,
        maintenance silencing, notifications) and kept in the saved state. When ``site`` × ``kind`` at
        ``location`` has an open incident already, nothing is opened ("" is returned):
        one incident, one notification (``exclusive = False``: only an open incident of
        the same ``check`` stops it, as for the certificates of one site, each its own).
        ``check`` names the incident, not a member of the capability: with the site's
        own checks of ``kind`` passing, the capability is ``degraded``.

        While it is open, failures count towards it rather than towards their checks:
        the ``auth`` failures of the site's runs at ``location`` (``absorbs_auth``, the
        lockout's), or else any failure of the checks named in ``absorbs``.
        """
        if not self.settings.enabled:
            return ""
        if any((i.site, i.kind, i.location) == (site, kind, location) and (exclusive or i.check == check)
               for i in self.tracker.open_incidents()):
            return ""
        key = CheckKey(site, check, location)
        tracker = self.tracker.checks.setdefault(key, CheckTracker(self.tracker.thresholds_for(check)))
        tracker.kind = kind
        now = self.clock()
        incident = Incident(
            id=uuid.uuid4().hex[:12], site=site, check=check, kind=kind, location=location,
            since_ns=min(since_ns, now), opened_ns=now, outcome=outcome, failed_step="", error=reason, rule=rule,
            last_failure_ns=now, last_reminder_ns=now,
        )
        tracker.incident = incident
        self._register(incident.id, key, absorbs_auth, absorbs)
        self._changed(IncidentEvent("opened", incident, now))
        return incident.id

    def _register(self, incident_id: str, key: CheckKey, absorbs_auth: bool, absorbs: Iterable[str]) -> None:
        if absorbs_auth:
            self._external[(key.site, key.location)] = key
        else:
            self._decided[incident_id] = (key, frozenset(absorbs))

    def escalate_external(self, incident_id: str, *, reason: str) -> bool:
        """Announce that an incident :meth:`open_external` opened got worse (a certificate
        reached the next step of its warning ladder): its error becomes ``reason`` and an
        ``escalated`` change is published (notified like an opening, no ``incident``
        point). False when it is not open."""
        for key, _ in self._decided.values():
            tracker = self.tracker.checks.get(key)
            incident = tracker.incident if tracker is not None else None
            if incident is not None and incident.id == incident_id:
                now = self.clock()
                incident.error = reason
                incident.last_failure_ns = incident.last_reminder_ns = now
                self._changed(IncidentEvent("escalated", incident, now))
                return True
        return False

    def resolve_external(self, incident_id: str, *, resolved_ns: int, ended: str = "") -> bool:
        """Resolve an incident opened by :meth:`open_external`, dated ``resolved_ns``;
        False when it is not open. ``ended``: why it ends without a recovery (what it is
        about is no longer probed), as :attr:`Incident.ended`."""
        places: list[tuple[Any, CheckKey]] = [*self._external.items(),
                                               *((i, key) for i, (key, _) in self._decided.items())]
        for place, key in places:
            tracker = self.tracker.checks.get(key)
            incident = tracker.incident if tracker is not None else None
            if tracker is None or incident is None or incident.id != incident_id:
                continue
            if isinstance(place, tuple):
                del self._external[place]
            else:
                del self._decided[place]
            incident.resolved_ns = max(resolved_ns, incident.since_ns)
            incident.ended = ended
            tracker.incident = None
            self._changed(IncidentEvent("resolved", incident, self.clock()))
            return True
        return False

    def adopt_external(self, incident_id: str, *, absorbs_auth: bool = True, absorbs: Iterable[str] = ()) -> bool:
        """After a restart: take back an incident :meth:`open_external` opened before it
        (restored from the saved state), with what it absorbs; False when it is not open."""
        for key, tracker in self.tracker.checks.items():
            if tracker.incident is not None and tracker.incident.id == incident_id:
                self._register(incident_id, key, absorbs_auth, absorbs)
                return True
        return False

    # ── views ──────────────────────────────────────────────────────────────────────
    def capabilities(self, incidents: Sequence[Incident] | None = None) -> dict[tuple[str, str], CapabilityState]:
        """State of every site × capability and since when (see :mod:`prober.incidents.capability`),
        from ``incidents`` (default: the tracker's open ones)."""
        found = self.tracker.open_incidents() if incidents is None else incidents
        return capability_states(self._known.items(), found, self.resolved.last_end)

    def changes_since(self, seen: int) -> list[IncidentEvent]:
        """The state changes after the first ``seen`` (as many as ``events`` still holds)."""
        fresh = min(self.changes - seen, len(self.events))
        return list(self.events)[len(self.events) - fresh:] if fresh > 0 else []

    def status(self) -> IncidentStatus:
        """What ``/status`` and the status page show of incidents: each site ×
        capability's state and since when, the open incidents and the recently resolved
        ones (the daemon adds the notifiers' counters to ``/status``)."""
        opened = sorted((copy(i) for i in self.tracker.open_incidents()), key=lambda i: i.since_ns)
        return IncidentStatus(
            capabilities=self.capabilities(opened),
            open=tuple(opened),
            recent=tuple(copy(i) for i in self.resolved.recent(RECENT)),
        )

    # ── background loops ───────────────────────────────────────────────────────────
    def _save(self) -> None:
        try:
            self.store.save(self.tracker.to_json())
            self._dirty = self._stale = False
        except OSError as exc:
            log.error("cannot save incident state to %s: %s", self.store.path, exc)

    def _save_resolved(self, snapshot: dict[str, Any]) -> bool:
        try:
            self.resolved.write(snapshot)
            return True
        except OSError as exc:
            log.error("cannot save the resolved incident history to %s: %s", self.resolved.store.path, exc)
            return False

    async def _save_loop(self) -> None:
        while True:
            await wait_event(self._save_now, SAVE_INTERVAL)
            self._save_now.clear()
            if self.resolved.dirty and not await asyncio.to_thread(self._save_resolved, self.resolved.snapshot()):
                self.resolved.dirty = True
            if self._dirty or (self._stale and time.monotonic() - self._saved_at >= QUIET_SAVE_INTERVAL):
                snapshot = self.tracker.to_json()
                self._dirty = self._stale = False
                self._saved_at = time.monotonic()
                try:
                    await asyncio.to_thread(self.store.save, snapshot)
                except OSError as exc:
                    self._dirty = True
                    log.error("cannot save incident state to %s: %s", self.store.path, exc)

    async def _remind_loop(self, every: float) -> None:
        while True:
            await asyncio.sleep(min(max(every / 4, 0.01), 30.0))
            for event in self.tracker.due_reminders(self.clock(), every):
                self._dirty = True
                self._publish(event)
