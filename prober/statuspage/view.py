"""What the status page shows, built once per request from the running prober.

:func:`build_view` turns the incident service's status (an
:class:`~prober.incidents.IncidentStatus`: each site × capability's state and since
when, open and recent incidents), the latest run of every check, the announced
maintenance windows and the daily uptime history into a :class:`StatusView`, in three
parts: the grid (:func:`grid`), the incident lists (:func:`incident_lines`) and the
history (:func:`history_rows`). Everything here is typed; nothing is JSON until
:meth:`StatusView.to_json`, at the HTTP edge.
The HTML page, the JSON twin (:meth:`StatusView.to_json`), the Atom feed and the badges
are all rendered from it, so they never disagree.

Two audiences. ``public`` keeps names, states and times only: the bank, the
capability, the step that fails, since when, until when. The internal view adds, per
failing check, the check, its outcome in plain words, the (already redacted) error text
from the bank, the latency of the latest runs and the probe location. Error text from a
bank is hostile input: it is carried as data here and escaped by every renderer.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, Protocol

from prober.config.incidents import MaintenanceWindow
from prober.config.statuspage import StatusPageConfig
from prober.incidents import Incident, IncidentStatus
from prober.results import KINDS, JourneyResult
from prober.statuspage.history import DayUptime, day_range
from prober.timefmt import utc_iso, utc_iso_ns

STATE_WORDS = {"ok": "Operational", "degraded": "Degraded", "outage": "Outage", "unknown": "No data yet"}
"""Every state in words, so the page reads the same without colour."""
STATE_MARKS = {"ok": "✔", "degraded": "▲", "outage": "✖", "unknown": "?"}
KIND_WORDS = {
    "login": "Login",
    "accounts": "Accounts",
    "transfer": "Transfers",
    "cards": "Cards",
    "payments": "Payments",
    "custom": "Other",
    "certificate": "Certificate",
}
OUTCOME_WORDS = {
    "http_status": "answers with an error status",
    "auth": "refuses the prober's credentials",
    "assertion": "answers with wrong data",
    "slow": "answers too slowly",
    "timeout": "does not answer in time",
    "connect": "cannot be reached",
    "dns": "its address does not resolve",
    "tls": "its secure connection fails",
    "error": "gives an unusable answer",
    "certificate": "a certificate nears its expiry",
}
INTERNAL_FIELDS = frozenset({"check", "outcome", "outcome_words", "error", "location"})
"""What a public view leaves out of failures and incidents."""
INTERNAL_KINDS = frozenset({"certificate"})
"""Incidents a public view leaves out: a certificate nearing its expiry is the operators'
business, the service still works."""


def plain_time(iso: str | None, today: str | None = None) -> str:
    """``2026-11-23 19:40 UTC`` for an ISO time (``19:40 UTC`` when it is on the day of
    the ISO time ``today``), ``""`` for None."""
    if not iso:
        return ""
    if today and today[:10] == iso[:10]:
        return f"{iso[11:16]} UTC"
    return f"{iso[:10]} {iso[11:16]} UTC"


def plain_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 05 min``, ``2 d 4 h``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


@dataclass(frozen=True, slots=True)
class Failure:
    """An open incident of one check, as the page states it."""

    step: str
    """The step that fails (a configured name), ``""`` when the journey failed as a whole."""
    since: str
    check: str | None = None
    outcome: str | None = None
    outcome_words: str | None = None
    error: str | None = None
    location: str | None = None
    intermittent: bool = False

    def sentence(self, kind: str) -> str:
        """What fails in plain language, e.g. ``Accounts failing at step “balances”``."""
        what = KIND_WORDS.get(kind, kind)
        where = f" at step “{self.step}”" if self.step else ""
        how = " intermittently" if self.intermittent else ""
        return f"{what} failing{how}{where}"


@dataclass(frozen=True, slots=True)
class CheckLine:
    """Internal view: the latest run of one check of a capability."""

    check: str
    outcome: str | None
    latency_ms: float | None
    location: str | None
    evidence: tuple[str, ...] = ()
    """Links (``/evidence/…``) to the files kept of the latest failed browser run."""


@dataclass(frozen=True, slots=True)
class Cell:
    """One site × capability."""

    site: str
    kind: str
    state: str
    since: str | None
    failures: tuple[Failure, ...] = ()
    checks: tuple[CheckLine, ...] = ()
    checked: bool = True
    """False: the site has no check of this kind (an empty cell)."""

    @property
    def words(self) -> str:
        return STATE_WORDS.get(self.state, self.state)

    @property
    def mark(self) -> str:
        return STATE_MARKS.get(self.state, "?")

    @property
    def kind_words(self) -> str:
        return KIND_WORDS.get(self.kind, self.kind)


@dataclass(frozen=True, slots=True)
class IncidentLine:
    """An open or resolved incident in the lists below the grid."""

    id: str
    site: str
    kind: str
    since: str
    resolved_at: str | None
    duration_s: float
    step: str
    check: str | None = None
    outcome: str | None = None
    outcome_words: str | None = None
    error: str | None = None
    location: str | None = None
    closed: bool = False
    """Ended without a recovery: its check is no longer monitored (``resolved_at`` is
    then when monitoring stopped, not when the service came back)."""

    @property
    def kind_words(self) -> str:
        return KIND_WORDS.get(self.kind, self.kind)


@dataclass(frozen=True, slots=True)
class MaintenanceLine:
    """An announced maintenance window."""

    sites: str
    kinds: str
    when: str
    description: str
    active: bool


@dataclass(frozen=True, slots=True)
class Bar:
    """One day of a history row: ``level`` is the colour class, ``words`` its text."""

    day: date
    uptime: float | None
    runs: int

    @property
    def level(self) -> str:
        if self.uptime is None:
            return "none"
        if self.uptime >= 0.999:
            return "up"
        if self.uptime >= 0.99:
            return "minor"
        if self.uptime >= 0.95:
            return "major"
        return "down"

    @property
    def words(self) -> str:
        if self.uptime is None:
            return f"{self.day.isoformat()} no data"
        return f"{self.day.isoformat()} {self.uptime * 100:.2f}% ({self.runs} runs)"


@dataclass(frozen=True, slots=True)
class Segment:
    """Consecutive days of one level, drawn as one bar ``days`` days wide (a page of
    many banks stays small: a quiet quarter is one element, not ninety)."""

    level: str
    bars: tuple[Bar, ...]

    @property
    def days(self) -> int:
        return len(self.bars)

    @property
    def words(self) -> str:
        if len(self.bars) == 1:
            return self.bars[0].words
        span = f"{self.bars[0].day.isoformat()} to {self.bars[-1].day.isoformat()}"
        known = [b.uptime for b in self.bars if b.uptime is not None]
        if not known:
            return f"{span} no data"
        low, high = min(known) * 100, max(known) * 100
        figure = f"{low:.2f}%" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}% to {high:.2f}%"
        return f"{span} {figure} ({sum(b.runs for b in self.bars)} runs)"


@dataclass(frozen=True, slots=True)
class HistoryRow:
    site: str
    kind: str
    bars: tuple[Bar, ...]

    @property
    def segments(self) -> list[Segment]:
        """The bars, consecutive days of the same level together."""
        out: list[Segment] = []
        run: list[Bar] = []
        for bar in self.bars:
            if run and bar.level != run[-1].level:
                out.append(Segment(run[-1].level, tuple(run)))
                run = []
            run.append(bar)
        if run:
            out.append(Segment(run[-1].level, tuple(run)))
        return out

    @property
    def kind_words(self) -> str:
        return KIND_WORDS.get(self.kind, self.kind)

    @property
    def uptime(self) -> float | None:
        """Uptime over the days that have data, weighted by runs."""
        runs = sum(b.runs for b in self.bars if b.uptime is not None)
        if not runs:
            return None
        return sum(b.uptime * b.runs for b in self.bars if b.uptime is not None) / runs


@dataclass(frozen=True, slots=True)
class Row:
    site: str
    summary: str
    cells: tuple[Cell, ...]

    @property
    def worst(self) -> str:
        order = ("outage", "degraded", "unknown", "ok")
        states = {c.state for c in self.cells if c.checked}
        return next((s for s in order if s in states), "unknown")


@dataclass(frozen=True, slots=True)
class StatusView:
    """Everything the page and its twins show (see the module docstring)."""

    title: str
    public: bool
    generated_at: str
    refresh_s: int
    kinds: tuple[str, ...]
    rows: tuple[Row, ...]
    open: tuple[IncidentLine, ...]
    recent: tuple[IncidentLine, ...]
    maintenance: tuple[MaintenanceLine, ...]
    history: tuple[HistoryRow, ...]
    history_days: int
    history_source: str
    kind_words: dict[str, str] = field(default_factory=lambda: dict(KIND_WORDS))

    def cell(self, site: str, kind: str) -> Cell | None:
        for row in self.rows:
            if row.site == site:
                return next((c for c in row.cells if c.kind == kind and c.checked), None)
        return None

    @property
    def headline(self) -> str:
        """One sentence for the top of the page."""
        failing = [c for r in self.rows for c in r.cells if c.checked and c.state in ("degraded", "outage")]
        if not failing:
            return "All checked services are operational."
        return "; ".join(f"{c.site}: {c.kind_words} {c.words.lower()}" for c in failing) + "."

    def to_json(self) -> dict[str, Any]:
        """The machine-readable twin (``/api/v1/status``); public views leave detail out."""

        def strip(item: Any) -> dict[str, Any]:
            data = asdict(item)
            return {k: v for k, v in data.items() if k not in INTERNAL_FIELDS} if self.public else data

        return {
            "title": self.title,
            "public": self.public,
            "generated_at": self.generated_at,
            "sites": {
                row.site: {
                    "summary": row.summary,
                    "capabilities": {
                        c.kind: {
                            "state": c.state,
                            "since": c.since,
                            "failing": [strip(f) for f in c.failures],
                            **({} if self.public else {"checks": [asdict(x) for x in c.checks]}),
                        }
                        for c in row.cells if c.checked
                    },
                }
                for row in self.rows
            },
            "open": [strip(i) for i in self.open],
            "recent": [strip(i) for i in self.recent],
            "maintenance": [asdict(m) for m in self.maintenance],
            "history": {
                "days": self.history_days,
                **({} if self.public else {"source": self.history_source}),
                "series": [
                    {
                        "site": h.site,
                        "kind": h.kind,
                        "from": h.bars[0].day.isoformat() if h.bars else None,
                        "uptime": [None if b.uptime is None else round(b.uptime, 6) for b in h.bars],
                        "runs": [b.runs for b in h.bars],
                    }
                    for h in self.history
                ],
            },
        }


# ── building ─────────────────────────────────────────────────────────────────────


class LatestRun(Protocol):
    """The latest run of one configured check (the daemon's
    :class:`~prober.daemon.status.CheckStatus` is one)."""

    site: str
    check: str
    kind: str
    last: JourneyResult | None
    """None before its first run."""
    evidence: tuple[str, ...]
    """The files kept of its latest failed browser run (none once it passes)."""


def _iso(ns: int | None) -> str | None:
    return utc_iso_ns(ns) if ns else None


def _outcome_words(outcome: str) -> str:
    return OUTCOME_WORDS.get(outcome, outcome)


def _failure(incident: Incident, public: bool) -> Failure:
    since = utc_iso_ns(incident.since_ns)
    if public:
        return Failure(step=incident.failed_step, since=since, intermittent=incident.flapping)
    return Failure(
        step=incident.failed_step, since=since, check=incident.check, outcome=incident.outcome,
        outcome_words=_outcome_words(incident.outcome), error=incident.error, location=incident.location,
        intermittent=incident.flapping,
    )


def _incident_line(incident: Incident, public: bool, now: float) -> IncidentLine:
    duration = incident.duration_s
    if incident.resolved_ns is None:  # open: it has lasted until now at least
        duration = max(duration, now - incident.since_ns / 1e9)
    line = partial(
        IncidentLine, id=incident.id, site=incident.site, kind=incident.kind, since=utc_iso_ns(incident.since_ns),
        resolved_at=_iso(incident.resolved_ns), duration_s=round(duration, 3), step=incident.failed_step,
        closed=bool(incident.ended),
    )
    if public:
        return line()
    return line(
        check=incident.check, outcome=incident.outcome, outcome_words=_outcome_words(incident.outcome),
        error=incident.error, location=incident.location,
    )


def evidence_link(site: str, check: str, path: str) -> str:
    """The status page's address of an evidence file (``/evidence/<site>/<check>/<file>``)."""
    return f"/evidence/{site}/{check}/{path.rsplit('/', 1)[-1]}"


