"""Incident detection: from a stream of run outcomes to opened / resolved incidents.

Pure logic, no I/O, no clock of its own: every call passes the run's time, so the
tracker is tested (and replayed from its saved state) without servers.

One :class:`CheckTracker` per ``(site, check, location)``. Runs whose outcome is
``skipped`` are ignored (they neither fail nor succeed). An incident **opens** when

* ``open_after`` consecutive runs failed *at the same step* (a steady outage fails the
  same way every time), or
* ``flap_failures`` of the last ``flap_window`` counted runs failed (a failure *rate*:
  intermittent errors after a release, a load balancer with one bad node).

It **resolves** after ``resolve_after`` consecutive successes once it has lasted
``flap_window`` failed runs, or ``2 × open_after`` while it is shorter (two passing runs
right after three failures are as likely the gaps of a failure rate as a recovery); an
incident that *flapped* (it was opened by the rate rule, or a success was followed by a
failure while it was open) needs ``flap_resolve_after`` consecutive successes, so a
30 % failure rate is one incident, not a new one every time two runs happen to pass.

``since`` is the time of the first failed run of the streak (consecutive rule) or the
first failed run still in the window (rate rule).

Why the defaults (3 same-step / 8 of 20 / 2 / 20), for checks every 30-60 s
--------------------------------------------------------------------------------
Simulated with independent failures per request (2 % per request is the simulated
bank's ``healthy-noise`` scenario; a journey of 2-4 requests then fails 4-8 % of runs):

====================  ==========================  ==================================
rule (open)           false incidents / 1000 runs  30 % of runs failing: delay, incidents/200 runs
                      noise 2 % × 2 / 3 / 4 steps
====================  ==========================  ==================================
3 consecutive + 4/10  0.26 / 0.74 / 1.9            18 runs, 2.4
3 same-step + 5/12    0.04 / 0.16 / 0.47           24 runs, 1.6
3 same-step + 8/20    0.01 / 0.015 / 0.03          34 runs, 1.1
====================  ==========================  ==================================

A steady outage opens after 3 runs (1.5-3 min) with every variant. The rate rule needs
a window of about 20 runs to tell 8 % noise from a 30 % failure rate; at 30 s that is
17 minutes for a 30 % rate (a 66 % rate, three 30 % requests in a row, takes ~11 runs).
The brief's 3-of-6 example opens about 4 false incidents per 1000 runs of an 8 %-noisy
journey (one every 8 hours at 30 s), which is why it is not the default.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

EventKind = Literal["opened", "resolved", "reminder"]


class CheckKey(NamedTuple):
    site: str
    check: str
    location: str

    def as_str(self) -> str:
        return f"{self.site}\x1f{self.check}\x1f{self.location}"

    @classmethod
    def from_str(cls, text: str) -> CheckKey:
        site, check, location = text.split("\x1f")
        return cls(site, check, location)


@dataclass(frozen=True, slots=True)
class Thresholds:
    open_after: int = 3
    flap_failures: int = 8
    flap_window: int = 20
    resolve_after: int = 2
    flap_resolve_after: int = 20

    def __post_init__(self) -> None:
        for name in ("open_after", "flap_failures", "flap_window", "resolve_after", "flap_resolve_after"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.flap_failures > self.flap_window:
            raise ValueError("flap_failures must not exceed flap_window")


@dataclass(frozen=True, slots=True)
class Observation:
    """What the tracker needs of one run."""

    site: str
    check: str
    kind: str
    location: str
    outcome: str
    """An :class:`~prober.journey.results.Outcome` value; ``ok`` and ``skipped`` are special."""
    at_ns: int
    failed_step: str = ""
    error: str = ""

    @property
    def key(self) -> CheckKey:
        return CheckKey(self.site, self.check, self.location)


@dataclass(slots=True)
class Incident:
    """An open (or just resolved) incident of one check."""

    id: str
    site: str
    check: str
    kind: str
    location: str
    since_ns: int
    opened_ns: int
    outcome: str
    failed_step: str
    error: str
    rule: str
    flapping: bool = False
    last_failure_ns: int = 0
    failures: int = 0
    last_reminder_ns: int = 0
    resolved_ns: int | None = None
    """When it was back: the first run of the successful streak that resolved it."""

    @property
    def duration_s(self) -> float:
        end = self.resolved_ns if self.resolved_ns is not None else self.last_failure_ns
        return max(0.0, (end - self.since_ns) / 1e9)

    @property
    def reason(self) -> str:
        """``outcome: short error (rule)``, e.g. ``http_status: HTTP 503 (3 consecutive failures)``."""
        error = _short(self.error)
        head = f"{self.outcome}: {error}" if error else self.outcome
        return f"{head} ({self.rule})"

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Incident:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """A state change (or a reminder) of one incident."""

    event: EventKind
    incident: Incident
    at_ns: int

    @property
    def state(self) -> Literal["open", "resolved"]:
        return "resolved" if self.event == "resolved" else "open"


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(slots=True)
class CheckTracker:
    """The window and the open incident of one ``(site, check, location)``."""

    thresholds: Thresholds
    kind: str = ""
    window: deque = field(default_factory=deque)
    """``(failed, at_ns)`` of the last ``flap_window`` counted runs."""
    streak: int = 0
    streak_step: str = ""
    streak_since_ns: int = 0
    successes: int = 0
    first_success_ns: int = 0
    last: Observation | None = None
    incident: Incident | None = None

    def observe(self, obs: Observation) -> IncidentEvent | None:
        if obs.outcome == "skipped":
            return None
        t = self.thresholds
        self.kind = obs.kind
        failed = obs.outcome != "ok"
        self.window.append((failed, obs.at_ns))
        while len(self.window) > t.flap_window:
            self.window.popleft()
        if failed:
            if self.streak and obs.failed_step == self.streak_step:
                self.streak += 1
            else:
                self.streak, self.streak_step, self.streak_since_ns = 1, obs.failed_step, obs.at_ns
            if self.incident is not None and self.successes:
                self.incident.flapping = True
            self.successes = 0
            self.last = obs
        else:
            self.streak, self.streak_step = 0, ""
            if self.successes == 0:
                self.first_success_ns = obs.at_ns
            self.successes += 1

        incident = self.incident
        if incident is None:
            failures = [at for bad, at in self.window if bad]
            if failed and self.streak >= t.open_after:
                rule = f"{self.streak} consecutive failures"
                since = self.streak_since_ns
                flapping = self._interleaved()
            elif failed and len(failures) >= t.flap_failures:
                rule = f"{len(failures)} of the last {len(self.window)} runs failed"
                since = failures[0]
                flapping = True
            else:
                return None
            self.incident = Incident(
                id=uuid.uuid4().hex[:12], site=obs.site, check=obs.check, kind=obs.kind, location=obs.location,
                since_ns=since, opened_ns=obs.at_ns, outcome=obs.outcome, failed_step=obs.failed_step,
                error=_short(obs.error), rule=rule, flapping=flapping, last_failure_ns=obs.at_ns,
                failures=len(failures), last_reminder_ns=obs.at_ns,
            )
            return IncidentEvent("opened", self.incident, obs.at_ns)
        if failed:
            incident.last_failure_ns = obs.at_ns
            incident.failures += 1
            return None
        if self.successes >= self._successes_needed(incident):
            incident.resolved_ns = self.first_success_ns
            self.incident = None
            return IncidentEvent("resolved", incident, obs.at_ns)
        return None

    def _successes_needed(self, incident: Incident) -> int:
        """Consecutive successes that resolve ``incident``.

        A long steady outage (at least ``flap_window`` failed runs) is back after
        ``resolve_after`` successes. A short one is not told apart from the start of a
        failure rate by two lucky runs (at 66 % of runs failing, two passes in a row
        come 12 % of the time): it needs ``2 × open_after`` successes, and an incident
        seen flapping needs ``flap_resolve_after``. ``resolved_ns`` still dates the
        recovery from the first success, so the duration is exact either way.
        """
        t = self.thresholds
        if incident.flapping:
            return t.flap_resolve_after
        if incident.failures >= t.flap_window:
            return t.resolve_after
        return min(t.flap_resolve_after, max(t.resolve_after, 2 * t.open_after))

    def _interleaved(self) -> bool:
        """Whether the window holds a success between two failures (a rate, not a steady outage)."""
        seen_failure = False
        seen_success_after = False
        for bad, _ in self.window:
            if bad:
                if seen_success_after:
                    return True
                seen_failure = True
            elif seen_failure:
                seen_success_after = True
        return False

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "window": [[bad, at] for bad, at in self.window],
            "streak": self.streak,
            "streak_step": self.streak_step,
            "streak_since_ns": self.streak_since_ns,
            "successes": self.successes,
            "first_success_ns": self.first_success_ns,
            "incident": self.incident.to_json() if self.incident else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], thresholds: Thresholds) -> CheckTracker:
        tracker = cls(thresholds, kind=data.get("kind", ""))
        tracker.window = deque((bool(b), int(a)) for b, a in data.get("window", [])[-thresholds.flap_window:])
        tracker.streak = int(data.get("streak", 0))
        tracker.streak_step = str(data.get("streak_step", ""))
        tracker.streak_since_ns = int(data.get("streak_since_ns", 0))
        tracker.successes = int(data.get("successes", 0))
        tracker.first_success_ns = int(data.get("first_success_ns", 0))
        if data.get("incident"):
            tracker.incident = Incident.from_json(data["incident"])
        return tracker


class Tracker:
    """Every check's :class:`CheckTracker`, with per-check threshold overrides."""

    def __init__(self, thresholds: Thresholds | None = None, overrides: dict[str, Thresholds] | None = None) -> None:
        self.thresholds = thresholds or Thresholds()
        self.overrides = dict(overrides or {})
        self.checks: dict[CheckKey, CheckTracker] = {}

    def thresholds_for(self, check: str) -> Thresholds:
        return self.overrides.get(check, self.thresholds)

    def observe(self, obs: Observation) -> IncidentEvent | None:
        """Count one run; return the state change it caused, if any."""
        if obs.outcome == "skipped":
            return None
        tracker = self.checks.get(obs.key)
        if tracker is None:
            tracker = self.checks[obs.key] = CheckTracker(self.thresholds_for(obs.check))
        return tracker.observe(obs)

    def open_incidents(self) -> list[Incident]:
        return [t.incident for t in self.checks.values() if t.incident is not None]

    def due_reminders(self, now_ns: int, every_s: float | None) -> list[IncidentEvent]:
        """A ``reminder`` for each incident open and unannounced for ``every_s`` seconds."""
        if not every_s:
            return []
        events = []
        for incident in self.open_incidents():
            if now_ns - incident.last_reminder_ns >= every_s * 1e9:
                incident.last_reminder_ns = now_ns
                events.append(IncidentEvent("reminder", incident, now_ns))
        return events

    def to_json(self) -> dict[str, Any]:
        return {key.as_str(): tracker.to_json() for key, tracker in self.checks.items()}

    def restore(self, data: dict[str, Any]) -> None:
        """Load state saved by :meth:`to_json` (thresholds come from the current config)."""
        for text, item in data.items():
            key = CheckKey.from_str(text)
            self.checks[key] = CheckTracker.from_json(item, self.thresholds_for(key.check))


def now_ns() -> int:
    return time.time_ns()


