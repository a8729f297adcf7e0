"""The warning ladder: from a certificate's dates and the time now to what to say about it.

Pure functions of the certificate's dates and of ``now``, which is the host's clock: the
prober trusts its own clock. A host whose clock is wrong by *d* days warns *d* days early
or late, and so does OpenSSL, which judges the bank's certificates by the same clock
(a clock far ahead sees valid certificates as expired, one far behind sees new ones as not
yet valid: outcome ``tls``, with OpenSSL's reason). Keep the host on NTP.

States, in the order a certificate goes through them:

``not_yet_valid``  ``now`` is before its not-before
``ok``             more days left than the ladder's first step
``warning``        at most that many days left; ``step`` is the smallest step of the
                   ladder at or above the days left (30, 14, 7, 1 by default)
``expired``        its not-after is past (``step`` 0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prober.certfacts import SECONDS_PER_DAY, CertificateFacts

State = Literal["not_yet_valid", "ok", "warning", "expired"]
EXPIRED_STEP = 0


@dataclass(frozen=True, slots=True)
class Assessment:
    """What the ladder says of a certificate at one moment."""

    state: State
    days_left: float
    step: int | None
    """The ladder's step reached (days), 0 once expired, None while ``ok`` or not valid yet."""

    @property
    def unusable(self) -> bool:
        """Expired or not valid yet: a peer that checks dates refuses it."""
        return self.state in ("expired", "not_yet_valid")

    def words(self) -> str:
        """``expires in 13 days`` / ``expired 2 days ago`` / ``not valid yet``."""
        if self.state == "not_yet_valid":
            return "is not valid yet"
        if self.state == "expired":
            ago = -self.days_left
            return f"expired {_days(ago)} ago"
        return f"expires in {_days(self.days_left)}"


def _days(days: float) -> str:
    if days < 1:
        hours = max(0, round(days * 24))
        return f"{hours} hour{'s' * (hours != 1)}"
    whole = round(days)
    return f"{whole} day{'s' * (whole != 1)}"


@dataclass(frozen=True, slots=True)
class Ladder:
    """The steps (days before expiry) at which a certificate is warned about, decreasing."""

    days: tuple[int, ...] = (30, 14, 7, 1)

    def __post_init__(self) -> None:
        if not self.days or any(d < 1 for d in self.days):
            raise ValueError("a ladder is one or more numbers of days, each at least 1")
        object.__setattr__(self, "days", tuple(sorted(set(self.days), reverse=True)))

    @property
    def first(self) -> int:
        return self.days[0]

    def step(self, days_left: float) -> int | None:
        """The step reached with ``days_left`` (0 when expired; None above the first)."""
        if days_left <= 0:
            return EXPIRED_STEP
        reached = [d for d in self.days if days_left <= d]
        return min(reached) if reached else None


def assess(facts: CertificateFacts, now: float, ladder: Ladder) -> Assessment:
    """The state of a certificate with ``facts`` at ``now`` (Unix seconds, the host's clock)."""
    days_left = (facts.not_after - now) / SECONDS_PER_DAY
    if now < facts.not_before:
        return Assessment("not_yet_valid", days_left, None)
    step = ladder.step(days_left)
    if step is None:
        return Assessment("ok", days_left, None)
    return Assessment("expired" if step == EXPIRED_STEP else "warning", days_left, step)
