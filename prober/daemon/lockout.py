"""Lockout protection: stop hammering a bank that refuses our credentials.

Banks lock a customer out after a few failed logins; a prober retrying every 30 s with
a wrong or expired password would lock the test customer out for good. So:

* every run of a site whose outcome is ``auth`` (a step answered 401/403) counts; any
  other executed outcome of that site resets the count (skipped runs are ignored);
* after ``lockout_after`` such runs in a row, every check of the site backs off for
  ``lockout_cooldown``: its scheduled runs are recorded as ``skipped`` results whose
  error names the reason and the time the back-off ends, and the bank is not contacted;
* when the cool-down is over, one run (the first check due) probes; the others keep
  skipping until its result is in. If it fails with ``auth`` again, the site backs off
  for another cool-down; otherwise every check resumes.

The back-off deadlines are saved in ``state_dir/lockout.json`` so a restart (or a crash
loop) does not reset them.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from prober.atomic import write_atomic
from prober.results import JourneyResult, Outcome
from prober.timefmt import utc_iso

log = logging.getLogger("prober.daemon.lockout")


@dataclass(slots=True)
class _SiteState:
    failures: int = 0
    until: float = 0.0
    """Wall-clock end of the back-off (epoch seconds); 0 when not backing off."""
    probing: str = ""
    """The check running the probe after a cool-down, if any."""


def _clock(epoch: float) -> str:
    return utc_iso(epoch)


class LockoutTracker:
    """A result consumer that also tells the scheduler whether a site may be contacted."""

    def __init__(self, after: int, cooldown: float, state_dir: str | Path | None = None) -> None:
        self.after = after
        self.cooldown = cooldown
        self.path = Path(state_dir) / "lockout.json" if state_dir else None
        self.sites: dict[str, _SiteState] = {}

    # -- asked by the scheduler before each run ------------------------------------

    def refusal(self, site: str, check: str, now: float | None = None) -> str | None:
        """None when ``check`` of ``site`` may run now; else the reason it must not."""
        state = self.sites.get(site)
        if state is None or not state.until:
            return None
        now = time.time() if now is None else now
        if now < state.until:
            return (
                f"skipped: site {site} is backing off after {self.after} consecutive auth failures "
                f"(lockout protection) until {_clock(state.until)}"
            )
        if state.probing and state.probing != check:
            return f"skipped: site {site} is backing off; waiting for the probe run of check {state.probing}"
        state.probing = check
        return None

    # -- consumer --------------------------------------------------------------------

    def consume(self, result: JourneyResult) -> None:
        if result.outcome is Outcome.SKIPPED:
            return
        state = self.sites.setdefault(result.site, _SiteState())
        if result.outcome is Outcome.AUTH:
            state.failures += 1
            if state.until and state.probing == result.check:
                self._lock(result.site, state, "the probe run after the cool-down failed with auth again")
            elif not state.until and state.failures >= self.after:
                self._lock(result.site, state, f"{state.failures} consecutive runs failed with auth")
            return
        if state.until and state.probing == result.check:
            log.warning("site %s: probe run %s passed authentication; resuming its checks", result.site, result.check)
            state.until, state.probing = 0.0, ""
            self._save()
        elif state.until:
            return  # a run that started before the lockout; the probe decides
        state.failures = 0

    def _lock(self, site: str, state: _SiteState, why: str) -> None:
        state.until = time.time() + self.cooldown
        state.probing = ""
        log.warning(
            "site %s: %s; backing off every check of the site until %s (lockout protection)",
            site, why, _clock(state.until),
        )
        self._save()

    def locked_sites(self) -> dict[str, float]:
        return {name: s.until for name, s in self.sites.items() if s.until}

    async def start(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            for site, until in dict(data.get("until", {})).items():
                if isinstance(until, (int, float)) and until > 0:
                    self.sites[str(site)] = _SiteState(failures=self.after, until=float(until))
                    log.warning("site %s: still backing off after a restart until %s", site, _clock(until))
        except (OSError, ValueError, AttributeError) as exc:
            log.error("cannot read the lockout state %s: %s", self.path, exc)

    async def close(self) -> None:
        self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            write_atomic(self.path, json.dumps({"until": self.locked_sites()}).encode())
        except OSError as exc:
            log.error("cannot save the lockout state to %s: %s", self.path, exc)
