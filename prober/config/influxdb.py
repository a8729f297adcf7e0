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

Without an ``[influxdb]`` section the prober runs on the embedded default
(:class:`SpoolConfig`): results are kept in the local spool only, and replayed into
InfluxDB by the first later start that has an ``[influxdb]`` section.

The spool directory defaults to ``var/spool`` relative to the working directory the
prober is started from (the ``/var/`` of a checkout is git-ignored); services should set
an absolute ``spool_dir`` such as ``/var/lib/bank-prober/spool``.
"""

from __future__ import annotations

import os
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator, model_validator

from prober.config.types import STRICT, Duration, Precision, read_secret_file

DEFAULT_SPOOL_DIR = "var/spool"
"""Where failed batches are kept, relative to the working directory unless absolute."""

DEFAULT_SPOOL_MAX_MB = 512
"""Spool size limit; beyond it the oldest batches are dropped (and counted)."""


_V2_FIELDS = frozenset({"org", "bucket", "token"})
_REQUIRED = frozenset({"org", "bucket", "database"})


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


class InfluxDBConfig(BaseModel):
    """Where and how results are written to InfluxDB.

    ``api = "v2"`` (default) writes through ``/api/v2/write`` with ``org``, ``bucket`` and
    a ``token`` (InfluxDB 2.x, 3.x, VictoriaMetrics…); ``api = "v1"`` writes through
    ``/write?db=&rp=`` with optional basic auth (InfluxDB 1.x). Secrets are given inline
    (``token``, ``password``) or, better, read from a file (``token_file``,
    ``password_file``) when the configuration is loaded; they are held as
    :class:`~pydantic.SecretStr` and never printed. After validation ``token`` /
    ``password`` hold the secret whichever way it was given.

    ``timeout`` bounds one write request; ``batch_size`` points or ``flush_interval``,
    whichever comes first, trigger a write; ``gzip`` compresses request bodies.
    Batches that cannot be written are kept in an SQLite spool under ``spool_dir``
    (default ``var/spool`` relative to the working directory) of at most
    ``spool_max_mb`` megabytes, and replayed oldest first.
    """

    model_config = STRICT

    url: str
    api: Literal["v1", "v2"] = "v2"
    # v2
    org: str | None = Field(default=None, validate_default=True)
    bucket: str | None = Field(default=None, validate_default=True)
    token: SecretStr | None = None
    token_file: str | None = None
    # v1
    database: str | None = Field(default=None, validate_default=True)
    retention_policy: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    password_file: str | None = None
    create_database: bool = False
    """v1: when a write answers that ``database`` does not exist, create it (needs an
    admin user) instead of keeping results in the spool until an operator does."""
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

    @field_validator("org", "bucket", "token", "database", "retention_policy", "username", "password")
    @classmethod
    def _check_api_specific(cls, value: object, info: ValidationInfo) -> object:
        api = info.data.get("api")
        if api is None:  # api itself was invalid; that error is reported already
            return value
        name = info.field_name
        own_api = "v2" if name in _V2_FIELDS else "v1"
        if api != own_api and value is not None:
            raise ValueError(f'{name} applies to api = "{own_api}" only, and api = "{api}"')
        if api == own_api and name in _REQUIRED and not value:
            raise ValueError(f'{name} is required when api = "{api}"')
        return value

    @field_validator("create_database")
    @classmethod
    def _create_database_is_v1(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("api") == "v2":
            raise ValueError('create_database applies to api = "v1" only, and api = "v2"')
        return value

    @field_validator("token_file", "password_file")
    @classmethod
    def _check_secret_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        name = info.field_name
        inline = name.removesuffix("_file")
        api = info.data.get("api")
        own_api = "v2" if name == "token_file" else "v1"
        if api is not None and api != own_api:
            raise ValueError(f'{name} applies to api = "{own_api}" only, and api = "{api}"')
        if info.data.get(inline) is not None:
            raise ValueError(f"set either {inline} or {name}, not both")
        read_secret_file(value)  # raises ValueError naming the path, located at this field
        return value

    @field_validator("ca_file")
    @classmethod
    def _check_ca_file(cls, value: str | None) -> str | None:
        if value is not None and not os.path.isfile(value):
            raise ValueError(f"CA file {value!r} does not exist")
        return value

    @model_validator(mode="after")
    def _resolve_secrets(self) -> InfluxDBConfig:
        if (self.password is not None or self.password_file is not None) and not self.username:
            raise ValueError("username is required when a password is set")
        # Frozen model: resolve the *_file secrets once, at load time.
        if self.token_file is not None:
            object.__setattr__(self, "token", SecretStr(read_secret_file(self.token_file)))
        if self.password_file is not None:
            object.__setattr__(self, "password", SecretStr(read_secret_file(self.password_file)))
        return self

    @property
    def spool(self) -> SpoolConfig:
        """The spool settings of this section."""
        return SpoolConfig(
            spool_dir=self.spool_dir,
            spool_max_mb=self.spool_max_mb,
            batch_size=self.batch_size,
            flush_interval=f"{self.flush_interval}s",
        )

    def describe(self) -> str:
        """A one-line, secret-free description for logs: ``v1 http://host:8086 db=prober``."""
        if self.api == "v2":
            return f"v2 {self.url} org={self.org} bucket={self.bucket}"
        rp = f" rp={self.retention_policy}" if self.retention_policy else ""
        return f"v1 {self.url} db={self.database}{rp}"
