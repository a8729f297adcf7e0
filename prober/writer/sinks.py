"""Where batches of line protocol go: InfluxDB's v2 or v1 write API.

A sink sends one batch and says what happened, as a :class:`WriteResult`; it never raises
for database trouble. The writer decides what to do with each :class:`WriteStatus`:

========== ==================================================================================
ok          written (204/200)
retry       keep the batch and try again later: connection refused or reset, timeout, DNS,
            TLS, 5xx, 429, and also 401/403/404 (a token, a permission or a database an
            operator can fix: the data is kept, not thrown away). ``retry_after`` carries
            the server's ``Retry-After`` in seconds when it sent one. A missing InfluxDB
            1.x database is created when ``create_database`` is set, and otherwise
            logged once as an error naming it (see :class:`InfluxV1Sink`).
rejected    the server refused the content and will refuse it again (400 malformed, 413,
            422…): the batch is set aside in the spool's ``rejected`` table for
            inspection, its points counted as dropped, and never retried.
partial     InfluxDB 1.x (and 2.x) answer 400 ``partial write`` when they stored the good
            points of a batch and dropped the others (field type conflict, points outside
            the retention policy, a line that does not parse). Retrying would store the
            good points again and drop the bad ones again, so the batch is treated like a
            rejection: kept aside for inspection, and ``dropped`` counts the points the
            server reports dropped (``dropped=N`` plus one per ``unable to parse``) rather
            than the whole batch.
========== ==================================================================================

Messages hold the status and the server's (truncated) error text, never credentials:
the text of a 401 or 403 answer is not kept at all (a server or a proxy refusing the
credentials may echo the ``Authorization`` header), and every message, whatever its
source, is scrubbed of the token, the password (plain, base64 and percent-encoded, and
any long fragment of them) and of anything following an ``Authorization`` header name.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import ssl
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Protocol

import aiohttp

from prober.config.influxdb import InfluxDBConfig, InfluxDBv1Config, InfluxDBv2Config
from prober.redact import Redactor

if TYPE_CHECKING:  # imported when a v2 sink starts: the client library is slow to import
    from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
    from influxdb_client.client.write_api_async import WriteApiAsync

__all__ = [
    "InfluxV1Sink",
    "InfluxV2Sink",
    "Scrubber",
    "Sink",
    "WriteResult",
    "WriteStatus",
    "classify_status",
    "make_sink",
]

_MESSAGE_MAX = 300
_DATABASE_NOT_FOUND = "database not found"
"""What InfluxDB 1.x answers (with a 404) to a write into a database that does not exist."""

log = logging.getLogger("prober.writer")


class WriteStatus(enum.Enum):
    """What became of one batch; see the module docstring."""

    OK = "ok"
    RETRY = "retry"
    REJECTED = "rejected"
    PARTIAL = "partial"


@dataclass(slots=True, frozen=True)
class WriteResult:
    """The answer of a sink for one batch."""

    status: WriteStatus
    message: str = ""
    retry_after: float | None = None
    dropped: int = 0
    """Points the server dropped (``rejected``: the whole batch; ``partial``: as reported)."""


OK = WriteResult(WriteStatus.OK)


class Sink(Protocol):
    """Something that writes batches of line protocol; injectable into the writer."""

    description: str

    async def start(self) -> None: ...

    async def write(self, body: str, points: int) -> WriteResult:
        """Send ``points`` lines joined by newlines; never raises for database trouble."""
        ...

    async def close(self) -> None: ...


_DROPPED = re.compile(r"dropped=(\d+)")


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), ``None`` when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import time

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def classify_status(status: int, text: str, points: int, retry_after: str | None = None) -> WriteResult:
    """Turn an HTTP answer to a write into a :class:`WriteResult`."""
    if 200 <= status < 300:
        return OK
    if status in (401, 403):
        # What a server says when it refuses credentials is not worth the risk of
        # keeping: some (and some proxies) echo the Authorization header back.
        text = "credentials refused" if status == 401 else "permission refused"
    text = " ".join(text.split())[:_MESSAGE_MAX]
    message = f"HTTP {status}: {text}" if text else f"HTTP {status}"
    if status in (401, 403, 404, 408, 429) or status >= 500:
        return WriteResult(WriteStatus.RETRY, message, parse_retry_after(retry_after))
    if "partial write" in text:
        match = _DROPPED.search(text)
        dropped = (int(match.group(1)) if match else 0) + text.count("unable to parse")
        return WriteResult(WriteStatus.PARTIAL, message, dropped=min(max(dropped, 1), points))
    return WriteResult(WriteStatus.REJECTED, message, dropped=points)


def _ssl_context(config: InfluxDBConfig) -> ssl.SSLContext | bool:
    if not config.url.startswith("https:"):
        return True
    if not config.verify_tls:
        return False
    return ssl.create_default_context(cafile=config.ca_file)


def _error_message(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    name = type(exc).__name__
    text = str(exc)
    return f"{name}: {text}"[:_MESSAGE_MAX] if text else name


_AUTH_ECHO = re.compile(
    r"""(?i)(authorization["']?\s*[:=]\s*["']?)(?:(?:basic|bearer|token)\s+)?[^\s"',;}]+"""
)


class Scrubber:
    """Removes the credentials of an InfluxDB configuration from messages."""

    def __init__(self, config: InfluxDBConfig) -> None:
        secrets = list(config.secrets())
        authorization = config.influxql_target().authorization
        if authorization:  # the credential of "Basic <base64 of user:password>" or "Token <token>"
            secrets.append(authorization.split(" ", 1)[1])
        self._redact = Redactor(tuple(secrets))

    def __call__(self, result: WriteResult) -> WriteResult:
        if not result.message:
            return result
        return replace(result, message=self._redact(_AUTH_ECHO.sub(r"\1***", result.message)))


class InfluxV1Sink:
    """``POST /write?db=&rp=&precision=`` (InfluxDB 1.x), over aiohttp.

    Credentials go in a basic ``Authorization`` header (never in the URL, which may be
    logged by proxies). Bodies are gzip-compressed (level 1) when ``gzip`` is set.

    A write answered 404 ``database not found``: with ``create_database`` the sink sends
    ``CREATE DATABASE`` through ``/query`` and writes the batch again; without, it logs an
    error naming the database once (again if it disappears after working) and answers
    ``retry`` with a message saying what to do, which the writer shows as ``last_error``
    while the results wait in the spool.
    """

    _V1_PRECISION = {"ns": "ns", "us": "u", "ms": "ms", "s": "s"}

    def __init__(self, config: InfluxDBv1Config) -> None:
        self.config = config
        self.description = config.describe()
        params = {"db": config.database, "precision": self._V1_PRECISION[config.precision]}
        if config.retention_policy:
            params["rp"] = config.retention_policy
        self._params = params
        self._url = f"{config.url}/write"
        self._headers: dict[str, str] = {}
        authorization = config.influxql_target().authorization
        if authorization:
            self._headers["Authorization"] = authorization
        self._session: aiohttp.ClientSession | None = None
        self._scrub = Scrubber(config)
        self._missing_reported = False

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=_ssl_context(self.config), limit=8)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.config.timeout),
                headers=self._headers,
            )

    async def write(self, body: str, points: int) -> WriteResult:
        return self._scrub(await self._write(body, points))

    async def _write(self, body: str, points: int) -> WriteResult:
        if self._session is None:
            await self.start()
        assert self._session is not None
        data = body.encode()
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.config.gzip:
            compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
            data = compressor.compress(data) + compressor.flush()
            headers["Content-Encoding"] = "gzip"
        result, missing = await self._post(data, headers, points)
        if missing:
            result = await self._missing_database(data, headers, points)
        elif result.status is WriteStatus.OK:
            self._missing_reported = False
        return result

    async def _post(self, data: bytes, headers: dict[str, str], points: int) -> tuple[WriteResult, bool]:
        """One write; the flag says the server answered that the database does not exist."""
        assert self._session is not None
        try:
            async with self._session.post(self._url, params=self._params, data=data, headers=headers) as resp:
                if 200 <= resp.status < 300:
                    return OK, False
                text = await resp.text(errors="replace")
                missing = resp.status == 404 and _DATABASE_NOT_FOUND in text
                return classify_status(resp.status, text, points, resp.headers.get("Retry-After")), missing
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return WriteResult(WriteStatus.RETRY, _error_message(exc)), False
        except Exception as exc:  # anything unforeseen: keep the data, try again later
            return WriteResult(WriteStatus.RETRY, _error_message(exc)), False

    async def _missing_database(self, data: bytes, headers: dict[str, str], points: int) -> WriteResult:
        name = self.config.database
        where = f"InfluxDB {self.config.url}"
        if not self.config.create_database:
            message = (f"database {name!r} does not exist on {where}: create it (CREATE DATABASE) or set "
                       "[influxdb] create_database = true; results are kept in the spool")
            if not self._missing_reported:
                self._missing_reported = True
                log.error("%s", message)
            return WriteResult(WriteStatus.RETRY, message)
        created = await self._create_database(name)
        if created.status is not WriteStatus.OK:
            return created
        log.warning("created database %r on %s ([influxdb] create_database = true)", name, where)
        result, _ = await self._post(data, headers, points)
        return result

    async def _create_database(self, name: str) -> WriteResult:
        """``CREATE DATABASE`` (a no-op when it exists) through ``POST /query``."""
        assert self._session is not None
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        failed = f"cannot create database {name!r}"
        try:
            async with self._session.post(
                f"{self.config.url}/query", data={"q": f'CREATE DATABASE "{quoted}"'}
            ) as resp:
                text = await resp.text(errors="replace")
                if not 200 <= resp.status < 300:
                    answer = classify_status(resp.status, text, 0).message
                    return WriteResult(WriteStatus.RETRY, f"{failed}: {answer}")
                if '"error"' in text:
                    return WriteResult(WriteStatus.RETRY, f"{failed}: {' '.join(text.split())[:_MESSAGE_MAX]}")
                return OK
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return WriteResult(WriteStatus.RETRY, f"{failed}: {_error_message(exc)}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class InfluxV2Sink:
    """``/api/v2/write`` through ``influxdb-client``'s :class:`InfluxDBClientAsync`.

    Works with InfluxDB 2.x/3.x, InfluxDB 1.8+ (v2 compatibility API) and anything else
    that speaks the v2 write protocol (VictoriaMetrics…).
    """

    def __init__(self, config: InfluxDBv2Config) -> None:
        self.config = config
        self.description = config.describe()
        self._client: InfluxDBClientAsync | None = None
        self._write_api: WriteApiAsync | None = None
        self._scrub = Scrubber(config)

    async def start(self) -> None:
        if self._client is not None:
            return
        from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

        config = self.config
        kwargs: dict = {"verify_ssl": config.verify_tls}
        if config.ca_file:
            kwargs["ssl_ca_cert"] = config.ca_file
        self._client = InfluxDBClientAsync(
            url=config.url,
            token=config.token.get_secret_value() if config.token else "",  # "": no Authorization header
            org=config.org,
            timeout=int(config.timeout * 1000),
            enable_gzip=config.gzip,
            **kwargs,
        )
        self._write_api = self._client.write_api()

    async def write(self, body: str, points: int) -> WriteResult:
        return self._scrub(await self._write(body, points))

    async def _write(self, body: str, points: int) -> WriteResult:
        from influxdb_client.rest import ApiException

        if self._write_api is None:
            await self.start()
        assert self._write_api is not None
        try:
            await self._write_api.write(
                bucket=self.config.bucket,
                org=self.config.org,
                record=body,
                write_precision=self.config.precision,  # type: ignore[arg-type]  # WritePrecision's values are str
            )
            return OK
        except ApiException as exc:
            body_text = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body or "")
            headers: Mapping[str, str] = exc.headers or {}
            retry_after = headers.get("Retry-After") if hasattr(headers, "get") else None
            return classify_status(int(exc.status or 0) or 500, body_text, points, retry_after)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return WriteResult(WriteStatus.RETRY, _error_message(exc))
        except Exception as exc:  # anything unforeseen: keep the data, try again later
            return WriteResult(WriteStatus.RETRY, _error_message(exc))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
            self._write_api = None


SINKS: dict[type, type[InfluxV1Sink] | type[InfluxV2Sink]] = {
    InfluxDBv1Config: InfluxV1Sink,
    InfluxDBv2Config: InfluxV2Sink,
}
"""The model of each ``[influxdb]`` API version → the sink that writes through it."""


def make_sink(config: InfluxDBConfig) -> Sink:
    """The sink for ``config``'s API version."""
    return SINKS[type(config)](config)
