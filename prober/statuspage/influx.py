"""Daily uptime read from InfluxDB, through the InfluxQL ``/query`` API.

InfluxDB 1.x serves ``/query`` natively; 2.x and 3.x serve it as their v1 compatibility
API (the bucket as ``db``, the token in ``Authorization: Token …``), which is how the
dashboards read them too. One query per refresh, at most every :data:`CACHE_SECONDS`::

    SELECT count("success") AS "runs", sum("success") AS "ok" FROM "check"
    WHERE "outcome" != 'skipped' AND time >= '<first day>T00:00:00Z'
    GROUP BY time(1d), "site", "kind" fill(none)

InfluxQL's ``time(1d)`` buckets are UTC days, the same days as the local aggregate. When
InfluxDB cannot answer (down, a wrong credential, a server without InfluxQL such as
VictoriaMetrics), the page falls back to the prober's local aggregate and says so; the
error is logged once per change, without the credential.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp

from prober.config.influxdb import InfluxDBConfig
from prober.statuspage.history import DailyHistory, DayUptime

log = logging.getLogger("prober.statuspage")

CACHE_SECONDS = 60.0
MAX_ANSWER = 32 << 20
"""Bytes of a query answer read at most (90 days × a few hundred series is far less)."""

QUERY = (
    'SELECT count("success") AS "runs", sum("success") AS "ok" FROM "check" '
    "WHERE \"outcome\" != 'skipped' AND time >= '{start}T00:00:00Z' "
    'GROUP BY time(1d), "site", "kind" fill(none)'
)


class InfluxQueryError(Exception):
    """InfluxDB did not answer the query with data (the text names why, never a secret)."""


def parse_answer(doc: Any) -> dict[tuple[str, str], dict[date, tuple[int, int]]]:
    """``(site, kind) → day → (runs, failures)`` from a ``/query`` JSON answer."""
    if not isinstance(doc, dict):
        raise InfluxQueryError("the answer is not a JSON object")
    if doc.get("error"):
        raise InfluxQueryError(str(doc["error"])[:200])
    out: dict[tuple[str, str], dict[date, tuple[int, int]]] = {}
    for result in doc.get("results") or []:
        if not isinstance(result, dict):
            continue
        if result.get("error"):
            raise InfluxQueryError(str(result["error"])[:200])
        for series in result.get("series") or []:
            tags = series.get("tags") or {}
            key = (str(tags.get("site", "")), str(tags.get("kind", "")))
            columns = series.get("columns") or []
            try:
                at, runs_at, ok_at = columns.index("time"), columns.index("runs"), columns.index("ok")
            except ValueError:
                continue
            for row in series.get("values") or []:
                try:
                    day = date.fromisoformat(str(row[at])[:10])
                    runs, ok = int(row[runs_at] or 0), int(row[ok_at] or 0)
                except (TypeError, ValueError, IndexError):
                    continue
                if runs > 0:
                    out.setdefault(key, {})[day] = (runs, max(0, runs - ok))
    return out


class InfluxHistory:
    """History source reading InfluxDB, falling back to ``local`` when it cannot."""

    def __init__(self, config: InfluxDBConfig, local: DailyHistory, *, timeout: float = 5.0) -> None:
        self.config = config
        self.local = local
        self.timeout = timeout
        self.name = f"InfluxDB ({config.describe()})"
        self._cache: tuple[float, int, dict[tuple[str, str], list[DayUptime]]] | None = None
        self._last_error = ""

    def _request(self, start: date) -> tuple[str, dict[str, str], dict[str, str]]:
        cfg = self.config
        params = {"q": QUERY.format(start=start.isoformat())}
        headers = {"Accept": "application/json"}
        target = cfg.influxql_target()
        params["db"] = target.database
        if target.retention_policy:
            params["rp"] = target.retention_policy
        if target.authorization:
            headers["Authorization"] = target.authorization
        return f"{cfg.url}/query", params, headers

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self.config.verify_tls:
            return False
        if self.config.ca_file:
            return ssl.create_default_context(cafile=self.config.ca_file)
        return True

    async def query(self, days: int, today: date) -> dict[tuple[str, str], dict[date, tuple[int, int]]]:
        """Run the query; raises :class:`InfluxQueryError` when there is no answer to use."""
        start = today - timedelta(days=days - 1)
        url, params, headers = self._request(start)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(url, data=params, headers=headers, ssl=self._ssl()) as response:
                    body = await response.content.read(MAX_ANSWER + 1)
                    status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise InfluxQueryError(f"{type(exc).__name__}") from None
        if len(body) > MAX_ANSWER:
            raise InfluxQueryError(f"answer larger than {MAX_ANSWER} bytes")
        try:
            doc = json.loads(body)
        except ValueError:
            raise InfluxQueryError(f"HTTP {status}, not JSON") from None
        if status != 200:
            message = doc.get("error") if isinstance(doc, dict) else None
            raise InfluxQueryError(f"HTTP {status}" + (f": {str(message)[:200]}" if message else ""))
        return parse_answer(doc)

    async def daily(self, days: int) -> dict[tuple[str, str], list[DayUptime]]:
        now = time.monotonic()
        if self._cache is not None and self._cache[1] == days and now - self._cache[0] < CACHE_SECONDS:
            return self._cache[2]
        today = datetime.now(UTC).date()
        try:
            counts = await self.query(days, today)
        except InfluxQueryError as exc:
            if str(exc) != self._last_error:
                log.warning("status page: cannot read the uptime history from %s (%s); showing the local one",
                            self.config.describe(), exc)
                self._last_error = str(exc)
            self.name = f"the prober's local state (InfluxDB: {exc})"
            return self.local.daily(days)
        if self._last_error:
            log.warning("status page: reading the uptime history from %s again", self.config.describe())
            self._last_error = ""
        self.name = f"InfluxDB ({self.config.describe()})"
        series = {key: DailyHistory.series_of(found, days=days, today=today) for key, found in counts.items()}
        self._cache = (now, days, series)
        return series
