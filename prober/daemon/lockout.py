"""Lockout protection: spare the test customer's account without blinding the prober.

Banks lock a customer out after a few failed logins in a row, and a successful login
resets their count. A prober retrying every 30 s with a password that stopped working
would lock the test customer out for good; a prober that stops for a quarter of an hour
after three refusals hides an intermittent-auth outage (with 40 % of logins answering
401, three in a row across a bank's checks come within seconds). So a site that refuses
the prober's logins backs off briefly and *probes*, which tells a failure rate from
credentials that stopped working:

* every executed run of a site counts (skipped runs are ignored): one whose outcome is
  ``auth`` (a step answered 401/403) is *refused*, any other outcome resets the count of
  consecutive refusals. The last :data:`WINDOW` runs give the site's auth failure rate.
* after ``lockout_after`` refusals in a row, across the site's checks, every check of the
  site backs off for a first pause (``lockout_first_pause``, by default the site's
  shortest check interval): its scheduled runs are recorded as ``skipped`` results whose
  error names the reason and the end of the pause, and the bank is not contacted;
* when the pause is over, one run (the first check due) probes; the others keep
  skipping until its result is in. A probe that is not refused means the credentials
  work (the refusals were a *rate*): every check resumes at once, and the bank's own
  counter was reset by that login. Each probe refused again doubles the pause, up to
  ``lockout_cooldown``; once a refused probe has brought the pause to that cap, the
  state is ``credentials_refused`` (five refused probes in a row with the defaults: a
  40 % rate does that about 1 time in 100, dead credentials every time).

States, on ``/status`` and counted in the ``prober`` self-report: ``ok``,
``backing_off``, ``credentials_refused``.

When a site backs off with no lockout incident open, an incident is opened on its
``login`` capability through :class:`LockoutIncidents` (the incident service: an
``incident`` point, maintenance silencing, one notification), dated from the first
refusal of the streak, with the failures seen as its reason. It is resolved once the
site is no longer backing off and its last :data:`RECOVERY_RUNS` runs were not refused,
dated by the first of the runs after the last refusal.

The state is saved in ``state_dir/lockout.json`` at each change, so a restart (or a
crash loop) neither resets a back-off nor forgets its open incident.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from prober.atomic import write_atomic
from prober.results import JourneyResult, Outcome
from prober.timefmt import utc_iso

log = logging.getLogger("prober.daemon.lockout")

State = Literal["ok", "backing_off", "credentials_refused"]

WINDOW = 20
"""Runs of a site (login-bearing: every journey of a site starts by logging in) over
which its auth failure rate is computed."""
RECOVERY_RUNS = 10
"""Runs in a row not refused that resolve a lockout incident (at a 40 % refusal rate,
ten passes in a row come 0.6 % of the time)."""
PROBE_CLAIM = 120.0
"""Seconds after which a probe whose result never came (its check removed by a reload,
its run skipped) lets another check probe."""


LOCKOUT_CHECK = "lockout"
"""The ``check`` of a lockout incident (in its ``incident`` point and its messages)."""
LOCKOUT_RULE = "lockout protection"


class LockoutIncidents(Protocol):
    """Where the lockout opens and resolves its incidents (the incident service)."""

    def open_external(self, *, site: str, check: str, kind: str, location: str, outcome: str, reason: str,
                      rule: str, since_ns: int) -> str:
        """Open an incident decided outside the run tracker; its id, or "" when none was
        opened (an incident of that capability is open already)."""
        ...

    def resolve_external(self, incident_id: str, *, resolved_ns: int, ended: str = "") -> bool:
        """Resolve it (dated ``resolved_ns``; ``ended``: why, when not by a recovery);
        False when it is no longer open."""
        ...

    def adopt_external(self, incident_id: str) -> bool:
        """After a restart: take back an incident opened before it; False when it is not open."""
        ...


@dataclass(slots=True)
class SiteLockout:
    """The lockout state of one site."""

    state: State = "ok"
    since: float = 0.0
    """When the current state began (epoch seconds; 0: never left ``ok``)."""
    until: float = 0.0
    """End of the current pause (epoch seconds); 0 when not backing off."""
    pause: float = 0.0
    """Length of the current pause (doubles with each refused probe)."""
    failures: int = 0
    """Consecutive refused runs, across the site's checks."""
    streak_checks: list[str] = field(default_factory=list)
    """The checks whose runs were refused in the current streak, in order."""
    streak_since_ns: int = 0
    window: deque[tuple[bool, int]] = field(default_factory=lambda: deque(maxlen=WINDOW))
    """``(refused, started_at_ns)`` of the site's latest runs."""
    probing: str = ""
    """The check running the probe after a pause, if any."""
    probe_claimed: float = 0.0
    skipped: dict[str, int] = field(default_factory=dict)
    """Runs skipped per check during the current back-off."""
    location: str = ""
    incident: str = ""
    """Id of the open lockout incident, if any."""

    @property
    def backing_off(self) -> bool:
        return self.until > 0

    def rate(self) -> tuple[int, int]:
        """``(refused, runs)`` over the window."""
        return sum(refused for refused, _ in self.window), len(self.window)

    def document(self) -> dict[str, Any]:
        """What ``/status`` shows of the site."""
        refused, runs = self.rate()
        return {
            "state": self.state,
            "since": utc_iso(self.since) if self.since else None,
            "until": utc_iso(self.until) if self.until else None,
            "pause_s": self.pause if self.until else 0.0,
            "consecutive_auth_failures": self.failures,
            "auth_failures": {"refused": refused, "runs": runs, "rate": round(refused / runs, 3) if runs else 0.0},
            "probing": self.probing,
            "skipped_checks": dict(sorted(self.skipped.items())),
            "incident": self.incident or None,
        }


