"""The ``[access]`` section: who may read the prober's own HTTP surface.

Example::

    [access]
    # allow_unauthenticated = false  # true: serve the internal surface on a network without credentials
    rate_limit = 20                  # requests per second per client address on internal routes (0: no limit)
    rate_burst = 40                  # requests a client may make at once before the limit applies

    [[access.tokens]]                # Authorization: Bearer <token> (Prometheus, scripts)
    name = "prometheus"              # who holds it (for the operator: shown nowhere)
    token_file = "/run/secrets/prober-metrics-token"     # or token = "${PROBER_METRICS_TOKEN}"

    [[access.users]]                 # HTTP basic auth (a browser's login prompt)
    name = "ops"
    password_hash = "$2b$12$..."     # bcrypt; or password_hash_file = "/run/secrets/ops.bcrypt"

    [access.tls]                     # HTTPS on every listener of the prober
    cert_file = "/etc/bank-prober/tls/tls.crt"    # read again when it changes on disk
    key_file = "/etc/bank-prober/tls/tls.key"

Two audiences share the listeners (:mod:`prober.access`): the **public** routes
(``/healthz``, and the status page with its JSON twin, feed and badges when
``[status_page] public = true``) answer anyone; every other route is **internal**
(``/status``, the internal status page and its JSON, ``/metrics``…) and needs one of the
credentials above as soon as any is configured. Several tokens, and several users (or
several hashes of one user name), are valid at once, so that one can be replaced
without downtime; a reload (SIGHUP) applies this section.

Safe by default (:func:`exposure_problems`): a listener that serves internal routes on
an address other than loopback, without any credential, is refused unless
``allow_unauthenticated = true``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from prober.config.daemon import DaemonConfig, split_listen
from prober.config.statuspage import StatusPageConfig
from prober.config.types import STRICT, secret_from_file

if TYPE_CHECKING:
    import ssl

    from prober.config.model import Config

MIN_TOKEN_LENGTH = 16
"""A shorter bearer token could be guessed: ``openssl rand -hex 32`` makes a good one."""
_BCRYPT = re.compile(r"^\$2[abxy]?\$(\d\d)\$[./A-Za-z0-9]{53}$")
_USER_NAME = re.compile(r"^[^:\x00-\x1f\x7f]{1,64}$")
HASH_HOWTO = ("make one with: python3 -c 'import bcrypt, getpass; "
              "print(bcrypt.hashpw(getpass.getpass().encode(), bcrypt.gensalt(12)).decode())' "
              "or htpasswd -nBC 12 NAME")


def _secret(value: object) -> object:
    return SecretStr(value) if isinstance(value, str) else value


class BearerToken(BaseModel):
    """One bearer token (``Authorization: Bearer <token>``), for machines."""

    model_config = STRICT

    name: str = Field(min_length=1, max_length=64)
    """Who holds it (``prometheus``): for the operator's own bookkeeping, and the name
    configuration errors give the entry (``access.tokens[prometheus]``)."""
    token: SecretStr
    token_file: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _token_from_file(cls, data: Any) -> Any:
        return secret_from_file(data, "token", "an access token", required=True)

    to_secret = field_validator("token", mode="before")(_secret)

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if len(text) < MIN_TOKEN_LENGTH or text != text.strip() or any(c.isspace() for c in text):
            raise ValueError(f"a token is at least {MIN_TOKEN_LENGTH} characters without spaces "
                             "(make one with: openssl rand -hex 32)")
        return value


class BasicUser(BaseModel):
    """One user of HTTP basic auth, for people (the browser's login prompt) and tools
    that only speak basic auth. The password is stored as a bcrypt hash only."""

    model_config = STRICT

    name: str
    """The user name: 1-64 characters, no ``:`` (basic auth separates it from the password with one)."""
    password_hash: SecretStr
    password_hash_file: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _hash_from_file(cls, data: Any) -> Any:
        return secret_from_file(data, "password_hash", "an access user", required=True)

    to_secret = field_validator("password_hash", mode="before")(_secret)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _USER_NAME.match(value):
            raise ValueError("a user name is 1-64 characters, without ':' or control characters")
        return value

    @field_validator("password_hash")
    @classmethod
    def _bcrypt(cls, value: SecretStr) -> SecretStr:
        match = _BCRYPT.match(value.get_secret_value())
        if match is None or not 4 <= int(match.group(1)) <= 31:
            # Never echoed: it may be a password written where its hash belongs.
            raise ValueError(f"password_hash is not a bcrypt hash ($2b$12$ and 53 characters): {HASH_HOWTO}")
        return value


class ListenerTLS(BaseModel):
    """HTTPS on every listener (certificate chain and key, PEM). The files are read
    again when they change on disk, for the handshakes that follow."""

    model_config = STRICT

    cert_file: str = Field(min_length=1)
    key_file: str = Field(min_length=1)

    @model_validator(mode="after")
    def _loads(self) -> ListenerTLS:
        import ssl  # only with TLS listeners configured (~10 ms of every start otherwise)

        try:
            load_server_certificate(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH), self)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ValueError(f"cannot use cert_file {self.cert_file!r} with key_file {self.key_file!r}: "
                             f"{describe_tls_error(exc)}") from None
        return self


def load_server_certificate(context: ssl.SSLContext, tls: ListenerTLS) -> None:
    """Load ``tls``'s chain and key into ``context`` (raises ``OSError``, ``ssl.SSLError``,
    or ``ValueError`` for an encrypted key: OpenSSL would otherwise ask for its password
    on the terminal)."""
    asked: list[bool] = []

    def no_password() -> bytes:
        asked.append(True)
        return b""

    import ssl

    try:
        context.load_cert_chain(tls.cert_file, tls.key_file, password=no_password)
    except ssl.SSLError:
        if asked:
            raise ValueError("the key is encrypted (give an unencrypted key, readable by the prober only)") from None
        raise


def describe_tls_error(exc: BaseException) -> str:
    """One line for a certificate or key that cannot be loaded."""
    import ssl

    if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError) and exc.strerror:
        return exc.strerror
    reason = getattr(exc, "reason", None) or str(exc)
    hints = {
        "KEY_VALUES_MISMATCH": "the key does not belong to the certificate",
        "NO_START_LINE": "not a PEM file",
    }
    return hints.get(str(reason), str(reason))


class AccessConfig(BaseModel):
    """Settings of the prober's own HTTP surface (see the module docstring)."""

    model_config = STRICT

    tokens: list[BearerToken] = Field(default_factory=list)
    users: list[BasicUser] = Field(default_factory=list)
    allow_unauthenticated: bool = False
    """Serve the internal routes on a non-loopback address without any credential (a
    warning is logged at every start). Without it, such a configuration is refused."""
    tls: ListenerTLS | None = None
    rate_limit: int = Field(default=20, ge=0, le=100_000)
    """Requests per second each client address may make to internal routes (a token
    bucket per address); 0 turns the limit off. Public routes are not limited."""
    rate_burst: int = Field(default=40, ge=1, le=100_000)
    """Requests a client may make at once (the bucket's size)."""

    @property
    def authenticates(self) -> bool:
        """Whether internal routes need a credential (one is configured)."""
        return bool(self.tokens or self.users)


