"""The ``[influxdb]`` section, and the spool used when there is none.

Example (InfluxDB 2.x / 3.x, or anything speaking ``/api/v2/write``)::

    [influxdb]
    url = "https://influx.example.net:8086"
    org = "ops"
    bucket = "prober"
    token_file = "/run/secrets/influx-token"

Example (InfluxDB 1.x ``/write``)::

    [influxdb]
    url = "http://127.0.0.1:8086"
    api = "v1"
    database = "prober"
    username = "prober"
    password_file = "/run/secrets/influx-password"

Each API version owns its model (:class:`InfluxDBv2Config`, :class:`InfluxDBv1Config`);
``api`` (default ``"v2"``) chooses which one validates the section
(:data:`InfluxDBConfig`, a :func:`~prober.config.unions.tagged_union`), so a v1 key in a
v2 section is reported as such, and a required key of the chosen version is reported
missing by name.

Without an ``[influxdb]`` section the prober runs on the embedded default
(:class:`SpoolConfig`): results are kept in the local spool only, and replayed into
InfluxDB by the first later start that has an ``[influxdb]`` section.

The spool directory defaults to ``var/spool`` relative to the working directory the
prober is started from (the ``/var/`` of a checkout is git-ignored); services should set
an absolute ``spool_dir`` such as ``/var/lib/bank-prober/spool``.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, field_validator, model_validator

from prober.config.types import STRICT, Duration, Precision, secret_from_file
from prober.config.unions import tagged_union

DEFAULT_SPOOL_DIR = "var/spool"
"""Where failed batches are kept, relative to the working directory unless absolute."""

DEFAULT_SPOOL_MAX_MB = 512
"""Spool size limit; beyond it the oldest batches are dropped (and counted)."""


class SpoolConfig(BaseModel):
    """Where results go when there is no ``[influxdb]`` section (the embedded default).

    Every batch is written to the SQLite spool in ``spool_dir``; nothing is lost, and a
    later start with ``[influxdb]`` replays the spool into it.
    """

    model_config = STRICT

    spool_dir: str = DEFAULT_SPOOL_DIR
    spool_max_mb: int = Field(default=DEFAULT_SPOOL_MAX_MB, ge=1)
    batch_size: int = Field(default=5000, ge=1, le=1_000_000)
    flush_interval: Duration = 1.0


@dataclass(frozen=True, slots=True)
class InfluxQLTarget:
    """Where and as whom InfluxQL is read through ``{url}/query`` (both API versions
    answer it: 2.x through its v1 compatibility API, with the bucket as database)."""

    database: str
    retention_policy: str | None
    authorization: str | None
    """The ``Authorization`` header value; a secret, never logged."""


class _InfluxDBBase(BaseModel):
    """What both API versions share: the server, the transport, batching and the spool.

    ``timeout`` bounds one write request; ``batch_size`` points or ``flush_interval``,
    whichever comes first, trigger a write; ``gzip`` compresses request bodies.
    Batches that cannot be written are kept in an SQLite spool under ``spool_dir``
    (default ``var/spool`` relative to the working directory) of at most
    ``spool_max_mb`` megabytes, and replayed oldest first.
    """

    model_config = STRICT

    url: str
    # transport
    verify_tls: bool = True
    ca_file: str | None = None
    gzip: bool = True
    precision: Precision = "ns"
    timeout: Duration = 10.0
    # batching and spool
    batch_size: int = Field(default=5000, ge=1, le=1_000_000)
    flush_interval: Duration = 1.0
    spool_dir: str = DEFAULT_SPOOL_DIR
    spool_max_mb: int = Field(default=DEFAULT_SPOOL_MAX_MB, ge=1)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL with a host, got {value!r}")
        if parts.username is not None or parts.password is not None:
            raise ValueError("the URL must not carry credentials (use token or username/password)")
        if parts.query or parts.fragment:
            raise ValueError("the URL must not carry a query or fragment (use org/bucket or database)")
        return value.rstrip("/")

    @field_validator("ca_file")
    @classmethod
    def _check_ca_file(cls, value: str | None) -> str | None:
        if value is not None and not os.path.isfile(value):
            raise ValueError(f"CA file {value!r} does not exist")
        return value

    def secrets(self) -> tuple[str, ...]:
        """Every secret of the section (to scrub from messages), whichever the version."""
        found = [value.get_secret_value() for value in self.__dict__.values() if isinstance(value, SecretStr)]
        return tuple(secret for secret in found if secret)

    def influxql_target(self) -> InfluxQLTarget:
        """Where InfluxQL reads of this section's data go (each version says)."""
        raise NotImplementedError

    @property
    def spool(self) -> SpoolConfig:
        """The spool settings of this section."""
        return SpoolConfig(
            spool_dir=self.spool_dir,
            spool_max_mb=self.spool_max_mb,
            batch_size=self.batch_size,
            flush_interval=f"{self.flush_interval}s",
        )


