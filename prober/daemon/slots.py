"""Concurrency slots per site: a hanging bank only ever holds its own.

Every site has a pool of slots; a journey holds one slot of its own site while it runs,
and nothing else is shared. So the journeys of a hanging bank, each held until its
journey timeout, can fill their own site's pool but never delay another site's checks.

Sizing (:func:`site_limits`), from the configuration:

* A site's limit is its ``max_concurrency``, by default its number of enabled checks.
  A check never runs twice at once (a run due while the previous one is still going
  is skipped), so with the default every check of a site finds a slot at once, even
  while some of them hang: a bank whose transfers hang still has its logins probed on
  time. The average need, ``timeout / interval`` summed over the checks, is not enough:
  when a capability hangs, all its checks are in flight together.
* ``[daemon] max_concurrency`` unset (the default): the total is the sum of the sites'
  limits, what the checks can need at once, and no run ever waits for another site.
  Set lower, it is divided among the sites in proportion to their limits, at least one
  slot each (largest remainder): each site keeps a fixed share of its own.

A run that finds its site's pool full waits for a slot of that site (the wait shows in
the schedule lag); the next run of the same check, if due before it got one, is
recorded as ``skipped`` with a reason naming the full pool, never silently.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Iterable

from prober.config.model import Config
from prober.journey.plan import JourneyPlan


def site_limits(config: Config, plans: Iterable[JourneyPlan]) -> dict[str, int]:
    """Slots of each site that has an enabled check (see the module docstring)."""
    checks: dict[str, int] = {}
    for plan in plans:
        checks[plan.site] = checks.get(plan.site, 0) + 1
    configured = {site.name: site.max_concurrency for site in config.sites}
    needs = {site: min(configured.get(site) or count, count) for site, count in checks.items()}
    cap = config.daemon.max_concurrency
    if cap is None or cap >= sum(needs.values()):
        return needs
    return share(needs, cap)


def share(needs: dict[str, int], cap: int) -> dict[str, int]:
    """Divide ``cap`` slots in proportion to ``needs``: one each first, the rest by
    largest remainder, never more than a site needs. ``cap`` must be at least
    ``len(needs)`` (the loader refuses a smaller one)."""
    if cap < len(needs):
        raise ValueError(f"{cap} slots cannot give each of {len(needs)} sites one")
    spare = cap - len(needs)
    wanted = {site: need - 1 for site, need in needs.items()}
    total = sum(wanted.values())
    if total <= spare:
        return dict(needs)
    quotas = {site: spare * want / total for site, want in wanted.items()}
    limits = {site: 1 + math.floor(q) for site, q in quotas.items()}
    left = cap - sum(limits.values())
    for site in sorted(quotas, key=lambda s: (math.floor(quotas[s]) - quotas[s], s))[:left]:
        limits[site] += 1
    return limits


class SitePool:
    """First come, first served slots of one site; the limit can change on reload.

    Like :class:`asyncio.Semaphore` but resizable: a reload that lowers the limit lets
    the runs holding slots finish and admits no one until the site is under it again.
    """

    __slots__ = ("limit", "active", "_waiters")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> None:
        if self.active < self.limit and not self._waiters:
            self.active += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as it was cancelled: pass it on
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self.active -= 1
        self._admit()

    def resize(self, limit: int) -> None:
        self.limit = limit
        self._admit()

    def _admit(self) -> None:
        while self._waiters and self.active < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.active += 1
                waiter.set_result(None)
