"""Incident detection: from a stream of run outcomes to opened / resolved incidents.

Pure logic, no I/O, no clock of its own: every call passes the run's time, so the
tracker is tested (and replayed from its saved state) without servers.

One :class:`CheckTracker` per ``(site, check, location)``. Runs whose outcome is
``skipped`` are ignored (they neither fail nor succeed); every other outcome but ``ok``
is a failure, ``slow`` included (an incident made only of slow runs is *degraded*,
never an outage). The rules, stated as a person reading the runs would apply them:

Open
    ``open_after`` consecutive runs failed *at the same step* (a steady outage fails
    the same way every time), or ``flap_failures`` of the last ``flap_window`` runs
    failed (a failure *rate*: intermittent errors after a release).
Start (``since_ns``)
    The first failure of the streak (consecutive rule) or of the window (rate rule),
    unless another failure of the window splits its runs into a calm part and a failing
    part (at least ``open_after`` failures) clearly better (:func:`rate_start`): a rate
    which happened to show three failures in a row is dated from its first failure,
    while a lone noise failure a few runs before a hard outage or a rate is not.
Intermittent (``flapping``)
    Opened by the rate rule, or showing two returns to failure after a success (one
    failure after a first success is noise during recovery, not a rate).
Resolve
    When the last ``resolve_after`` runs passed and the last *R* runs hold no failure
    except at most one isolated one (a success on each side), where *R* is
    ``resolve_after`` after a long outage (``flap_window`` failed runs or more),
    ``2 × open_after`` after a shorter one (two passes right after three failures are
    as likely the gaps of a rate as a recovery), and ``flap_resolve_after`` for an
    intermittent one.
End (``resolved_ns``)
    The first success after the last failure that still counted (the isolated one
    forgiven by the rule above does not count), unless an earlier end splits the runs
    into a failing and a calm part clearly better (:func:`rate_end`): noise failures
    some runs after a failure rate ended do not stretch it.

A check no longer probed (removed from the configuration, or disabled) has its open
incident closed when the prober learns of it (a reload, a start): its end is then, and
its ``ended`` says why, since it did not recover (:meth:`Tracker.forget`).

After a resolution the window starts empty: the runs of the incident just closed never
count towards the next one, which must meet the opening rule on its own runs.

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
A 3-of-6 rule opens about 4 false incidents per 1000 runs of an 8 %-noisy
journey (one every 8 hours at 30 s), which is why it is not the default.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal, NamedTuple

from prober.results import KINDS, IncidentState

CLOSED_MARK = "; closed: "
"""Between an incident's reason and why it was closed without a recovery, in the reason
of its ``resolved`` point (read back by the cross-location loop)."""

EventKind = Literal["opened", "resolved", "reminder", "escalated"]
"""``escalated``: an incident decided outside the tracker got worse (a certificate reached
the next step of its warning ladder), announced like an opening."""


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
    """An :class:`~prober.results.Outcome` value; ``ok`` and ``skipped`` are special."""
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
    """When it was back: the first success after the last failure that still counted."""
    relapses: int = 0
    """Returns to failure after a success, within the incident (two make it flapping)."""
    slow: bool = False
    """Every failure of the incident was ``slow``: the capability is degraded, not down."""
    ended: str = ""
    """Why it ended without a recovery (its check is no longer probed); "" when it recovered."""

    @property
    def duration_s(self) -> float:
        end = self.resolved_ns if self.resolved_ns is not None else self.last_failure_ns
        return max(0.0, (end - self.since_ns) / 1e9)

    @property
    def reason(self) -> str:
        """``outcome: short error (rule)``, e.g. ``http_status: HTTP 503 (3 consecutive failures)``.

        An error that already starts with its outcome (``timeout: no complete answer…``)
        is not prefixed a second time.
        """
        error = _short(self.error)
        if error.startswith(f"{self.outcome}:"):
            head = error
        else:
            head = f"{self.outcome}: {error}" if error else self.outcome
        ended = f"{CLOSED_MARK}{self.ended}" if self.ended else ""
        return f"{head} ({self.rule}){ended}"

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

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
    def state(self) -> IncidentState:
        return "resolved" if self.event == "resolved" else "open"


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _log_likelihood(failures: int, runs: int) -> float:
    """Log-likelihood of ``failures`` in ``runs`` at their own rate (0 for an empty or pure part)."""
    out = 0.0
    for count in (failures, runs - failures):
        if count:
            out += count * math.log(count / runs)
    return out


SPLIT_MARGIN = 0.5
"""How much more likely (in log-likelihood: a factor of e^0.5 ≈ 1.65) another split of
the window must explain the runs before it replaces the rule's own start."""


