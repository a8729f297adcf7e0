"""What the cross-location decision reads from InfluxDB (one InfluxQL request), and the
``incident_locations`` points the acting instance writes.

Three statements, through the report's :class:`~prober.report.influx.QueryClient` (the
InfluxQL ``/query`` API of InfluxDB 1.x, and of 2.x/3.x through their v1 compatibility)::

    SELECT last("reason") AS "reason", "failed_step", "state" FROM "incident"
      GROUP BY "site", "check", "kind", "location"            -- per-location state
    SELECT last("checks") FROM "prober" WHERE time > now() - <stale_after>
      GROUP BY "location", "instance"                         -- who is live
    SELECT last("id") AS "id", "state", "locations", ... FROM "incident_locations"
      GROUP BY "site", "kind"                                 -- what the acting instance wrote

Every instance writes its own points; reading them back is what makes the decision the
same on every machine.

When an incident opens or resolves, a second request (:meth:`LocationsReader.read_runs`,
one statement per incident, each bounded in time and in points) reads the ``check``
points of its failing checks at its failing locations around the per-location estimate,
which date it from the pooled runs (:func:`~prober.incidents.locations.pooled_start`)::

    SELECT "success", "failed_step" FROM "check" WHERE "site" = … AND "kind" = …
      AND ("location" = … OR …) AND ("check" = … OR …) AND "outcome" != 'skipped'
      AND time >= …ms AND time <= …ms GROUP BY "location", "check" LIMIT 5000
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from prober.config.influxdb import InfluxDBConfig
from prober.incidents.locations import CrossEvent, CrossIncident, LocationState, Reporter, Run, RunsWindow, SiteKind
from prober.incidents.tracker import CLOSED_MARK
from prober.report.influx import QueryClient, quote_tag
from prober.writer.points import PRECISION_DIVISOR, escape_field_string, escape_tag

MEASUREMENT = "incident_locations"

STATES = ('SELECT last("reason") AS "reason", "failed_step", "state" FROM "incident" '
          'GROUP BY "site", "check", "kind", "location"')
REPORTERS = (
    'SELECT last("checks") AS "checks" FROM "prober" WHERE time > now() - {stale}ms GROUP BY "location", "instance"'
)
WRITTEN = (f'SELECT last("id") AS "id", "state", "locations", "checks", "reason", "failed_step", "live", "required" '
           f'FROM "{MEASUREMENT}" GROUP BY "site", "kind"')


RUNS_LIMIT = 5000
"""At most this many ``check`` points per location and check in one pooled read."""

LoginSteps = Mapping[tuple[str, str], frozenset[str]]
"""``(site, check) → its steps that repeat the login check's`` (not counted for the check)."""


def _any(tag: str, values: tuple[str, ...]) -> str:
    return "(" + " OR ".join(f'"{tag}" = {quote_tag(v)}' for v in values) + ")"


def runs_query(window: RunsWindow) -> str:
    """The ``check`` points to pool for one incident (see the module docstring)."""
    return (
        f'SELECT "success", "failed_step" FROM "check" WHERE "site" = {quote_tag(window.site)} '
        f'AND "kind" = {quote_tag(window.kind)} AND {_any("location", window.locations)} '
        f'AND {_any("check", window.checks)} AND "outcome" != \'skipped\' '
        f"AND time >= {window.start_ns // 1_000_000}ms AND time <= {window.end_ns // 1_000_000}ms "
        f'GROUP BY "location", "check" LIMIT {RUNS_LIMIT}'
    )


def parse_runs(results: list[dict], keys: list[SiteKind],
               login_steps: LoginSteps | None = None) -> dict[SiteKind, list[Run]]:
    """Per ``keys[statement_id]``, its runs ``(failed, at_ns)`` merged in time order.

    A failure at a step the site's login check also makes is not counted for a non-login
    check (as the per-location tracker does not count it).
    """
    login_steps = login_steps or {}
    merged: dict[SiteKind, list[tuple[int, str, bool]]] = {key: [] for key in keys}
    for result in results:
        key = keys[int(result.get("statement_id", 0))]
        for series in result.get("series") or []:
            tags = series.get("tags") or {}
            skip = login_steps.get((key[0], tags.get("check", "")), frozenset())
            for row in _rows(series):
                failed = not row.get("success")
                if failed and row.get("failed_step") in skip:
                    continue
                merged[key].append((int(row.get("time") or 0) * 1_000_000, tags.get("location", ""), failed))
    return {key: [(failed, at) for at, _, failed in sorted(rows)] for key, rows in merged.items()}


