"""Reading the prober's data back through the InfluxQL ``/query`` API.

InfluxDB 1.x serves it natively, 2.x through its v1 compatibility API (the bucket needs a
DBRP mapping, ``influx v1 dbrp create``) and 3.x as its v1 query API, so one client reads
from all three; the ``[influxdb]`` section says where (``database`` or ``bucket`` is the
``db``; basic auth with ``username``/``password`` or ``Authorization: Token``).

Answers are requested with ``chunked=true`` and parsed one chunk (one line) at a time,
and the range is fetched one day per request, so a quarter of probes never sits in
memory as one JSON document. Per day:

* the failed runs of the checks feeding some interface (time, error text), with an hour
  either side, and the number of replied runs (outcome ``ok`` or ``slow``: the bank
  replied) per series;
* only for the sites with five failed runs or more around the day, where the rule could
  find a downtime, the times of their replied runs too (the rule needs the replies
  between and after the failures; elsewhere the bulk of a quarter is never fetched);
* ``step`` counts per site × check × kind × outcome: requests and errors;
* per interface and side, the response times of the **answered** requests of the
  checks that feed it (login checks left out): ``count``, ``mean`` and ``percentile``
  computed by InfluxDB, which is exact;
* once, the ``incident`` points.
"""

from __future__ import annotations

import bisect
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from array import array
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from prober.config.influxdb import InfluxDBConfig
from prober.report.downtime import FAILURES, Event
from prober.report.interfaces import APIS, INTERFACES, KIND_INTERFACES, Catalog, is_auth

ERROR_TEXT_MAX = 200
"""Error strings are cut to this many characters before they are counted."""
CHUNK_SIZE = 20_000
PARALLEL_REQUESTS = 2
"""Days fetched at once."""
REPLIED_OUTCOMES = ("ok", "slow")
"""Outcomes of a run (or request) the bank replied to correctly; ``slow`` is a reply, only late."""
ANSWERED_OUTCOMES = ("ok", "slow", "http_status", "auth", "assertion")
"""Outcomes of a request that got a complete HTTP response: what response times are over."""
ERROR_OUTCOMES = ("http_status", "auth", "assertion", "timeout", "connect", "dns", "tls", "error")
"""Outcomes of a request counted as an error: an error status, wrong data, no answer."""


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


def _not_pair(site: str, check: str) -> str:
    return f'("site" != {quote_tag(site)} OR "check" != {quote_tag(check)})'


def _outcomes(values: Sequence[str]) -> str:
    return "/^(" + "|".join(values) + ")$/"


def feeding_clause(catalog: Catalog) -> str:
    """WHERE condition selecting the points of every check that feeds some interface."""
    kinds = "|".join(sorted(KIND_INTERFACES))
    silenced = [_not_pair(s, c) for (s, c), feeds in sorted(catalog.overrides.items()) if not feeds]
    by_kind = " AND ".join([f'"kind" =~ /^({kinds})$/', *silenced])
    chosen = [_pair(s, c) for (s, c), feeds in sorted(catalog.overrides.items()) if feeds]
    return "(" + " OR ".join([f"({by_kind})", *chosen]) + ")"


def own_clause(interface: str, api: str, catalog: Catalog) -> str | None:
    """WHERE condition selecting the non-login checks that feed ``interface`` on side ``api``
    (``None`` when there is none, e.g. no PSU check at all)."""
    kinds = catalog.kinds or {}
    special = set(catalog.overrides) | set(catalog.psu)
    chosen = sorted(
        key for key in special
        if catalog.api_of(*key) == api and not is_auth(kinds.get(key, ""))
        and interface in catalog.interfaces_of(key[0], key[1], kinds.get(key, "")))
    parts = [_pair(s, c) for s, c in chosen]
    if api == "dedicated":
        by_default = sorted(k for k, feeds in KIND_INTERFACES.items() if interface in feeds and not is_auth(k))
        by_kind = " AND ".join(
            [f'"kind" =~ /^({"|".join(by_default)})$/', *(_not_pair(s, c) for s, c in sorted(special))]
        )
        parts.insert(0, f"({by_kind})")
    if not parts:
        return None
    return "(" + " OR ".join(parts) + ")"


def _time(start_ms: int, end_ms: int) -> str:
    return f"time >= {start_ms}ms AND time < {end_ms}ms"