def _best_split(window: list[tuple[bool, int]], default: int, candidates: Iterable[int],
                valid: Callable[[int, int, int, int], bool]) -> int:
    """The index among ``candidates`` that splits ``window`` into two parts whose failure
    rates explain its runs best, if it beats ``default`` by :data:`SPLIT_MARGIN`.

    ``valid(failures before, runs before, failures after, runs after)`` rules splits out.
    """
    total = sum(bad for bad, _ in window)

    def likelihood(index: int) -> float:
        before = sum(bad for bad, _ in window[:index])
        after, after_runs = total - before, len(window) - index
        if index != default and not valid(before, index, after, after_runs):
            return -math.inf
        return _log_likelihood(before, index) + _log_likelihood(after, after_runs)

    best, best_ll = default, likelihood(default) + SPLIT_MARGIN
    for index in candidates:
        if index != default and (ll := likelihood(index)) > best_ll:
            best, best_ll = index, ll
    return best


def rate_start(window: list[tuple[bool, int]], default: int, first: int, min_failures: int) -> int:
    """Index of the failure where the failing part of ``window`` most likely began.

    Each failure from index ``first`` on with at least ``min_failures`` failures from it
    to the end splits the window into a calm part before it and a failing part from it
    on; the split whose two failure rates explain the runs best (maximum likelihood),
    with the failing part failing more often than the calm one, replaces ``default``
    (the rule's own start) when it is clearly better (by :data:`SPLIT_MARGIN`).
    """
    return _best_split(
        window, default, (i for i in range(first, len(window)) if window[i][0]),
        lambda before, runs, after, after_runs: after >= min_failures and after / after_runs > before / max(runs, 1),
    )


def rate_end(window: list[tuple[bool, int]], default: int, min_failures: int) -> int:
    """Index of the success where the failing part of ``window`` most likely ended.

    The mirror of :func:`rate_start`: each success right after a failure, before
    ``default``, with at least ``min_failures`` failures before it, splits the window
    into a failing part and a calm part; the most likely split, with the failing part
    failing more often than the calm one, replaces ``default`` when it is clearly
    better. So a noise failure some runs after a failure rate ended does not move its
    end.
    """
    return _best_split(
        window, default, (i for i in range(1, default) if not window[i][0] and window[i - 1][0]),
        lambda before, runs, after, after_runs: before >= min_failures and before / runs > after / max(after_runs, 1),
    )


def _relapses(window: list[tuple[bool, int]]) -> int:
    """Failures that follow a success, in ``window``."""
    return sum(1 for (prev, _), (bad, _) in pairwise(window) if bad and not prev)


