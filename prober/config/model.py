"""The typed configuration: prober settings, sites, checks, steps, assertions.

TOML layout::

    [prober]                 # optional: location label, instance name
    [influxdb]               # optional: where results go (see prober.config.influxdb)
    [access]                 # optional: who may read the prober's own HTTP surface (prober.config.access)
    [certificates]           # optional: the certificate expiry warning ladder (prober.config.certificates)
    [[sites]]                # one per bank
      [sites.tls] [sites.headers] [sites.vars] [sites.secrets]
      [[sites.step_groups.NAME]]   # reusable steps, included by checks
      [[sites.checks]]       # one per journey
        [[sites.checks.steps]]     # a step, or { include = "NAME" }
          expect = [ {json = "...", gt = 0}, ... ]
          extract = { token = {json = "access_token"} }

Validation of single fields and of each table happens here (duplicate names, step-group
includes: the model validators of :class:`Site` and :class:`Config`); references to
values defined by earlier steps are checked when the plans are compiled
(:func:`prober.journey.plan.compile_config`, called by :func:`prober.loading.load`).
"""

from __future__ import annotations

import re
import socket
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import jmespath
import jmespath.exceptions
from pydantic import (
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    PrivateAttr,
    SecretStr,
    Tag,
    field_validator,
    model_validator,
)

from prober.config.access import AccessConfig
from prober.config.browser import BrowserStep, is_browser_step
from prober.config.certificates import CertificatesConfig
from prober.config.daemon import DaemonConfig
from prober.config.incidents import IncidentsConfig
from prober.config.influxdb import InfluxDBConfig
from prober.config.oauth import OAuthConfig
from prober.config.signing import SigningConfig
from prober.config.statuspage import StatusPageConfig
from prober.config.types import (
    STRICT,
    ByteSize,
    Duration,
    Interval,
    Timeout,
    exactly_one,
    read_secret_file,
    valid_regex,
)
from prober.notify.providers import NotifierConfig
from prober.results import Kind

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MUTATING_KINDS = frozenset({"transfer", "cards"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_VALUE_NAMES = frozenset({"run", "uuid", "now"})
DEFAULT_MAX_BODY = 10 << 20


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"invalid name {value!r}: use 1-63 letters, digits, '_', '-' or '.', starting with a letter or digit"
        )
    return value


def _shown_url(value: str) -> str:
    """The URL for an error message: credentials and query left out."""
    head, _, _query = value.partition("?")
    scheme, sep, rest = head.rpartition("://")
    hostpart, slash, path = rest.partition("/")
    if "@" in hostpart:
        hostpart = "***@" + hostpart.rpartition("@")[2]
    return f"{scheme}{sep}{hostpart}{slash}{path}"


def _check_value_names(value: dict[str, Any]) -> dict[str, Any]:
    """Names usable in templates: vars, secrets and extracted values."""
    for name in value:
        if not _IDENTIFIER.match(name) or name in RESERVED_VALUE_NAMES:
            raise ValueError(f"invalid value name {name!r}: use letters, digits and '_' (not run, uuid, now)")
    return value


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid URL {_shown_url(value)!r}: expected http:// or https:// followed by a host")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(f"invalid URL {_shown_url(value)!r}: bad port") from None
    return value


def _check_jmespath(value: str) -> str:
    try:
        jmespath.compile(value)
    except jmespath.exceptions.IncompleteExpressionError:
        raise ValueError(f"invalid JSON path {value!r}: incomplete expression") from None
    except jmespath.exceptions.ParseError as exc:
        raise ValueError(f"invalid JSON path {value!r}: {exc.msg} at position {exc.lex_position}") from None
    except jmespath.exceptions.JMESPathError as exc:
        raise ValueError(f"invalid JSON path {value!r}: {str(exc).splitlines()[0]}") from None
    return value


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, int) and not isinstance(value, bool) else value


class ProberSettings(BaseModel):
    """The `[prober]` section: who this prober is."""

    model_config = STRICT

    location: str = "local"
    """Where the prober runs (the `location` tag); a site may override it."""
    instance: str = Field(default_factory=socket.gethostname)

    check_location = field_validator("location")(_check_name)


class TLSConfig(BaseModel):
    """TLS options of a site. Verification is on unless turned off explicitly."""

    model_config = STRICT

    verify: bool = True
    ca_file: str | None = None
    cert_file: str | None = None
    """Client certificate (PEM) for mutual TLS, as PSD2 APIs require (eIDAS QWAC)."""
    key_file: str | None = None
    server_name: str | None = None
    """Host name sent as SNI and checked against the server's certificate, when the
    URL's host is not the certificate's (an IP address, a load balancer's own name)."""

    @model_validator(mode="after")
    def _key_needs_cert(self) -> TLSConfig:
        if self.key_file and not self.cert_file:
            raise ValueError("`key_file` is set but `cert_file` is not")
        return self