def failed_runs_query(start_ms: int, end_ms: int, sites: Sequence[str], catalog: Catalog) -> str:
    """The runs not replied to (time and error text) of the checks feeding some interface,
    per series and outcome. Skipped runs are not probes."""
    return (f'SELECT "error" FROM "check" WHERE {feeding_clause(catalog)} AND {_sites_clause(sites)}'
            f'{_time(start_ms, end_ms)} AND "outcome" !~ {_outcomes((*REPLIED_OUTCOMES, "skipped"))} '
            'GROUP BY "site", "check", "kind", "location", "outcome"')


def replied_counts_query(start_ms: int, end_ms: int, sites: Sequence[str], catalog: Catalog) -> str:
    """How many runs were replied to, per series and outcome."""
    return (f'SELECT count("success") AS "runs" FROM "check" WHERE {feeding_clause(catalog)} AND '
            f'{_sites_clause(sites)}{_time(start_ms, end_ms)} AND "outcome" =~ {_outcomes(REPLIED_OUTCOMES)} '
            'GROUP BY "site", "check", "kind", "location", "outcome"')


def replied_runs_query(start_ms: int, end_ms: int, sites: Sequence[str], catalog: Catalog) -> str:
    """The start times of the runs replied to, per series and outcome. Not grouped by kind:
    this is the largest answer, and one tag fewer per series costs InfluxDB about a quarter
    less; the kind comes from the counts."""
    return (f'SELECT "success" FROM "check" WHERE {feeding_clause(catalog)} AND {_sites_clause(sites)}'
            f'{_time(start_ms, end_ms)} AND "outcome" =~ {_outcomes(REPLIED_OUTCOMES)} '
            'GROUP BY "site", "check", "location", "outcome"')


def step_counts_query(start_ms: int, end_ms: int, sites: Sequence[str], catalog: Catalog) -> str:
    """Requests per site × check × kind × outcome of the checks feeding some interface."""
    return (f'SELECT count("success") AS "requests" FROM "step" WHERE {feeding_clause(catalog)} AND '
            f'{_sites_clause(sites)}{_time(start_ms, end_ms)} GROUP BY "site", "check", "kind", "outcome"')