class InfluxDBv2Config(_InfluxDBBase):
    """``api = "v2"`` (the default): ``/api/v2/write`` with ``org``, ``bucket`` and a
    ``token`` (InfluxDB 2.x, 3.x, VictoriaMetrics…).

    The token is given inline (``token``) or, better, read from ``token_file`` when the
    configuration is loaded; it is held as :class:`~pydantic.SecretStr` and never printed.
    """

    api: Literal["v2"] = "v2"
    org: str = Field(min_length=1)
    bucket: str = Field(min_length=1)
    token: SecretStr | None = None
    token_file: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _token_from_file(cls, data: Any) -> Any:
        return secret_from_file(data, "token", "[influxdb]")

    def describe(self) -> str:
        """A one-line, secret-free description for logs: ``v2 http://host:8086 org=ops bucket=prober``."""
        return f"v2 {self.url} org={self.org} bucket={self.bucket}"

    def influxql_target(self) -> InfluxQLTarget:
        """The bucket, read through the v1 compatibility ``/query`` with the token."""
        auth = None if self.token is None else "Token " + self.token.get_secret_value()
        return InfluxQLTarget(self.bucket, None, auth)


class InfluxDBv1Config(_InfluxDBBase):
    """``api = "v1"``: ``/write?db=&rp=`` with optional basic auth (InfluxDB 1.x).

    The password is given inline (``password``) or, better, read from ``password_file``
    when the configuration is loaded; it is held as :class:`~pydantic.SecretStr` and
    never printed.
    """

    api: Literal["v1"] = "v1"
    database: str = Field(min_length=1)
    retention_policy: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    password_file: str | None = None
    create_database: bool = False
    """When a write answers that ``database`` does not exist, create it (needs an admin
    user) instead of keeping results in the spool until an operator does."""

    @model_validator(mode="before")
    @classmethod
    def _password_from_file(cls, data: Any) -> Any:
        return secret_from_file(data, "password", "[influxdb]")

    @model_validator(mode="after")
    def _password_needs_username(self) -> InfluxDBv1Config:
        if self.password is not None and not self.username:
            raise ValueError("username is required when a password is set")
        return self

    def describe(self) -> str:
        """A one-line, secret-free description for logs: ``v1 http://host:8086 db=prober``."""
        rp = f" rp={self.retention_policy}" if self.retention_policy else ""
        return f"v1 {self.url} db={self.database}{rp}"

    def influxql_target(self) -> InfluxQLTarget:
        """The database and retention policy, with basic auth when a username is set."""
        auth = None
        if self.username:
            password = self.password.get_secret_value() if self.password else ""
            auth = "Basic " + base64.b64encode(f"{self.username}:{password}".encode()).decode()
        return InfluxQLTarget(self.database, self.retention_policy, auth)


InfluxDBConfig = tagged_union("api", (InfluxDBv2Config, InfluxDBv1Config), "an InfluxDB API version", default="v2")
"""The ``[influxdb]`` section: validated by the model of its ``api`` version (the one
table of versions; ``api`` defaults to ``"v2"``)."""


_ADAPTER: TypeAdapter[InfluxDBv1Config | InfluxDBv2Config] = TypeAdapter(
    InfluxDBConfig, config=ConfigDict(hide_input_in_errors=True))


def influxdb_config(**values: Any) -> InfluxDBv1Config | InfluxDBv2Config:
    """An ``[influxdb]`` section validated from keyword values, the way the file's is
    (``api`` picks the version; raises pydantic's ``ValidationError``)."""
    return _ADAPTER.validate_python(values)