_COMPARATORS = ("equals", "not_equals", "gt", "ge", "lt", "le", "matches", "contains", "exists", "length", "min_length")


class Assertion(BaseModel):
    """One expectation on a response.

    Source (exactly one): ``json`` (a JMESPath expression on the JSON body), ``header``
    (a response header name), ``body = true`` (the raw body text). Comparators (at least
    one): ``equals``, ``not_equals``, ``gt``/``ge``/``lt``/``le`` (numbers; numeric
    strings such as ``"12.50"`` are compared as numbers), ``matches`` (regex search),
    ``contains`` (substring or list member), ``exists``, ``length`` (exact) and
    ``min_length``.
    """

    model_config = STRICT

    json_path: str | None = Field(default=None, alias="json")
    header: str | None = None
    body: bool = False
    equals: Any = None
    not_equals: Any = None
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    matches: str | None = None
    contains: Any = None
    exists: bool | None = None
    length: int | None = Field(default=None, ge=0)
    min_length: int | None = Field(default=None, ge=0)
    description: str | None = None
    """Shown in failure messages instead of the generated one."""

    @field_validator("gt", "ge", "lt", "le", mode="before")
    @classmethod
    def _int_is_number(cls, value: object) -> object:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    check_json = field_validator("json_path")(_check_jmespath)
    check_matches = field_validator("matches")(valid_regex)

    @model_validator(mode="after")
    def _shape(self) -> Assertion:
        exactly_one(self, ("json_path", "header", "body"), "an assertion")
        if not any(getattr(self, c) is not None for c in _COMPARATORS):
            raise ValueError("an assertion needs at least one of " + ", ".join(_COMPARATORS))
        return self


class Extract(BaseModel):
    """Where to take a value from for later steps: exactly one of ``json`` (JMESPath),
    ``header``, ``cookie``, ``regex`` (on the body; the first group, or the whole match).

    ``secret`` marks the value for redaction in every error and output; it defaults to
    true for names that look like credentials (token, secret, password, session, key),
    and for every value taken from the answer of a token request.
    """

    model_config = STRICT

    json_path: str | None = Field(default=None, alias="json")
    header: str | None = None
    cookie: str | None = None
    regex: str | None = None
    secret: bool | None = None

    check_json = field_validator("json_path")(_check_jmespath)
    check_regex = field_validator("regex")(valid_regex)

    @model_validator(mode="after")
    def _shape(self) -> Extract:
        exactly_one(self, ("json_path", "header", "cookie", "regex"), "an extraction")
        return self


class Poll(BaseModel):
    """Repeat a read-only step until its expectations hold (e.g. a payment's status)."""

    model_config = STRICT

    attempts: int = Field(default=10, ge=1, le=1000)
    interval: Duration = 0.5