def timing_query(interface: str, api: str, start_ms: int, end_ms: int, sites: Sequence[str],
                 catalog: Catalog) -> str | None:
    """Per site: time to first byte and to last byte (count, mean, p95) of the answered
    requests of one interface and side (``None`` when no check feeds it)."""
    own = own_clause(interface, api, catalog)
    if own is None:
        return None
    return (
        'SELECT count("ttfb_ms") AS "ttfb_n", mean("ttfb_ms") AS "ttfb_mean", '
        'percentile("ttfb_ms", 95) AS "ttfb_p95", count("duration_ms") AS "ttlb_n", '
        'mean("duration_ms") AS "ttlb_mean", percentile("duration_ms", 95) AS "ttlb_p95" '
        f'FROM "step" WHERE {own} AND "outcome" =~ {_outcomes(ANSWERED_OUTCOMES)} AND '
        f'{_sites_clause(sites)}{_time(start_ms, end_ms)} GROUP BY "site"'
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
            raise QueryError(
                f"InfluxDB at {self.url} answered HTTP {exc.code}{': ' + detail if detail else ''}"
            ) from None
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
RunKey = tuple[str, str, str, str, str]
"""(site, check, kind, location, outcome)"""


@dataclass
class Timing:
    """One site × side × interface × day of response times (``None``: no such value)."""

    ttfb_n: int = 0
    ttfb_mean: float | None = None
    ttfb_p95: float | None = None
    ttlb_n: int = 0
    ttlb_mean: float | None = None
    ttlb_p95: float | None = None


@dataclass
class Fetched:
    """The raw material of a report.

    ``runs`` holds, per series and outcome, the start times of the runs (sorted): every
    failed run, and the replied ones only for the site-days in ``raw_replies`` (where five
    failures or more could make a downtime); ``replied`` counts the replied runs of every
    day. ``failures`` are the error texts of the failed runs, aligned with their times.
    ``requests`` counts ``step`` points per (site, check, kind, outcome, day index);
    ``timing`` is per (site, api, interface, day index).
    """

    runs: dict[RunKey, array] = field(default_factory=dict)
    replied: dict[tuple[str, str, str, str, str, int], int] = field(default_factory=dict)
    """Runs replied to per (site, check, kind, location, outcome, day index)."""
    raw_replies: set[tuple[str, int]] = field(default_factory=set)
    """(site, day index) whose replied runs are in ``runs``, with an hour either side."""
    kinds: dict[tuple[str, str], str] = field(default_factory=dict)
    """(site, check) → kind, as the points say (replied runs are fetched without it)."""
    failures: dict[RunKey, list[str]] = field(default_factory=dict)
    requests: dict[tuple[str, str, str, str, int], int] = field(default_factory=dict)
    timing: dict[tuple[str, str, str, int], Timing] = field(default_factory=dict)
    incidents: dict[SeriesKey, list[Event]] = field(default_factory=dict)

    def merge(self, later: Fetched) -> None:
        """Append the data of a later day (series stay in time order)."""
        for key, times in later.runs.items():
            mine = self.runs.setdefault(key, array("q"))
            # a day's replies reach an hour into the next day's: one point per series and time
            skip = bisect.bisect_right(times, mine[-1]) if mine else 0
            mine.extend(times[skip:])
            if key in later.failures:
                self.failures.setdefault(key, []).extend(later.failures[key][skip:])
        self.replied.update(later.replied)
        self.raw_replies.update(later.raw_replies)
        self.kinds.update(later.kinds)
        self.requests.update(later.requests)
        self.timing.update(later.timing)
        for incident_key, events in later.incidents.items():
            self.incidents.setdefault(incident_key, []).extend(events)

    def add_runs(self, series: dict, failed: bool) -> None:
        tags = series.get("tags", {})
        key = (tags.get("site", ""), tags.get("check", ""), tags.get("kind", ""), tags.get("location", ""),
               tags.get("outcome", ""))
        if key[2]:
            self.kinds[key[:2]] = key[2]
        values = series.get("values") or []
        self.runs.setdefault(key, array("q")).extend(v[0] for v in values)
        if failed:
            self.failures.setdefault(key, []).extend(str(v[1] or "")[:ERROR_TEXT_MAX] for v in values)

    def name_kinds(self, configured: Mapping[tuple[str, str], str]) -> None:
        """Give the replied runs, fetched without their kind, the kind of their check (from
        the points; else from the configuration); runs of a check of unknown kind are dropped."""
        for key in [k for k in self.runs if not k[2]]:
            times = self.runs.pop(key)
            kind = self.kinds.get(key[:2]) or configured.get(key[:2])
            if kind:
                self.runs.setdefault((key[0], key[1], kind, key[3], key[4]), array("q")).extend(times)

    def add_replied_counts(self, day: int, series: dict) -> None:
        tags = series.get("tags", {})
        key = (tags.get("site", ""), tags.get("check", ""), tags.get("kind", ""), tags.get("location", ""),
               tags.get("outcome", ""))
        self.kinds[key[:2]] = key[2]
        for values in series.get("values") or []:
            self.replied[(*key, day)] = self.replied.get((*key, day), 0) + int(values[1] or 0)

    def series(self) -> set[tuple[str, str, str, str]]:
        """Every (site, check, kind, location) with runs in the data."""
        return {k[:4] for k in self.runs} | {k[:4] for k in self.replied}

    def add_requests(self, day: int, series: dict) -> None:
        tags = series.get("tags", {})
        for values in series.get("values") or []:
            key = (tags.get("site", ""), tags.get("check", ""), tags.get("kind", ""), tags.get("outcome", ""), day)
            self.requests[key] = self.requests.get(key, 0) + int(values[1] or 0)
            self.kinds[key[:2]] = key[2]

    def add_timing(self, api: str, interface: str, day: int, series: dict) -> None:
        site = series.get("tags", {}).get("site", "")
        columns = series.get("columns", [])
        for values in series.get("values") or []:
            row = dict(zip(columns, values, strict=False))
            self.timing[(site, api, interface, day)] = Timing(
                ttfb_n=int(row.get("ttfb_n") or 0), ttfb_mean=_number(row, "ttfb_mean"),
                ttfb_p95=_number(row, "ttfb_p95"),
                ttlb_n=int(row.get("ttlb_n") or 0), ttlb_mean=_number(row, "ttlb_mean"),
                ttlb_p95=_number(row, "ttlb_p95"))

    def add_incidents(self, series: dict) -> None:
        tags = series.get("tags", {})
        key = (tags.get("site", ""), tags.get("check", ""), tags.get("kind", ""), tags.get("location", ""))
        state = tags.get("state", "")
        columns = series.get("columns", [])
        at = columns.index("duration_s") if "duration_s" in columns else None
        events = self.incidents.setdefault(key, [])
        for v in series.get("values") or []:
            events.append((int(v[0]), state, float(v[at] or 0.0) if at is not None else 0.0))


def _number(row: dict, name: str) -> float | None:
    """``row[name]`` as a float (JSON has 10 for 10.0), ``None`` when absent or null."""
    value = row.get(name)
    return None if value is None else float(value)


def _fetch_day(client: QueryClient, bounds: Sequence[int], day: int, days: frozenset[int], sites: Sequence[str],
               catalog: Catalog, margin_ms: int) -> Fetched:
    start = bounds[day] - (0 if day - 1 in days else margin_ms)
    end = bounds[day + 1] + (0 if day + 1 in days else margin_ms)
    statements = [failed_runs_query(start, end, sites, catalog),
                  replied_counts_query(bounds[day], bounds[day + 1], sites, catalog),
                  step_counts_query(bounds[day], bounds[day + 1], sites, catalog)]
    timed: list[tuple[str, str]] = []
    for api in APIS:
        for interface in INTERFACES:
            query = timing_query(interface, api, bounds[day], bounds[day + 1], sites, catalog)
            if query is not None:
                statements.append(query)
                timed.append((api, interface))
    part = Fetched()
    for result in client.run(statements):
        sid = int(result.get("statement_id", 0))
        for series in result.get("series", []):
            if sid == 0:
                part.add_runs(series, failed=True)
            elif sid == 1:
                part.add_replied_counts(day, series)
            elif sid == 2:
                part.add_requests(day, series)
            else:
                part.add_timing(*timed[sid - 3], day, series)
    _fetch_replies(client, part, bounds, day, catalog, margin_ms)
    return part


def _fetch_replies(client: QueryClient, part: Fetched, bounds: Sequence[int], day: int, catalog: Catalog,
                   margin_ms: int) -> None:
    """The replied runs themselves, into ``part``, only where five failures could make a
    downtime: the sites with five failed runs or more around the day (most days of most
    sites have none)."""
    lo, hi = bounds[day] - margin_ms, bounds[day + 1] + margin_ms
    failing: dict[str, int] = {}
    for key, times in part.runs.items():
        failing[key[0]] = failing.get(key[0], 0) + bisect.bisect_left(times, hi) - bisect.bisect_left(times, lo)
    candidates = sorted(site for site, n in failing.items() if n >= FAILURES)
    if candidates:
        for result in client.run([replied_runs_query(lo, hi, candidates, catalog)]):
            for series in result.get("series", []):
                part.add_runs(series, failed=False)
        part.raw_replies.update((site, day) for site in candidates)


def fetch(client: QueryClient, bounds: Sequence[int], sites: Sequence[str], catalog: Catalog, margin_ms: int,
          days: Sequence[int] | None = None, workers: int = PARALLEL_REQUESTS) -> Fetched:
    """Everything for the days ``bounds[i]..bounds[i+1]`` (epoch ms) of ``days`` (default:
    all), one request per day, and the incidents.

    ``check`` points are fetched ``margin_ms`` beyond each run of consecutive days, so
    that a downtime that started before a day, or whose fifth failure comes after it, is
    seen. Up to ``workers`` days are fetched at once (InfluxDB answers them on several
    cores); they are merged in day order.
    """
    chosen = sorted(set(range(len(bounds) - 1) if days is None else days))
    data = Fetched()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="report-fetch") as pool:
        futures = [pool.submit(_fetch_day, client, bounds, day, frozenset(chosen), sites, catalog, margin_ms)
                   for day in chosen]
        try:
            for future in futures:
                data.merge(future.result())
        finally:
            for future in futures:
                future.cancel()
    for result in client.run([incidents_query(bounds[-1] + margin_ms, sites)]):
        for series in result.get("series", []):
            data.add_incidents(series)
    data.name_kinds(catalog.kinds or {})
    return data