def _check_line(run: LatestRun) -> CheckLine:
    last = run.last
    evidence = tuple(evidence_link(run.site, run.check, path) for path in run.evidence)
    if last is None:
        return CheckLine(check=run.check, outcome=None, latency_ms=None, location=None, evidence=evidence)
    return CheckLine(check=run.check, outcome=last.outcome.value, latency_ms=round(last.duration_ms, 1),
                     location=last.location, evidence=evidence)


def grid(incidents: IncidentStatus, runs: Iterable[LatestRun], public: bool) -> tuple[tuple[str, ...], tuple[Row, ...]]:
    """The capabilities shown (columns, in :data:`~prober.results.KINDS` order) and one
    row per site: a cell per capability, empty where the site has no check of it."""
    mine: dict[tuple[str, str], list[LatestRun]] = {}
    for run in runs:
        mine.setdefault((run.site, run.kind), []).append(run)
    configured: dict[str, set[str]] = {}
    for site, kind in [*mine, *incidents.capabilities]:
        configured.setdefault(site, set()).add(kind)
    kinds = tuple(k for k in KINDS if any(k in found for found in configured.values()))
    rows = []
    for site in sorted(configured):
        cells = []
        for kind in kinds:
            if kind not in configured[site]:
                cells.append(Cell(site, kind, "unknown", None, checked=False))
                continue
            checks = sorted(mine.get((site, kind), []), key=lambda r: r.check)
            state = incidents.capabilities.get((site, kind))
            name = state.state if state else "unknown"
            if name == "ok" and checks and all(r.last is None for r in checks):
                name = "unknown"
            cells.append(Cell(
                site, kind, name, _iso(state.since_ns) if state else None,
                failures=tuple(_failure(i, public) for i in state.incidents) if state else (),
                checks=() if public else tuple(_check_line(r) for r in checks),
            ))
        rows.append(Row(site, incidents.summary(site), tuple(cells)))
    return kinds, tuple(rows)