@dataclass
class Snapshot:
    """One reading of InfluxDB."""

    states: list[LocationState] = field(default_factory=list)
    reporters: list[Reporter] = field(default_factory=list)
    written: dict[SiteKind, CrossIncident] = field(default_factory=dict)
    """The open cross-location incidents, from the latest ``incident_locations`` points."""
    ended: dict[SiteKind, int] = field(default_factory=dict)
    """The end of the latest cross-location incident, where the latest
    ``incident_locations`` point is a resolution (dated by that end)."""


def _rows(series: dict) -> list[dict]:
    columns = series.get("columns") or []
    return [dict(zip(columns, values, strict=False)) for values in series.get("values") or []]


def _split(text: object) -> tuple[str, ...]:
    return tuple(sorted(p for p in str(text or "").split(",") if p))


def parse(results: list[dict]) -> Snapshot:
    """A :class:`Snapshot` from the ``results`` items of the three statements."""
    snap = Snapshot()
    for result in results:
        sid = int(result.get("statement_id", 0))
        for series in result.get("series") or []:
            tags = series.get("tags") or {}
            for row in _rows(series):
                at_ns = int(row.get("time") or 0) * 1_000_000
                if sid == 0 and row.get("state") in ("open", "resolved"):
                    snap.states.append(LocationState(
                        site=tags.get("site", ""), check=tags.get("check", ""), kind=tags.get("kind", ""),
                        location=tags.get("location", ""), state=row["state"], at_ns=at_ns,
                        reason=str(row.get("reason") or ""), failed_step=str(row.get("failed_step") or "")))
                elif sid == 1:
                    snap.reporters.append(Reporter(tags.get("location", ""), tags.get("instance", ""), at_ns))
                elif sid == 2 and row.get("state") == "resolved":
                    snap.ended[(tags.get("site", ""), tags.get("kind", ""))] = at_ns
                elif sid == 2 and row.get("state") == "open":
                    key = (tags.get("site", ""), tags.get("kind", ""))
                    snap.written[key] = CrossIncident(
                        id=str(row.get("id") or ""), site=key[0], kind=key[1], since_ns=at_ns,
                        locations=_split(row.get("locations")), checks=_split(row.get("checks")),
                        reason=str(row.get("reason") or ""), failed_step=str(row.get("failed_step") or ""),
                        required=int(row.get("required") or 1), notified_ns=at_ns)
    return snap


class LocationsReader:
    """Reads a :class:`Snapshot` (blocking: run it in a worker thread)."""

    def __init__(self, client: QueryClient, stale_after_s: float) -> None:
        self.client = client
        self.stale_ms = int(stale_after_s * 1000)

    @classmethod
    def from_config(cls, influxdb: InfluxDBConfig, stale_after_s: float, timeout: float = 10.0) -> LocationsReader:
        client = QueryClient.from_config(influxdb)
        client.timeout = timeout
        return cls(client, stale_after_s)

    def read(self) -> Snapshot:
        """Raises :class:`~prober.report.influx.QueryError` when InfluxDB cannot answer."""
        statements = [STATES, REPORTERS.format(stale=self.stale_ms), WRITTEN]
        return parse(list(self.client.run(statements)))

    def read_runs(self, windows: Mapping[SiteKind, RunsWindow],
                  login_steps: LoginSteps | None = None) -> dict[SiteKind, list[Run]]:
        """The pooled runs of each window, in one request (blocking; raises
        :class:`~prober.report.influx.QueryError` when InfluxDB cannot answer)."""
        keys = [key for key, window in windows.items() if window.checks and window.locations]
        if not keys:
            return {}
        return parse_runs(list(self.client.run([runs_query(windows[k]) for k in keys])), keys, login_steps)


def point(event: CrossEvent, instance: str, precision: str = "ns") -> str:
    """One ``incident_locations`` line: tags ``site``, ``kind``, ``state``; dated by the
    incident's start (open) or end (resolved), like ``incident`` points."""
    incident = event.incident
    resolved = event.event == "resolved"
    state = "resolved" if resolved else "open"
    reason = incident.reason + (f"{CLOSED_MARK}{incident.ended}" if resolved and incident.ended else "")
    tags = f"kind={escape_tag(incident.kind)},site={escape_tag(incident.site)},state={state}"
    fields = ",".join([
        f"id={escape_field_string(incident.id)}",
        f"locations={escape_field_string(','.join(incident.locations))}",
        f"failing={len(incident.locations)}i",
        f"live={len(incident.live)}i",
        f"required={incident.required}i",
        f"checks={escape_field_string(','.join(incident.checks))}",
        f"reason={escape_field_string(reason)}",
        f"failed_step={escape_field_string(incident.failed_step)}",
        f"duration_s={float(incident.duration_s if resolved else 0.0)}",
        f"instance={escape_field_string(instance)}",
    ])
    at = incident.resolved_ns if resolved and incident.resolved_ns is not None else incident.since_ns
    return f"{MEASUREMENT},{tags} {fields} {at // PRECISION_DIVISOR[precision]}"