class LockoutTracker:
    """A result consumer that also tells the scheduler whether a site may be contacted.

    ``first_pauses`` maps a site to its first pause (see :func:`first_pauses`); a site
    not in it starts at ``cooldown``. Given, its keys are the sites probed: the runs of
    any other are ignored and their state forgotten (:meth:`forget_unconfigured`).
    ``incidents`` receives the lockout incidents.
    """

    def __init__(
        self,
        after: int,
        cooldown: float,
        state_dir: str | Path | None = None,
        *,
        first_pauses: Mapping[str, float] | None = None,
        incidents: LockoutIncidents | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.after = after
        self.cooldown = cooldown
        self.first_pauses = dict(first_pauses or {})
        self.incidents = incidents
        self.clock = clock
        self.path = Path(state_dir) / "lockout.json" if state_dir else None
        self.sites: dict[str, SiteLockout] = {}

    def first_pause(self, site: str) -> float:
        return min(self.first_pauses.get(site, self.cooldown), self.cooldown)

    # -- asked by the scheduler before each run ------------------------------------

    def refusal(self, site: str, check: str, now: float | None = None) -> str | None:
        """None when ``check`` of ``site`` may run now; else the reason it must not."""
        state = self.sites.get(site)
        if state is None or not state.until:
            return None
        now = self.clock() if now is None else now
        if now < state.until:
            reason = (
                f"skipped: site {site} is backing off after {state.failures} consecutive auth failures "
                f"(lockout protection, {state.state}) until {utc_iso(state.until)}"
            )
        elif state.probing and state.probing != check and now - state.probe_claimed < PROBE_CLAIM:
            reason = f"skipped: site {site} is backing off; waiting for the probe run of check {state.probing}"
        else:
            state.probing, state.probe_claimed = check, now
            return None
        state.skipped[check] = state.skipped.get(check, 0) + 1
        return reason

    # -- consumer --------------------------------------------------------------------

    def consume(self, result: JourneyResult) -> None:
        if result.outcome is Outcome.SKIPPED:
            return
        if self.first_pauses and result.site not in self.first_pauses:
            return  # the late run of a site a reload removed: forgotten, not brought back
        state = self.sites.setdefault(result.site, SiteLockout())
        state.location = result.location
        refused = result.outcome is Outcome.AUTH
        state.window.append((refused, result.started_at_ns))
        probe = bool(state.until) and state.probing == result.check
        if refused:
            if not state.failures:
                state.streak_checks, state.streak_since_ns = [], result.started_at_ns
            state.failures += 1
            if result.check not in state.streak_checks:
                state.streak_checks.append(result.check)
            if probe:
                self._pause(result.site, state, min(state.pause * 2, self.cooldown), "the probe run was refused again")
            elif not state.until and state.failures >= self.after:
                self._pause(result.site, state, self.first_pause(result.site),
                            f"{state.failures} consecutive runs failed with auth")
            return
        if probe:
            self._resume(result.site, state, result.check)
        elif state.until:
            return  # a run that started before the back-off; the probe decides
        state.failures = 0
        if state.incident:
            self._maybe_resolve(result.site, state)

    def _pause(self, site: str, state: SiteLockout, pause: float, why: str) -> None:
        now = self.clock()
        escalated = state.until > 0 and pause >= self.cooldown and state.state != "credentials_refused"
        if not state.until:
            state.state, state.since = "backing_off", now
        elif escalated:
            state.state, state.since = "credentials_refused", now
        state.pause = pause
        state.until = now + pause
        state.probing = ""
        log.warning(
            "site %s: %s; backing off every check of the site for %gs, until %s (lockout protection, %s)",
            site, why, pause, utc_iso(state.until), state.state,
        )
        if not state.incident:
            self._open_incident(site, state)
        self._save()

    def _resume(self, site: str, state: SiteLockout, check: str) -> None:
        refused, runs = state.rate()
        log.warning(
            "site %s: probe run %s passed authentication; resuming its checks (%d of the last %d runs refused)",
            site, check, refused, runs,
        )
        state.state, state.since = "ok", self.clock()
        state.until, state.pause, state.probing = 0.0, 0.0, ""
        state.skipped.clear()
        self._save()

    # -- the incident ------------------------------------------------------------------

    def reason(self, site: str, state: SiteLockout) -> str:
        """Why the site backs off, from the failures seen."""
        refused, runs = state.rate()
        until = utc_iso(state.until)
        if refused > state.failures and refused < runs:
            return (f"intermittent auth failures: {refused} of the last {runs} logins refused (401/403); "
                    f"backing off until {until}")
        return (f"credentials refused: {state.failures} consecutive 401/403 across checks "
                f"{', '.join(state.streak_checks)}; backing off until {until}")

    def _open_incident(self, site: str, state: SiteLockout) -> None:
        if self.incidents is None:
            return
        try:
            state.incident = self.incidents.open_external(
                site=site, check=LOCKOUT_CHECK, kind="login", location=state.location, outcome="auth",
                reason=self.reason(site, state), rule=LOCKOUT_RULE, since_ns=state.streak_since_ns or time.time_ns(),
            )
        except Exception:  # the back-off itself must hold whatever the incident service does
            log.exception("site %s: cannot open the lockout incident", site)

    def _maybe_resolve(self, site: str, state: SiteLockout) -> None:
        window = list(state.window)
        recent = window[-RECOVERY_RUNS:]
        if self.incidents is None or len(recent) < RECOVERY_RUNS or any(refused for refused, _ in recent):
            return
        last_refused = max((i for i, (refused, _) in enumerate(window) if refused), default=-1)
        end_ns = window[last_refused + 1][1]
        try:
            self.incidents.resolve_external(state.incident, resolved_ns=end_ns)
        except Exception:
            log.exception("site %s: cannot resolve the lockout incident", site)
            return
        state.incident = ""
        self._save()

    # -- views -------------------------------------------------------------------------

    def locked_sites(self) -> dict[str, float]:
        """``site → end of its pause`` for every site backing off."""
        return {name: s.until for name, s in self.sites.items() if s.until}

    def counts(self) -> dict[str, int]:
        """Sites per non-``ok`` state (the ``prober`` self-report's fields)."""
        states = [s.state for s in self.sites.values()]
        return {"backing_off": states.count("backing_off"), "credentials_refused": states.count("credentials_refused")}

    def status(self) -> dict[str, dict[str, Any]]:
        """Per site that ever refused a login: state, since, until, failures, rate, skipped checks."""
        return {name: s.document() for name, s in sorted(self.sites.items()) if s.since or s.failures or s.incident}

    # -- configuration and persistence -------------------------------------------------

    def reload(self, config: Any) -> None:
        """Take the first pauses of a reloaded configuration, and forget the sites it no
        longer probes."""
        self.first_pauses = first_pauses(config)
        self.forget_unconfigured()

    def forget_unconfigured(self) -> None:
        """Forget the sites without an enabled check (the keys of :attr:`first_pauses`):
        their back-off and counts, and their lockout incident, closed since no run of
        theirs will ever resolve it (the daemon also calls this at start, for sites
        removed while it was stopped)."""
        gone = [site for site in self.sites if site not in self.first_pauses]
        for site in gone:
            state = self.sites.pop(site)
            if state.incident and self.incidents is not None:
                log.info("site %s is no longer probed: its lockout incident %s is closed", site, state.incident)
                try:
                    self.incidents.resolve_external(state.incident, resolved_ns=time.time_ns(),
                                                    ended="its site is no longer probed")
                except Exception:
                    log.exception("site %s: cannot close the lockout incident", site)
        if gone:
            self._save()

    async def start(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self._restore(data)
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.error("cannot read the lockout state %s: %s", self.path, exc)
        for site, state in self.sites.items():
            if state.incident and (self.incidents is None or not self.incidents.adopt_external(state.incident)):
                log.info("site %s: the lockout incident %s is no longer open", site, state.incident)
                state.incident = ""

    def _restore(self, data: dict[str, Any]) -> None:
        sites = dict(data.get("sites", {}))
        for site, until in dict(data.get("until", {})).items():  # the format before the states
            sites.setdefault(site, {"state": "backing_off", "until": until, "pause": self.cooldown,
                                    "failures": self.after})
        for site, item in sites.items():
            state = SiteLockout(
                state=item.get("state", "ok"), since=float(item.get("since", 0.0)),
                until=float(item.get("until", 0.0)), pause=float(item.get("pause", 0.0)),
                failures=int(item.get("failures", 0)), streak_checks=list(item.get("checks", [])),
                streak_since_ns=int(item.get("streak_since_ns", 0)), location=str(item.get("location", "")),
                incident=str(item.get("incident", "")),
            )
            if state.state not in ("ok", "backing_off", "credentials_refused"):
                raise ValueError(f"unknown lockout state {state.state!r} of site {site}")
            self.sites[str(site)] = state
            if state.until:
                log.warning("site %s: still backing off after a restart until %s (%s)",
                            site, utc_iso(state.until), state.state)

    async def close(self) -> None:
        self._save()

    def to_json(self) -> dict[str, Any]:
        return {"sites": {
            name: {"state": s.state, "since": s.since, "until": s.until, "pause": s.pause, "failures": s.failures,
                   "checks": s.streak_checks, "streak_since_ns": s.streak_since_ns, "location": s.location,
                   "incident": s.incident}
            for name, s in self.sites.items() if s.since or s.incident
        }}

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            write_atomic(self.path, json.dumps(self.to_json()).encode())
        except OSError as exc:
            log.error("cannot save the lockout state to %s: %s", self.path, exc)


def first_pauses(config: Any) -> dict[str, float]:
    """Each site's first pause: ``[daemon] lockout_first_pause`` when set, else the
    shortest interval of its enabled checks (at least 1 s)."""
    fixed = config.daemon.lockout_first_pause
    out = {}
    for site in config.sites:
        intervals = [c.interval for c in site.checks if c.enabled]
        if intervals:
            out[site.name] = fixed if fixed is not None else max(1.0, min(intervals))
    return out