def is_loopback(host: str) -> bool:
    """Whether a listener on ``host`` is reachable from this machine only. A host name
    other than ``localhost`` may resolve to anything: it counts as not loopback."""
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


@dataclass(frozen=True, slots=True)
class ServedAddress:
    """A listener the configuration opens, and whether it serves internal routes."""

    field: str
    """Its field path (``daemon.health_listen``)."""
    listen: str
    internal: str
    """What internal it serves, for messages; ``""`` when everything on it is public."""


def served_addresses(daemon: DaemonConfig, page: StatusPageConfig) -> list[ServedAddress]:
    """Every listener of ``prober run`` (with ``--workers N`` the supervisor's, and the
    workers' on the same hosts, other ports)."""
    served: list[ServedAddress] = []
    page_here = page.enabled and not page.listen_address()
    if daemon.listen_address() is not None:
        internal = (
            "the internal routes (/status"
            + (", the internal status page" if page_here and not page.public else "")
            + ")"
        )
        served.append(ServedAddress("daemon.health_listen", daemon.health_listen, internal))
    if page.enabled and page.listen_address() is not None:
        served.append(ServedAddress("status_page.listen", page.listen,
                                    "" if page.public else "the internal status page (public = false)"))
    return served


def unauthenticated_exposures(config: Config) -> list[ServedAddress]:
    """Listeners that would serve internal routes beyond loopback without a credential."""
    if config.access.authenticates:
        return []
    return [s for s in served_addresses(config.daemon, config.status_page)
            if s.internal and not is_loopback(split_listen(s.listen)[0])]  # type: ignore[index]  # served: not ""


def exposure_problems(config: Config, where: str) -> list[str]:
    """Why ``prober run`` refuses to start (one line each: the reason and the fix), or
    []; ``where`` names the configuration (its path)."""
    if config.access.allow_unauthenticated:
        return []
    return [
        f"{where}: {s.field}: {s.listen!r} would serve {s.internal} to the network without authentication: "
        "add [[access.tokens]] or [[access.users]], listen on 127.0.0.1, "
        "or set [access] allow_unauthenticated = true"
        for s in unauthenticated_exposures(config)
    ]