@dataclass(slots=True)
class CheckTracker:
    """The recent runs and the open incident of one ``(site, check, location)``."""

    thresholds: Thresholds
    kind: str = ""
    window: deque = field(default_factory=deque)
    """``(failed, at_ns)`` of the recent counted runs since the last resolution (at most
    :meth:`history` of them)."""
    streak: int = 0
    streak_step: str = ""
    streak_since_ns: int = 0
    successes: int = 0
    first_success_ns: int = 0
    last: Observation | None = None
    incident: Incident | None = None

    def history(self) -> int:
        """How many runs the window keeps: the longest recovery, plus a rate window before it
        (to date the end of an intermittent incident)."""
        t = self.thresholds
        return max(t.flap_window, 2 * t.open_after, t.resolve_after) + t.flap_resolve_after + 1

    def observe(self, obs: Observation) -> IncidentEvent | None:
        if obs.outcome == "skipped":
            return None
        self.kind = obs.kind
        failed = obs.outcome != "ok"
        relapse = False
        self.window.append((failed, obs.at_ns))
        while len(self.window) > self.history():
            self.window.popleft()
        if failed:
            if self.streak and obs.failed_step == self.streak_step:
                self.streak += 1
            else:
                self.streak, self.streak_step, self.streak_since_ns = 1, obs.failed_step, obs.at_ns
            relapse = self.successes > 0
            self.successes = 0
            self.last = obs
        else:
            self.streak, self.streak_step = 0, ""
            if self.successes == 0:
                self.first_success_ns = obs.at_ns
            self.successes += 1

        incident = self.incident
        if incident is None:
            return self._maybe_open(obs) if failed else None
        if failed:
            self._count_failure(incident, obs, relapse)
            return None
        end = self._recovered(incident)
        if end is None:
            return None
        incident.resolved_ns = end
        self.incident = None
        self.window.clear()  # the next incident is judged on its own runs
        return IncidentEvent("resolved", incident, obs.at_ns)

    def _maybe_open(self, obs: Observation) -> IncidentEvent | None:
        t = self.thresholds
        window = list(self.window)
        recent = window[-t.flap_window:]
        failures = sum(bad for bad, _ in recent)
        if self.streak >= t.open_after:
            rule = f"{self.streak} consecutive failures"
            streak_start = len(window) - self.streak
            start = rate_start(window, streak_start, 0, self.streak)
            part = window[start:]
            relapses = _relapses(part)
            flapping = relapses >= 2
        elif failures >= t.flap_failures:
            rule = f"{failures} of the last {len(recent)} runs failed"
            first = len(window) - len(recent)
            start = rate_start(window, first + next(i for i, (bad, _) in enumerate(recent) if bad), first,
                               t.open_after)
            part = window[start:]
            relapses = _relapses(part)
            flapping = True
        else:
            return None
        self.incident = Incident(
            id=uuid.uuid4().hex[:12], site=obs.site, check=obs.check, kind=obs.kind, location=obs.location,
            since_ns=window[start][1], opened_ns=obs.at_ns, outcome=obs.outcome, failed_step=obs.failed_step,
            error=_short(obs.error), rule=rule, flapping=flapping, last_failure_ns=obs.at_ns,
            failures=sum(bad for bad, _ in part), last_reminder_ns=obs.at_ns, relapses=relapses,
            slow=obs.outcome == "slow",
        )
        return IncidentEvent("opened", self.incident, obs.at_ns)

    def _count_failure(self, incident: Incident, obs: Observation, relapse: bool) -> None:
        incident.last_failure_ns = obs.at_ns
        incident.failures += 1
        if relapse:
            incident.relapses += 1
            incident.flapping = incident.flapping or incident.relapses >= 2
        if incident.slow and obs.outcome != "slow":
            # No longer only slow: the incident is now about this failure.
            incident.slow = False
            incident.outcome, incident.failed_step, incident.error = obs.outcome, obs.failed_step, _short(obs.error)

    def recovery_runs(self, incident: Incident) -> int:
        """*R*: how many recent runs must be clean (but for one isolated failure) to resolve ``incident``.

        A long steady outage (at least ``flap_window`` failed runs) is back after
        ``resolve_after`` successes. A short one is not told apart from the start of a
        failure rate by two lucky runs (at 66 % of runs failing, two passes in a row
        come 12 % of the time): it needs ``2 × open_after``; an intermittent one needs
        ``flap_resolve_after``.
        """
        t = self.thresholds
        if incident.flapping:
            return t.flap_resolve_after
        if incident.failures >= t.flap_window:
            return t.resolve_after
        return min(t.flap_resolve_after, max(t.resolve_after, 2 * t.open_after))

    def _recovered(self, incident: Incident) -> int | None:
        """The estimated end of ``incident`` when the runs so far resolve it, else None."""
        if self.successes < self.thresholds.resolve_after:
            return None
        window = list(self.window)
        needed = self.recovery_runs(incident)
        if len(window) < needed:
            return None
        if self._isolated_failure(window, needed) is False:
            return None
        # The last failure is forgiven when it is isolated and recent (within a short
        # outage's recovery): a lone failure just after a long outage is noise too,
        # though two successes already resolved it.
        failures = [i for i in range(len(window)) if window[i][0]]
        span = max(needed, 2 * self.thresholds.open_after)
        if failures and failures[-1] >= len(window) - span and self._isolated(window, failures[-1]):
            failures.pop()
        if not failures:  # the failing stretch is older than the window: it ended before its first run
            return window[0][1]
        return window[rate_end(window, failures[-1] + 1, self.thresholds.open_after)][1]

    @staticmethod
    def _isolated_failure(window: list[tuple[bool, int]], runs: int) -> int | None | Literal[False]:
        """In the last ``runs`` of ``window``: None when they all passed, the index of their one
        failure when it is isolated (a success on each side), False otherwise."""
        bad = [i for i in range(max(len(window) - runs, 0), len(window)) if window[i][0]]
        if not bad:
            return None
        return bad[0] if len(bad) == 1 and CheckTracker._isolated(window, bad[0]) else False

    @staticmethod
    def _isolated(window: list[tuple[bool, int]], index: int) -> bool:
        """Whether the failure at ``index`` has a success on each side."""
        return 0 < index < len(window) - 1 and not window[index - 1][0] and not window[index + 1][0]

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
        tracker.window = deque((bool(b), int(a)) for b, a in data.get("window", [])[-tracker.history():])
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

    def forget(self, keys: Iterable[CheckKey], at_ns: int, why: str) -> list[IncidentEvent]:
        """Forget the runs of the checks ``keys`` (no longer probed) and close their open
        incidents at ``at_ns``, saying ``why``: a ``resolved`` event for each."""
        events = []
        for key in keys:
            tracker = self.checks.pop(key, None)
            incident = tracker.incident if tracker is not None else None
            if incident is not None:
                incident.resolved_ns = max(at_ns, incident.since_ns)
                incident.ended = why
                events.append(IncidentEvent("resolved", incident, at_ns))
        return events

    def due_reminders(self, now_ns: int, every_s: float | None) -> list[IncidentEvent]:
        """A ``reminder`` for each incident of a capability open and unannounced for
        ``every_s`` seconds. An incident about something else (a certificate expiring:
        kind ``certificate``) is announced by whoever decided it, at each step of its
        warning ladder, never every ``every_s``."""
        if not every_s:
            return []
        events = []
        for incident in self.open_incidents():
            if incident.kind not in KINDS:
                continue
            if now_ns - incident.last_reminder_ns >= every_s * 1e9:
                incident.last_reminder_ns = now_ns
                events.append(IncidentEvent("reminder", incident, now_ns))
        return events

    def to_json(self) -> dict[str, Any]:
        return {key.as_str(): tracker.to_json() for key, tracker in self.checks.items()}

    def restore(self, data: dict[str, Any]) -> int:
        """Load state saved by :meth:`to_json` (thresholds come from the current config);
        the number of malformed entries skipped."""
        skipped = 0
        for text, item in data.items():
            try:
                key = CheckKey.from_str(text)
                self.checks[key] = CheckTracker.from_json(item, self.thresholds_for(key.check))
            except (TypeError, ValueError, KeyError, AttributeError):
                skipped += 1
        return skipped


def now_ns() -> int:
    return time.time_ns()