def incident_lines(
    incidents: IncidentStatus, public: bool, now: float
) -> tuple[tuple[IncidentLine, ...], tuple[IncidentLine, ...]]:
    """The open incidents (oldest first) and the recently resolved ones (latest end first);
    a public view leaves out the :data:`INTERNAL_KINDS`."""
    def shown(incident: Incident) -> bool:
        return not (public and incident.kind in INTERNAL_KINDS)

    return (tuple(_incident_line(i, public, now) for i in incidents.open if shown(i)),
            tuple(_incident_line(i, public, now) for i in incidents.recent if shown(i)))


def history_rows(rows: Sequence[Row], history: Mapping[tuple[str, str], Sequence[DayUptime]], days: int,
                 today: date) -> tuple[HistoryRow, ...]:
    """One row of daily bars per checked cell of the grid, the ``days`` days up to ``today``
    (a day missing from ``history`` has no data)."""
    span = day_range(days, today)
    out = []
    for row in rows:
        for cell in row.cells:
            if cell.checked:
                known = {d.day: d for d in history.get((row.site, cell.kind), [])}
                bars = (known.get(day) or DayUptime(day) for day in span)
                out.append(HistoryRow(row.site, cell.kind, tuple(Bar(d.day, d.uptime, d.runs) for d in bars)))
    return tuple(out)