class Step(BaseModel):
    """One HTTP exchange of a journey.

    ``path`` is joined to the site's ``base_url``; ``url`` is absolute. Strings in
    ``path``/``url``, ``query``, ``headers``, ``json``, ``form`` and ``body`` are templates:
    ``{{ token }}`` takes a value extracted by an earlier step, a site variable or secret;
    ``{{ run.id }}`` / ``{{ uuid() }}`` give per-run / per-use unique ids.
    """

    model_config = STRICT

    name: str
    method: Method = "GET"
    path: str | None = None
    url: str | None = None
    query: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    form: dict[str, str] | None = None
    body: str | None = None
    status: Annotated[list[int], BeforeValidator(_one_or_many)] | None = None
    """Accepted status code or list of codes; any 2xx when unset."""
    expect: list[Assertion] = Field(default_factory=list)
    extract: dict[str, Extract] = Field(default_factory=dict)
    max_duration: Duration | None = None
    """Latency budget: a slower answer fails the step with outcome ``slow``."""
    timeout: Timeout | None = None
    """Cap for this step; defaults to the site's ``timeout``."""
    max_body: ByteSize | None = None
    """Largest response body read, after decompression; defaults to the site's."""
    always_run: bool = False
    """Cleanup step: runs even when an earlier step failed or the journey timed out."""
    follow_redirects: bool = True
    poll: Poll | None = None
    signing: SigningConfig | None = None
    """Signs this step's requests, instead of the site's ``signing``."""
    sign: bool = True
    """``false``: send this step unsigned even when the site signs (e.g. a token
    endpoint outside the signed API)."""
    oauth: OAuthConfig | None = None
    """A token step: asks ``oauth.token_url`` for an access token (instead of
    ``path``/``url`` and a body), see prober.config.oauth."""
    idempotency_key: bool | None = None
    """Send the check's idempotency key with this step; unset: see :func:`needs_idempotency_key`."""
    _group: str | None = PrivateAttr(default=None)
    """The step group this step was included from, if any (for messages)."""

    check_name = field_validator("name")(_check_name)

    @property
    def group(self) -> str | None:
        return self._group

    @property
    def is_token_request(self) -> bool:
        """An OAuth2 token request: an ``oauth`` step, or a ``form`` body with a
        ``grant_type``. It obtains credentials (what it receives is secret) and changes
        nothing at the bank."""
        return self.oauth is not None or (self.form is not None and "grant_type" in self.form)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and "{{" not in value:
            _check_http_url(value)
        return value

    @field_validator("status")
    @classmethod
    def _status(cls, value: list[int] | None) -> list[int] | None:
        for code in value or []:
            if not 100 <= code <= 599:
                raise ValueError(f"invalid HTTP status {code} (expected 100-599)")
        return value

    check_extract_names = field_validator("extract")(_check_value_names)

    @model_validator(mode="after")
    def _shape(self) -> Step:
        if self.oauth is not None:
            clash = [f for f in ("path", "url", "json_body", "form", "body", "poll") if getattr(self, f) is not None]
            if clash or self.method != "GET":
                raise ValueError(f"step {self.name!r}: a token step (`oauth`) sets no "
                                 + ", ".join(f"`{f.removesuffix('_body')}`" for f in clash or ["method"]))
            return self
        if self.path is None and self.url is None:
            raise ValueError(
                f"step {self.name!r} needs exactly one of `path`, `url` (an API step) or an action "
                "(`goto`, `click`, `fill`, `press`, `select`, `check`, `uncheck`: a browser step), got none"
            )
        exactly_one(self, ("path", "url"), f"step {self.name!r}")
        bodies = [b for b in ("json_body", "form", "body") if getattr(self, b) is not None]
        if len(bodies) > 1:
            raise ValueError(f"step {self.name!r} sets more than one body: {', '.join(bodies)}")
        if self.signing is not None and not self.sign:
            raise ValueError(f"step {self.name!r} sets both `signing` and `sign = false`")
        if self.poll is not None and self.method not in SAFE_METHODS:
            raise ValueError(
                f"step {self.name!r}: `poll` repeats the request, so it is only allowed on GET/HEAD/OPTIONS")
        return self


def needs_idempotency_key(check: Check, step: Step) -> bool:
    """Whether a step carries the check's idempotency key.

    ``idempotency_key = true/false`` on the step decides; unset, the key goes on every
    POST/PUT/PATCH/DELETE of a mutating check except an OAuth2 token request (an
    ``oauth`` step, or a ``form`` body with a ``grant_type``), which obtains credentials
    and changes nothing.
    """
    if step.idempotency_key is not None:
        return step.idempotency_key and step.method not in SAFE_METHODS
    return check.is_mutating and step.method not in SAFE_METHODS and not step.is_token_request


class Include(BaseModel):
    """``{ include = "NAME" }`` in a check's steps: the site's step group NAME, in place."""

    model_config = STRICT

    include: str


def _step_or_include(value: object) -> str:
    if isinstance(value, (dict, Include)) and (isinstance(value, Include) or "include" in value):
        return "Include"
    return "BrowserStep" if is_browser_step(value) else "Step"


def _step_kind(value: object) -> str:
    return "BrowserStep" if is_browser_step(value) else "Step"


STEP_OR_INCLUDE_TAGS = frozenset({"Step", "Include", "BrowserStep"})
"""Union tags pydantic puts in error locations of a check's steps (left out of messages)."""

CheckStep = Annotated[
    Annotated[Step, Tag("Step")] | Annotated[Include, Tag("Include")] | Annotated[BrowserStep, Tag("BrowserStep")],
    Discriminator(_step_or_include),
]
GroupStep = Annotated[
    Annotated[Step, Tag("Step")] | Annotated[BrowserStep, Tag("BrowserStep")], Discriminator(_step_kind)
]
"""A step of a step group: an API step or a browser step, told apart by its keys."""

_USER_TAG = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
SCHEMA_TAGS = frozenset({"site", "check", "kind", "step", "location", "instance", "outcome", "state"})
MAX_USER_TAGS = 4


