"""Reading the prober's data back through the InfluxQL ``/query`` API.

InfluxDB 1.x serves it natively, 2.x through its v1 compatibility API (the bucket needs a
DBRP mapping, ``influx v1 dbrp create``) and 3.x as its v1 query API, so one client reads
from all three; the ``[influxdb]`` section says where (``database`` or ``bucket`` is the
``db``; basic auth with ``username``/``password`` or ``Authorization: Token``).

Answers are requested with ``chunked=true`` and parsed one chunk (one line) at a time,
and the range is fetched one day per request: a quarter of one-minute probes of 20
checks (about 2.6 M ``check`` points) never sits in memory as one JSON document. Raw
``check`` points (time, success, error) are fetched for the downtime rule, which InfluxQL
cannot express; ``step`` response times and error counts are aggregated by InfluxDB per
day and interface (``count``, ``sum``, ``mean``, ``percentile``), which is exact.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from prober.config.influxdb import InfluxDBConfig
from prober.report.downtime import Event
from prober.report.interfaces import INTERFACES, KIND_INTERFACES, Overrides

ERROR_TEXT_MAX = 200
"""Error strings are cut to this many characters before they are counted."""
CHUNK_SIZE = 20_000
PARALLEL_REQUESTS = 2
"""Days fetched at once."""


class QueryError(RuntimeError):
    """InfluxDB could not be reached or refused a query; the message says which, without secrets."""


def quote_tag(value: str) -> str:
    """An InfluxQL string literal for a tag value (``'`` and ``\\`` escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _sites_clause(sites: Sequence[str]) -> str:
    if not sites:
        return ""
    return "(" + " OR ".join(f'"site" = {quote_tag(s)}' for s in sites) + ") AND "


def _pair(site: str, check: str) -> str:
    return f'("site" = {quote_tag(site)} AND "check" = {quote_tag(check)})'


def interface_clause(interface: str, overrides: Overrides) -> str:
    """WHERE condition selecting the points of the checks that feed ``interface``."""
    kinds = sorted(k for k, feeds in KIND_INTERFACES.items() if interface in feeds)
    parts = [f'"kind" =~ /^({"|".join(kinds)})$/']
    for site, check in sorted(overrides):
        parts.append(f'("site" != {quote_tag(site)} OR "check" != {quote_tag(check)})')
    by_kind = "(" + " AND ".join(parts) + ")"
    chosen = [_pair(s, c) for (s, c), feeds in sorted(overrides.items()) if interface in feeds]
    return "(" + " OR ".join([by_kind, *chosen]) + ")"


def checks_query(start_ms: int, end_ms: int, sites: Sequence[str], overrides: Overrides) -> str:
    """Raw ``check`` points of every check that feeds some interface, per series."""
    kinds = "|".join(sorted(KIND_INTERFACES))
    feeding = [f'"kind" =~ /^({kinds})$/'] + [_pair(s, c) for (s, c), feeds in sorted(overrides.items()) if feeds]
    return (
        f'SELECT "success", "error" FROM "check" WHERE ({" OR ".join(feeding)}) AND "outcome" != \'skipped\' AND '
        f"{_sites_clause(sites)}time >= {start_ms}ms AND time < {end_ms}ms "
        'GROUP BY "site", "check", "kind", "location"'
    )


def steps_query(interface: str, start_ms: int, end_ms: int, sites: Sequence[str], overrides: Overrides) -> str:
    """Per site: HTTP requests, failed ones, and TTFB / total time mean and p95 for one interface."""
    return (
        'SELECT count("success") AS "requests", sum("success") AS "ok", '
        'count("ttfb_ms") AS "ttfb_n", mean("ttfb_ms") AS "ttfb_mean", percentile("ttfb_ms", 95) AS "ttfb_p95", '
        'count("duration_ms") AS "total_n", mean("duration_ms") AS "total_mean", '
        'percentile("duration_ms", 95) AS "total_p95" '
        f'FROM "step" WHERE {interface_clause(interface, overrides)} AND '
        f'{_sites_clause(sites)}time >= {start_ms}ms AND time < {end_ms}ms GROUP BY "site"'
    )


def incidents_query(end_ms: int, sites: Sequence[str]) -> str:
    """Every incident state change before the end of the range (a small measurement)."""
    return (
        f'SELECT "duration_s", "reason" FROM "incident" WHERE {_sites_clause(sites)}time < {end_ms}ms '
        'GROUP BY "site", "check", "kind", "location", "state"'
    )


@dataclass
class QueryClient:
    """POSTs InfluxQL to ``{url}/query`` and yields each chunk's ``results`` items."""

    url: str
    database: str
    retention_policy: str | None = None
    authorization: str | None = None
    timeout: float = 30.0
    context: ssl.SSLContext | None = None

    @classmethod
    def from_config(cls, config: InfluxDBConfig) -> QueryClient:
        """From an ``[influxdb]`` section, whichever its API version."""
        target = config.influxql_target()
        context = None
        if config.url.startswith("https:"):
            context = ssl.create_default_context(cafile=config.ca_file)
            if not config.verify_tls:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        return cls(url=config.url, database=target.database, authorization=target.authorization,
                   retention_policy=target.retention_policy, timeout=max(float(config.timeout), 30.0),
                   context=context)

    def run(self, statements: Sequence[str]) -> Iterator[dict]:
        """Each ``results`` item of each chunk, in order (``statement_id`` says whose)."""
        params = {"db": self.database, "q": ";\n".join(statements), "epoch": "ms",
                  "chunked": "true", "chunk_size": str(CHUNK_SIZE)}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        request = urllib.request.Request(
            f"{self.url}/query", data=urllib.parse.urlencode(params).encode(), method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        )
        if self.authorization:
            request.add_unredirected_header("Authorization", self.authorization)
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout, context=self.context)
        except urllib.error.HTTPError as exc:
            detail = _error_of(exc.read(4096))
            raise QueryError(f"InfluxDB at {self.url} answered HTTP {exc.code}{': ' + detail if detail else ''}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise QueryError(f"cannot reach InfluxDB at {self.url}: {reason}") from None
        with response:
            try:
                for line in response:
                    if not line.strip():
                        continue
                    answer = json.loads(line)
                    if "error" in answer:
                        raise QueryError(f"InfluxDB at {self.url}: {answer['error']}")
                    for result in answer.get("results", []):
                        if "error" in result:
                            raise QueryError(f"InfluxDB at {self.url} (database {self.database!r}): {result['error']}")
                        yield result
            except (OSError, ValueError) as exc:
                raise QueryError(f"InfluxDB at {self.url}: answer cut short or not JSON ({exc})") from None


def _error_of(body: bytes) -> str:
    try:
        return str(json.loads(body).get("error", ""))[:300]
    except (ValueError, AttributeError):
        return body.decode("utf-8", "replace").strip()[:300]


SeriesKey = tuple[str, str, str, str]
"""(site, check, kind, location)"""


@dataclass
class StepAggregate:
    """One site × interface × day of ``step`` aggregates (``None`` means no such value)."""

    requests: int = 0
    ok: int = 0
    ttfb_n: int = 0
    ttfb_mean: float | None = None
    ttfb_p95: float | None = None
    total_n: int = 0
    total_mean: float | None = None
    total_p95: float | None = None


@dataclass
class Fetched:
    """The raw material of a report."""

    times: dict[SeriesKey, array] = field(default_factory=dict)
    ok: dict[SeriesKey, bytearray] = field(default_factory=dict)
    errors: dict[tuple[str, str, str], Counter] = field(default_factory=dict)
    steps: dict[tuple[str, str, int], StepAggregate] = field(default_factory=dict)
    incidents: dict[SeriesKey, list[Event]] = field(default_factory=dict)

    def merge(self, later: Fetched) -> None:
        """Append the data of a later day (series stay in time order)."""
        for key, times in later.times.items():
            self.times.setdefault(key, array("q")).extend(times)
            self.ok.setdefault(key, bytearray()).extend(later.ok[key])
        for key, counter in later.errors.items():
            self.errors.setdefault(key, Counter()).update(counter)
        self.steps.update(later.steps)
        for key, events in later.incidents.items():
            self.incidents.setdefault(key, []).extend(events)

    def add_checks(self, series: dict) -> None:
        tags = series.get("tags", {})
        key = (tags.get("site", ""), tags.get("check", ""), tags.get("kind", ""), tags.get("location", ""))
        values = series.get("values") or []
        times = self.times.setdefault(key, array("q"))
        ok = self.ok.setdefault(key, bytearray())
        times.extend(v[0] for v in values)
        ok.extend(1 if v[1] else 0 for v in values)
        counter = None
        for v in values:
            if not v[1] and v[2]:
                if counter is None:
                    counter = self.errors.setdefault(key[:3], Counter())
                counter[str(v[2])[:ERROR_TEXT_MAX]] += 1

    def add_steps(self, interface: str, day: int, series: dict) -> None:
        site = series.get("tags", {}).get("site", "")
        columns = series.get("columns", [])
        for values in series.get("values") or []:
            row = dict(zip(columns, values))
            for name in ("ttfb_mean", "ttfb_p95", "total_mean", "total_p95"):  # JSON has 10 for 10.0
                if row.get(name) is not None:
                    row[name] = float(row[name])
            self.steps[(site, interface, day)] = StepAggregate(
                requests=int(row.get("requests") or 0), ok=int(row.get("ok") or 0),
                ttfb_n=int(row.get("ttfb_n") or 0), ttfb_mean=row.get("ttfb_mean"), ttfb_p95=row.get("ttfb_p95"),
                total_n=int(row.get("total_n") or 0), total_mean=row.get("total_mean"),
                total_p95=row.get("total_p95"))

    def add_incidents(self, series: dict) -> None:
        tags = series.get("tags", {})
        key = (tags.get("site", ""), tags.get("check", ""), tags.get("kind", ""), tags.get("location", ""))
        state = tags.get("state", "")
        columns = series.get("columns", [])
        at = columns.index("duration_s") if "duration_s" in columns else None
        events = self.incidents.setdefault(key, [])
        for v in series.get("values") or []:
            events.append((int(v[0]), state, float(v[at] or 0.0) if at is not None else 0.0))


def _fetch_day(client: QueryClient, bounds: Sequence[int], day: int, sites: Sequence[str], overrides: Overrides,
               margin_ms: int) -> Fetched:
    days = len(bounds) - 1
    start = bounds[day] - (margin_ms if day == 0 else 0)
    end = bounds[day + 1] + (margin_ms if day == days - 1 else 0)
    statements = [checks_query(start, end, sites, overrides)]
    statements += [steps_query(i, bounds[day], bounds[day + 1], sites, overrides) for i in INTERFACES]
    if day == days - 1:
        statements.append(incidents_query(end, sites))
    part = Fetched()
    for result in client.run(statements):
        sid = int(result.get("statement_id", 0))
        for series in result.get("series", []):
            if sid == 0:
                part.add_checks(series)
            elif sid <= len(INTERFACES):
                part.add_steps(INTERFACES[sid - 1], day, series)
            else:
                part.add_incidents(series)
    return part


def fetch(client: QueryClient, bounds: Sequence[int], sites: Sequence[str], overrides: Overrides,
          margin_ms: int, workers: int = PARALLEL_REQUESTS) -> Fetched:
    """Everything for the days ``bounds[i]..bounds[i+1]`` (epoch ms), one request per day.

    ``check`` points are fetched ``margin_ms`` beyond both ends, so that a downtime that
    started before the range, or whose fifth failure comes after it, is seen. Up to
    ``workers`` days are fetched at once (InfluxDB answers them on several cores); they
    are merged in day order.
    """
    data = Fetched()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="report-fetch") as pool:
        futures = [pool.submit(_fetch_day, client, bounds, day, sites, overrides, margin_ms)
                   for day in range(len(bounds) - 1)]
        try:
            for future in futures:
                data.merge(future.result())
        finally:
            for future in futures:
                future.cancel()
    return data