def maintenance_lines(windows: Sequence[MaintenanceWindow], now: float) -> tuple[MaintenanceLine, ...]:
    """Announced windows: weekly ones, and one-off ones not over yet."""
    at = datetime.fromtimestamp(now, tz=UTC)
    out = []
    for window in windows:
        if window.start is not None and window.end is not None:
            if window.end <= at:
                continue
            when = f"{plain_time(utc_iso(window.start.timestamp()))} to {plain_time(utc_iso(window.end.timestamp()))}"
        else:
            assert window.from_time is not None and window.to_time is not None
            when = f"every {', '.join(window.weekdays)} {window.from_time:%H:%M} to {window.to_time:%H:%M} UTC"
        out.append(MaintenanceLine(
            sites=window.site or "all banks",
            kinds=", ".join(KIND_WORDS.get(k, k) for k in window.kinds) or "all services",
            when=when, description=window.description,
            active=window.in_force(at),
        ))
    return tuple(out)


def build_view(
    settings: StatusPageConfig,
    *,
    incidents: IncidentStatus,
    runs: Iterable[LatestRun],
    maintenance: Sequence[MaintenanceWindow],
    history: Mapping[tuple[str, str], Sequence[DayUptime]],
    history_source: str,
    now: float | None = None,
) -> StatusView:
    """The view of one moment, as ``settings`` (``[status_page]``) asks: title, audience,
    refresh, days of history. ``history_source`` says where the daily bars came from."""
    now = time.time() if now is None else now
    kinds, rows = grid(incidents, runs, settings.public)
    open_lines, recent_lines = incident_lines(incidents, settings.public, now)
    today = datetime.fromtimestamp(now, tz=UTC).date()
    return StatusView(
        title=settings.title, public=settings.public, generated_at=utc_iso(now),
        refresh_s=max(1, round(settings.refresh)), kinds=kinds, rows=rows, open=open_lines, recent=recent_lines,
        maintenance=maintenance_lines(maintenance, now),
        history=history_rows(rows, history, settings.history_days, today), history_days=settings.history_days,
        history_source=history_source,
    )
