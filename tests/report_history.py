"""A known six-day history of two banks, as the prober's writer writes it, for the tests of
``prober report`` (``tests/test_report_rule.py``, ``tests/test_report_daily.py``).

UTC, Monday 2 to Saturday 7 March 2026. Every point goes through
:func:`prober.writer.journey_lines`, the code the daemon writes with.

**alpha** (location ``par``), one run a minute of each check: ``login`` at :00,
``accounts`` at :10, ``transfer`` at :20, ``funds`` (kind ``payments``) at :30, and
``web-accounts`` (kind ``accounts``, ``psd2_interface = "psu"``: the customers' own web
interface) at :40. One step per run.

* Mon 10:00–11:30 every ``transfer`` run fails (HTTP 503), login and the rest fine:
  payment initiation down 5,400 s.
* Tue 23:00 → Wed 01:00 every check fails (login included): all three interfaces down
  across midnight; a one-off maintenance window Tue 23:30 → Wed 00:30 for ``transfer``
  makes half an hour of each side planned for PIS.
* Wed 03:00–03:40 ``accounts`` fails inside a maintenance window (03:00–04:00): planned.
* Thu: ``transfer`` fails once at the top of every hour, ``accounts`` 05:00–05:03 (four
  failures, then a success): isolated failures, 0 s.
* Fri: no data at all for alpha: unknown.
* Sat: ``accounts`` answers in a known time (TTFB 10 + minute % 20 ms, TTLB twice that),
  except every 100th minute a timeout of 8 s (no answer); ``login`` fails 12:00–12:30 while
  ``accounts`` keeps answering (not down); ``accounts`` fails from 23:50 to the end of the
  data, inside a weekly window Sat 23:00 → Sun 01:00 that straddles the range's end.
  The web (PSU) interface is down 14:00–14:10 on Sat; it answers in 20 ms like the
  dedicated one, but in 50 ms on Mon.

**beta**, two locations (``par`` and ``fra``), one run a minute each: ``login`` (par,
:00), ``accounts`` (:05 par, :35 fra), ``transfer`` (:15 par, :45 fra), ``statement``
(kind ``accounts`` with ``psd2 = []``, failing always: no interface).

* Mon 08:00–09:00 ``transfer`` fails from ``par`` only: ``fra`` answers in between, 0 s.
* Tue 08:00–08:30 ``transfer`` fails from both: 1,800 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prober.results import JourneyResult, Kind, Outcome, Phases, StepResult
from prober.writer import journey_lines
from tests.fixtures.servers import InfluxDatabase

MON = datetime(2026, 3, 2, tzinfo=UTC)
DAY = 86_400
NS = 1_000_000_000
ERROR = "HTTP 503 Service Unavailable"


def at(day: int, hh: int = 0, mm: int = 0, ss: int = 0) -> int:
    """Epoch seconds of Monday + ``day`` days at hh:mm:ss UTC."""
    return int((MON + timedelta(days=day, hours=hh, minutes=mm, seconds=ss)).timestamp())


def run(site: str, check: str, kind: Kind, location: str, t: int, outcome: Outcome = Outcome.OK,
        ttfb: float = 10.0, ttlb: float = 20.0) -> list[str]:
    """The lines of one run of a one-step journey, as the writer writes them."""
    if outcome is Outcome.TIMEOUT:
        step = StepResult("call", outcome, 8000.0, None, None, 0, "timeout after 8 s", started_at_ns=t * NS)
        error = "timeout after 8 s"
    else:
        status = 200 if outcome is Outcome.OK else 503
        error = "" if outcome is Outcome.OK else ERROR
        step = StepResult("call", outcome, ttlb, Phases(0.1, 0.2, 0.0, ttfb, ttlb - ttfb - 0.3), status, 100, error,
                          started_at_ns=t * NS)
    result = JourneyResult(site=site, check=check, kind=kind, location=location, outcome=outcome,
                           started_at_ns=t * NS, duration_ms=step.duration_ms, steps=(step,),
                           failed_step="" if outcome is Outcome.OK else "call", error=error)
    return journey_lines(result)


def _fails(t: int, *spans: tuple[int, int]) -> bool:
    return any(a <= t < b for a, b in spans)


ALL_DOWN = (at(1, 23), at(2, 1))


def saturday_ttfb(t: int) -> float:
    return 10.0 + ((t - at(5)) // 60) % 20


def saturday_timeout(t: int) -> bool:
    return ((t - at(5)) // 60) % 100 == 99


def alpha_lines() -> list[str]:
    lines: list[str] = []
    for day in (0, 1, 2, 3, 5):
        for minute in range(1440):
            base = at(day) + 60 * minute
            # login
            t = base
            bad = _fails(t, ALL_DOWN, (at(5, 12), at(5, 12, 30)))
            lines += run("alpha", "login", "login", "par", t, Outcome.HTTP_STATUS if bad else Outcome.OK)
            # accounts
            t = base + 10
            if day == 5 and saturday_timeout(t):
                lines += run("alpha", "accounts", "accounts", "par", t, Outcome.TIMEOUT)
            else:
                bad = _fails(t, ALL_DOWN, (at(2, 3), at(2, 3, 40)), (at(3, 5), at(3, 5, 4)), (at(5, 23, 50), at(6)))
                ttfb = saturday_ttfb(t) if day == 5 else 10.0
                lines += run("alpha", "accounts", "accounts", "par", t, Outcome.HTTP_STATUS if bad else Outcome.OK,
                             ttfb, 2 * ttfb)
            # transfer
            t = base + 20
            bad = _fails(t, ALL_DOWN, (at(0, 10), at(0, 11, 30))) or (day == 3 and minute % 60 == 0)
            lines += run("alpha", "transfer", "transfer", "par", t, Outcome.HTTP_STATUS if bad else Outcome.OK)
            # funds (confirmation of funds)
            t = base + 30
            lines += run("alpha", "funds", "payments", "par", t,
                         Outcome.HTTP_STATUS if _fails(t, ALL_DOWN) else Outcome.OK)
            # the customers' web interface (psd2_interface = "psu")
            t = base + 40
            bad = _fails(t, (at(5, 14), at(5, 14, 10)))
            ttlb = 50.0 if day == 0 else 20.0
            lines += run("alpha", "web-accounts", "accounts", "par", t, Outcome.HTTP_STATUS if bad else Outcome.OK,
                         5.0, ttlb)
    return lines


def beta_lines() -> list[str]:
    lines: list[str] = []
    for day in range(6):
        for minute in range(1440):
            base = at(day) + 60 * minute
            lines += run("beta", "login", "login", "par", base)
            for location, offset in (("par", 0), ("fra", 30)):
                lines += run("beta", "accounts", "accounts", location, base + 5 + offset)
                t = base + 15 + offset
                bad = _fails(t, (at(1, 8), at(1, 8, 30))) or (location == "par" and _fails(t, (at(0, 8), at(0, 9))))
                lines += run("beta", "transfer", "transfer", location, t, Outcome.HTTP_STATUS if bad else Outcome.OK)
            lines += run("beta", "statement", "accounts", "par", base + 50, Outcome.HTTP_STATUS)
    return lines


def history() -> list[str]:
    """Every line of the history."""
    return alpha_lines() + beta_lines()


INFLUXDB = """
[influxdb]
url = "{url}"
api = "v1"
database = "{db}"
"""
"""The ``[influxdb]`` section of a test configuration (``.format(url=…, db=…)``)."""


@dataclass
class Setup:
    """A database holding a history, and the configuration that reads it."""

    db: InfluxDatabase
    config: Path


CONFIG = INFLUXDB + """
[[incidents.maintenance]]
site = "alpha"
kinds = ["transfer"]
start = "2026-03-03T23:30:00Z"
end = "2026-03-04T00:30:00Z"
description = "payments platform upgrade"

[[incidents.maintenance]]
site = "alpha"
kinds = ["accounts"]
start = "2026-03-04T03:00:00Z"
end = "2026-03-04T04:00:00Z"

[[incidents.maintenance]]
site = "alpha"
kinds = ["accounts"]
weekdays = ["sat"]
from = "23:00"
to = "01:00"
"""


def site(name: str, *checks: tuple[str, str, str]) -> str:
    """A ``[[sites]]`` table with one-step checks (name, kind, extra TOML lines)."""
    text = f'\n[[sites]]\nname = "{name}"\nbase_url = "http://127.0.0.1:9"\n'
    for check, kind, extra in checks:
        text += (f'[[sites.checks]]\nname = "{check}"\nkind = "{kind}"\n{extra}'
                 f'steps = [{{ name = "call", path = "/{check}" }}]\n')
    return text


SITES = site("alpha", ("login", "login", ""), ("accounts", "accounts", ""), ("transfer", "transfer", ""),
             ("funds", "payments", ""), ("web-accounts", "accounts", 'psd2_interface = "psu"\n')) + site(
    "beta", ("login", "login", ""), ("accounts", "accounts", ""), ("transfer", "transfer", ""),
    ("statement", "accounts", "psd2 = []\n"))
