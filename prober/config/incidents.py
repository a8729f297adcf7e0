"""Configuration of incidents, maintenance windows and notifiers.

TOML layout::

    [incidents]                 # state survives restarts in [daemon] state_dir
    open_after = 3              # consecutive runs failing at the same step open an incident
    flap_failures = 8           # ... or this many failed runs
    flap_window = 20            #     among the last `flap_window` runs (a failure *rate*)
    resolve_after = 2           # consecutive successes that resolve a steady incident
    flap_resolve_after = 20     # consecutive successes that resolve a flapping one
    remind_every = "1h"         # repeat the notification while an incident stays open
    attribute_login_failures = true

    [incidents.overrides.transfer]   # per check name: any threshold above
    open_after = 2

    [incidents.locations]       # decide across probe locations (omit: each instance alone)
    confirm = 2                 # k: failing in this many live locations (or "all") confirms
    poll = "5s"                 # how often the decision is made from InfluxDB
    stale_after = "2m"          # a location without a `prober` self-report for this long is not live

    [[incidents.maintenance]]   # incidents are still recorded, nothing is notified
    site = "bank-a"             # omit for every site
    kinds = ["transfer"]        # omit for every capability
    start = "2025-03-01T22:00:00Z"
    end = "2025-03-02T02:00:00Z"

    [[incidents.maintenance]]   # or a weekly window, in UTC
    weekdays = ["sun"]
    from = "01:00"
    to = "03:00"                # earlier than `from`: the window runs past midnight

    [[notifiers]]               # prober.notify: one settings model per type
    type = "slack"              # webhook | slack | teams | apprise
    url_file = "/run/secrets/slack-webhook"   # or url = "https://hooks.slack.com/..."
    sites = ["bank-a"]          # route: only these sites (omit for all)
    kinds = ["transfer", "cards"]   # route: only these capabilities (omit for all)

Why these thresholds, for checks that run every 30-60 s: see
:mod:`prober.incidents.tracker`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, field_validator, model_validator

from prober.config.types import STRICT, Duration
from prober.results import Kind

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Python's weekday numbers (Monday 0) to the names written in the configuration."""
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_INSTANT = timedelta(microseconds=1)
"""The smallest range from a moment on: whether a window is in force at a moment is
whether :meth:`MaintenanceWindow.intervals` finds it in that range."""
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class ThresholdOverride(BaseModel):
    """Thresholds of one check (by check name); unset fields keep the global value."""

    model_config = STRICT

    open_after: int | None = Field(default=None, ge=1, le=1000)
    flap_failures: int | None = Field(default=None, ge=1, le=1000)
    flap_window: int | None = Field(default=None, ge=1, le=1000)
    resolve_after: int | None = Field(default=None, ge=1, le=1000)
    flap_resolve_after: int | None = Field(default=None, ge=1, le=1000)


