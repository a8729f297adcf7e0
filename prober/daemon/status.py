"""The live status: the latest result of every site × check, for ``/status`` and the demo."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prober.results import JourneyResult, Outcome
from prober.timefmt import utc_iso_ns


@dataclass(slots=True)
class CheckStatus:
    """What is known of one check of one site."""

    site: str
    check: str
    kind: str
    last: JourneyResult | None = None
    runs: int = 0
    """Results received (skipped ones included)."""
    skipped: int = 0
    consecutive_failures: int = 0
    """Failed runs in a row (skipped runs neither count nor reset it)."""
    last_success_ns: int = 0
    evidence: tuple[str, ...] = ()
    """Files kept of the latest failed browser run (screenshot, trace); cleared by a success."""

    def to_json(self) -> dict[str, Any]:
        last = self.last
        data: dict[str, Any] = {
            "site": self.site,
            "check": self.check,
            "kind": self.kind,
            "runs": self.runs,
            "skipped": self.skipped,
            "consecutive_failures": self.consecutive_failures,
            "last_success": utc_iso_ns(self.last_success_ns, millis=True) if self.last_success_ns else None,
        }
        if last is None:
            data.update(outcome=None, success=None, duration_ms=None, failed_step="", error="", time=None)
        else:
            data.update(
                outcome=last.outcome.value,
                success=last.success,
                duration_ms=round(last.duration_ms, 3),
                failed_step=last.failed_step,
                error=last.error,
                time=utc_iso_ns(last.started_at_ns, millis=True),
            )
        return data


class StatusStore:
    """A result consumer keeping the latest state of each check (results are redacted)."""

    def __init__(self) -> None:
        self.checks: dict[tuple[str, str], CheckStatus] = {}

    def declare(self, site: str, check: str, kind: str) -> None:
        """Make a configured check visible before its first result."""
        self.checks.setdefault((site, check), CheckStatus(site, check, kind))

    def forget(self, site: str, check: str) -> None:
        """A check removed by a reload."""
        self.checks.pop((site, check), None)

    def evidence(self, site: str, check: str) -> tuple[str, ...]:
        """The evidence files of the check's latest failed browser run (none once it passes)."""
        entry = self.checks.get((site, check))
        return entry.evidence if entry is not None else ()

    def consume(self, result: JourneyResult) -> None:
        entry = self.checks.get((result.site, result.check))
        if entry is None:
            entry = self.checks[(result.site, result.check)] = CheckStatus(result.site, result.check, result.kind)
        entry.kind = result.kind
        entry.runs += 1
        if result.outcome is Outcome.SKIPPED:
            entry.skipped += 1
            entry.last = result
            return
        entry.last = result
        if result.evidence:
            entry.evidence = result.evidence
        if result.success:
            entry.evidence = ()
            entry.consecutive_failures = 0
            entry.last_success_ns = result.started_at_ns
        else:
            entry.consecutive_failures += 1

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        return [self.checks[k].to_json() for k in sorted(self.checks)]