def _check_user_tags(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_USER_TAGS:
        raise ValueError(f"at most {MAX_USER_TAGS} tags per check, got {len(value)}")
    for name, tag_value in value.items():
        if not _USER_TAG.match(name):
            raise ValueError(
                f"invalid tag name {name!r}: use 1-32 lowercase letters, digits or '_', starting with a letter")
        if name in SCHEMA_TAGS:
            raise ValueError(f"tag name {name!r} is one of the schema's own tags ({', '.join(sorted(SCHEMA_TAGS))})")
        if not _NAME.match(tag_value):
            raise ValueError(
                f"invalid value for tag {name!r}: use 1-63 letters, digits, '_', '-' or '.', "
                "starting with a letter or digit"
            )
    return value


class Check(BaseModel):
    """A journey: ordered steps exercising one bank capability (``kind``)."""

    model_config = STRICT

    name: str
    kind: Kind
    steps: list[CheckStep] = Field(min_length=1)
    """Steps, and ``{ include = "NAME" }`` entries that the site expands in place (after
    validation of the site, every entry is a :class:`Step`, or every one a
    :class:`~prober.config.browser.BrowserStep`: a browser check)."""
    tags: dict[str, str] = Field(default_factory=dict)
    """The check's own InfluxDB tags (at most four), for failures that depend on where or
    what, e.g. ``{ merchant_country = "US" }``; on ``check`` and ``step`` points and in
    notifications."""
    interval: Interval = 60.0
    timeout: Timeout = 30.0
    """Budget for the whole journey (cleanup steps get their own step timeouts)."""
    max_duration: Duration | None = None
    """Latency budget of the whole journey: when every step passed but the journey took
    longer, its outcome is ``slow``. At most ``timeout``."""
    mutating: bool | None = None
    """Changes state at the bank: never retried, every non-GET request carries an
    idempotency key. Defaults to true for kinds ``transfer`` and ``cards``."""
    idempotency_header: str = "Idempotency-Key"
    enabled: bool = True
    psd2: list[Literal["ais", "pis", "cof"]] | None = None
    """PSD2 interfaces this check's runs count for in ``prober report`` (``[]``: none);
    default from ``kind``, see :mod:`prober.report.interfaces`."""
    psd2_interface: Literal["dedicated", "psu"] = "dedicated"
    """Which interface of the bank the check probes, for ``prober report``: the dedicated
    PSD2 interface (default; the API third parties use) or ``psu``, the one the bank's own
    customers use (web, app: browser checks), reported beside it for a day-by-day
    comparison."""

    check_name = field_validator("name")(_check_name)
    check_tags = field_validator("tags")(_check_user_tags)

    @property
    def is_mutating(self) -> bool:
        return self.kind in MUTATING_KINDS if self.mutating is None else self.mutating

    @property
    def is_browser(self) -> bool:
        """A browser check: its steps drive a real browser (see prober.config.browser)."""
        return any(isinstance(step, BrowserStep) for step in self.steps)

    @property
    def api_steps(self) -> list[Step]:
        """The steps of an API check, step groups expanded (none for a browser check)."""
        return [step for step in self.steps if isinstance(step, Step)]

    @property
    def browser_steps(self) -> list[BrowserStep]:
        """The steps of a browser check, step groups expanded (none for an API check)."""
        return [step for step in self.steps if isinstance(step, BrowserStep)]

    @model_validator(mode="after")
    def _timeouts(self) -> Check:
        if self.timeout > self.interval:
            raise ValueError(f"timeout ({self.timeout:g}s) is longer than interval ({self.interval:g}s)")
        if self.max_duration is not None and self.max_duration > self.timeout:
            raise ValueError(f"max_duration ({self.max_duration:g}s) is longer than timeout ({self.timeout:g}s)")
        if self.is_mutating and not self.idempotency_header.strip():
            raise ValueError("a mutating check needs a non-empty `idempotency_header`")
        return self


class Site(BaseModel):
    """A banking site: where it is, how to talk to it, and its checks."""

    model_config = STRICT

    name: str
    base_url: str
    checks: list[Check] = Field(min_length=1)
    location: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Timeout = 10.0
    """Default per-step timeout."""
    max_body: ByteSize = DEFAULT_MAX_BODY
    """Default largest response body a step reads (decompressed bytes); a larger one
    ends the step with outcome ``error``."""
    max_concurrency: int | None = Field(default=None, ge=1, le=10_000)
    """Journeys of this site running at once. Default: its number of enabled checks,
    so each of them always finds a slot (a check never runs twice at once). A lower
    value spares a fragile bank: its runs then wait for one of its own slots."""
    tls: TLSConfig = Field(default_factory=TLSConfig)
    vars: dict[str, str] = Field(default_factory=dict)
    """Plain values for templates (usernames, account ids, IBANs)."""
    secrets: dict[str, SecretStr] = Field(default_factory=dict)
    """Values for templates that are redacted everywhere; ``name_file = "/path"`` reads
    the value ``name`` from a file."""
    signing: SigningConfig | None = None
    """Signs every request of the site (PSD2 profiles, see prober.config.signing)."""
    traceparent: bool = True
    """Send a W3C ``traceparent`` header on every request (false for a bank that
    refuses requests with headers it does not know)."""
    step_groups: dict[str, list[GroupStep]] = Field(default_factory=dict)
    """Named lists of steps (e.g. the token request) that checks include with
    ``{ include = "NAME" }``; written ``[[sites.step_groups.NAME]]``, one table per step."""

    check_name = field_validator("name")(_check_name)
    check_url = field_validator("base_url")(_check_http_url)

    @field_validator("location")
    @classmethod
    def _location(cls, value: str | None) -> str | None:
        return None if value is None else _check_name(value)

    @field_validator("secrets", mode="before")
    @classmethod
    def _secret_files(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        resolved: dict[str, object] = {}
        for key, item in value.items():
            if isinstance(key, str) and key.endswith("_file"):
                if not isinstance(item, str):
                    raise ValueError(f"`{key}` must be a file path string")
                resolved[key.removesuffix("_file")] = SecretStr(read_secret_file(item))
            else:
                resolved[key] = SecretStr(item) if isinstance(item, str) else item
        return resolved

    check_value_names = field_validator("vars", "secrets")(_check_value_names)

    @field_validator("step_groups")
    @classmethod
    def _group_names(cls, value: dict[str, list[Step | BrowserStep]]) -> dict[str, list[Step | BrowserStep]]:
        for name, steps in value.items():
            _check_name(name)
            if not steps:
                raise ValueError(f"step group {name!r} has no steps")
        return value

    @model_validator(mode="after")
    def _expand_includes(self) -> Site:
        """Replace each ``{ include = "NAME" }`` by copies of the group's steps."""
        problems: list[str] = []
        checks: list[Check] = []
        for check in self.checks:
            steps: list[Step | BrowserStep] = []
            for index, item in enumerate(check.steps):
                if isinstance(item, Step | BrowserStep):
                    steps.append(item)
                elif item.include not in self.step_groups:
                    defined = ", ".join(sorted(self.step_groups)) or "none"
                    problems.append(
                        f"checks[{check.name}].steps[{index}].include: no step group {item.include!r} "
                        f"in this site (defined: {defined})"
                    )
                else:
                    for step in self.step_groups[item.include]:
                        copy = step.model_copy()
                        copy._group = item.include
                        steps.append(copy)
            kinds = {isinstance(step, BrowserStep) for step in steps}
            if len(kinds) > 1:
                browser = next(s.name for s in steps if isinstance(s, BrowserStep))
                api = next(s.name for s in steps if not isinstance(s, BrowserStep))
                problems.append(f"checks[{check.name}].steps: a check's steps are all API steps or all browser "
                                f"steps: {browser!r} is a browser step, {api!r} an API step")
            checks.append(check.model_copy(update={"steps": steps}))
        if problems:
            raise ValueError("; ".join(problems))
        object.__setattr__(self, "checks", checks)  # frozen: set once, while validating
        return self


class Config(BaseModel):
    """The whole configuration, as loaded from one file or a directory of files."""

    model_config = STRICT

    sites: list[Site] = Field(default_factory=list)
    prober: ProberSettings = Field(default_factory=ProberSettings)
    influxdb: InfluxDBConfig | None = None
    incidents: IncidentsConfig = Field(default_factory=IncidentsConfig)
    notifiers: list[NotifierConfig] = Field(default_factory=list)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    status_page: StatusPageConfig = Field(default_factory=StatusPageConfig)
    access: AccessConfig = Field(default_factory=AccessConfig)
    certificates: CertificatesConfig = Field(default_factory=CertificatesConfig)

    @model_validator(mode="after")
    def _locations_need_influxdb(self) -> Config:
        if self.incidents.locations is not None and self.influxdb is None:
            raise ValueError("incidents.locations: deciding across locations reads what every prober wrote to "
                             "InfluxDB: add an [influxdb] section (or remove [incidents.locations])")
        return self

    def location_of(self, site: Site) -> str:
        return site.location or self.prober.location