def parse_moment(value: object) -> datetime:
    """An aware moment, in UTC, from an ISO 8601 string with a zone (or a TOML date-time
    with an offset); refused without a zone: a window must not move with the host's."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"invalid time {value!r}: write an ISO 8601 time such as 2025-03-01T22:00:00Z") from None
    elif isinstance(value, datetime):
        moment = value
    else:
        raise ValueError(f"expected a time such as \"2025-03-01T22:00:00Z\", got {type(value).__name__} {value!r}")
    if moment.tzinfo is None:
        raise ValueError(f"time {moment.isoformat() if value is moment else value!r} has no time zone: "
                         "add Z (UTC) or an offset such as +01:00")
    return moment.astimezone(UTC)


def parse_time_of_day(value: object) -> time:
    """A time of day from ``"HH:MM"`` (or a TOML local time with no seconds)."""
    if isinstance(value, time):
        text = value.isoformat()
        if value.tzinfo is None and not (value.second or value.microsecond):
            return value
    elif isinstance(value, str):
        text = value
        if _HHMM.match(value):
            return time.fromisoformat(value)
    else:
        raise ValueError(f"expected a time of day such as \"22:30\", got {type(value).__name__} {value!r}")
    raise ValueError(f"invalid time of day {text!r}: write HH:MM (UTC), e.g. \"22:30\"")


Moment = Annotated[datetime, BeforeValidator(parse_moment)]
"""An aware date and time, held in UTC."""
TimeOfDay = Annotated[time, BeforeValidator(parse_time_of_day)]
"""``HH:MM``, held as a :class:`~datetime.time` (read in UTC)."""


class MaintenanceWindow(BaseModel):
    """A time during which incidents are recorded but not notified, and downtime is planned.

    Either a one-off window (``start`` and ``end``, ISO 8601 with a zone) or a weekly one
    (``weekdays`` + ``from`` + ``to``, ``HH:MM`` in UTC; the days are the days the window
    *starts*; ``to`` earlier than or equal to ``from`` means it ends the next day).
    ``site`` (omit: every site) and ``kinds`` (omit: every capability) narrow it.
    :meth:`intervals` is the one place that says which times a window covers.
    """

    model_config = STRICT

    site: str | None = None
    kinds: list[Kind] = Field(default_factory=list)
    start: Moment | None = None
    end: Moment | None = None
    weekdays: list[Weekday] = Field(default_factory=list)
    from_time: TimeOfDay | None = Field(default=None, alias="from")
    to_time: TimeOfDay | None = Field(default=None, alias="to")
    description: str = ""

    @model_validator(mode="after")
    def _shape(self) -> MaintenanceWindow:
        one_off = self.start is not None or self.end is not None
        weekly = bool(self.weekdays) or self.from_time is not None or self.to_time is not None
        if one_off == weekly:
            raise ValueError("a maintenance window needs either `start` and `end`, or `weekdays`, `from` and `to`")
        if one_off:
            if self.start is None or self.end is None:
                raise ValueError("a one-off maintenance window needs both `start` and `end`")
            if self.end <= self.start:
                raise ValueError("maintenance `end` must be after `start`")
        elif not self.weekdays or self.from_time is None or self.to_time is None:
            raise ValueError("a weekly maintenance window needs `weekdays`, `from` and `to`")
        return self

    def applies_to(self, site: str, kind: str) -> bool:
        """Whether the window is about ``site`` × ``kind`` (whatever the time)."""
        return (self.site is None or self.site == site) and (not self.kinds or kind in self.kinds)

    def intervals(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The times in ``[start, end)`` the window covers, as ``[begin, finish)`` pairs
        in UTC, in order, cut to the range (empty when it covers none of it).

        A weekly window gives one pair per listed day whose window meets the range,
        the window that started the evening before ``start`` included.
        """
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if self.start is not None and self.end is not None:
            spans = [(self.start, self.end)]
        else:
            assert self.from_time is not None and self.to_time is not None
            spans = []
            day = datetime.combine(start.date() - timedelta(days=1), time(0), tzinfo=UTC)
            while day < end:
                if WEEKDAYS[day.weekday()] in self.weekdays:
                    begin = datetime.combine(day.date(), self.from_time, tzinfo=UTC)
                    finish = datetime.combine(day.date(), self.to_time, tzinfo=UTC)
                    if finish <= begin:  # runs past midnight
                        finish += timedelta(days=1)
                    spans.append((begin, finish))
                day += timedelta(days=1)
        return [(max(begin, start), min(finish, end)) for begin, finish in spans if begin < end and finish > start]

    def in_force(self, at: datetime) -> bool:
        """Whether ``at`` is inside the window (whatever the site and kind)."""
        return bool(self.intervals(at, at + _INSTANT))

    def covers(self, site: str, kind: str, at: datetime) -> bool:
        """Whether this window silences notifications of ``site``/``kind`` at ``at``."""
        return self.applies_to(site, kind) and self.in_force(at)


class LocationsConfig(BaseModel):
    """The ``[incidents.locations]`` section: one incident per bank × capability across
    probe locations, confirmed when ``confirm`` of the live locations fail, notified once
    (see :mod:`prober.incidents.locations`)."""

    model_config = STRICT

    confirm: int | Literal["all"] = 2
    """k: the number of live locations that must fail (capped at the number live), or
    ``"all"`` of them."""
    poll: Duration = 5.0
    stale_after: Duration = 120.0
    """A location (instance) whose latest ``prober`` self-report is older than this is not live."""

    @field_validator("confirm")
    @classmethod
    def _confirm(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 100:
            raise ValueError(f"confirm must be between 1 and 100 locations, or \"all\" (got {value})")
        return value

    @model_validator(mode="after")
    def _stale(self) -> LocationsConfig:
        if self.stale_after < self.poll:
            raise ValueError(f"stale_after ({self.stale_after:g}s) is shorter than poll ({self.poll:g}s)")
        return self


class IncidentsConfig(BaseModel):
    """The ``[incidents]`` section (see the module docstring)."""

    model_config = STRICT

    enabled: bool = True
    open_after: int = Field(default=3, ge=1, le=1000)
    flap_failures: int = Field(default=8, ge=1, le=1000)
    flap_window: int = Field(default=20, ge=1, le=1000)
    resolve_after: int = Field(default=2, ge=1, le=1000)
    flap_resolve_after: int | None = Field(default=None, ge=1, le=1000)
    """Defaults to ``flap_window``: a flapping incident resolves after a clean window."""
    remind_every: Duration | None = None
    attribute_login_failures: bool = True
    """A non-login check that fails at a step the site's login check also runs (the
    token request) says nothing about its own capability: that run is not counted for
    it, and the login check's incident carries the failure."""
    overrides: dict[str, ThresholdOverride] = Field(default_factory=dict)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    locations: LocationsConfig | None = None
    """Unset: every prober instance decides and notifies alone, per location."""

    @model_validator(mode="after")
    def _flap(self) -> IncidentsConfig:
        if self.flap_failures > self.flap_window:
            raise ValueError(f"flap_failures ({self.flap_failures}) is larger than flap_window ({self.flap_window})")
        for name, override in self.overrides.items():
            failures = override.flap_failures or self.flap_failures
            window = override.flap_window or self.flap_window
            if failures > window:
                raise ValueError(f"overrides.{name}: flap_failures ({failures}) is larger than flap_window ({window})")
        return self
