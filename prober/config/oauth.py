"""Configuration of the OAuth2 token step (``oauth = {...}`` on a step).

A token step asks the bank's token endpoint for an access token with the
``client_credentials`` or ``refresh_token`` grant and authenticates the client the way
PSD2 APIs ask for:

- ``private_key_jwt`` (RFC 7523): a JWT signed with the client's key, ``client_assertion``;
- ``tls_client_auth`` (RFC 8705): the client certificate of the site's mutual TLS
  (``[sites.tls] cert_file``/``key_file``), so the token is bound to it;
- ``client_secret_post`` / ``client_secret_basic``: a shared secret.

The access token goes into the value named ``into`` (``token`` by default) for later
steps, and is reused across runs until ``reuse_margin`` before it expires, unless
``reuse = false`` (a journey that must log in every time, as a customer does). A rotated
refresh token is persisted in ``[daemon] state_dir``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, TypeAdapter, field_validator, model_validator

from prober.config.types import STRICT, Duration, parse_duration
from prober.config.unions import tagged_union

DurationOrZero = Annotated[float, BeforeValidator(parse_duration)]
"""A duration ≥ 0 written as a string (``"0s"`` turns the margin off)."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _TokenRequest(BaseModel):
    """What every token request has, whichever ``auth``. Strings may be templates
    (``{{ client_id }}``)."""

    model_config = STRICT

    auth: str
    token_url: str
    grant: Literal["client_credentials", "refresh_token"] = "client_credentials"
    client_id: str
    refresh_token: str | None = None
    """refresh_token grant: the first refresh token (a template naming a site secret);
    once the bank rotates it, the persisted one is used, until this value changes."""
    scope: str | None = None
    params: dict[str, str] = Field(default_factory=dict)
    """Extra form parameters (e.g. ``resource``)."""
    into: str = "token"
    """The value name later steps use the access token by."""
    reuse: bool = True
    reuse_margin: DurationOrZero = 60.0
    """A cached token is not used when it expires within this long."""

    @field_validator("into")
    @classmethod
    def _into(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"invalid value name {value!r}: use letters, digits and '_'")
        return value

    @model_validator(mode="after")
    def _refresh_token_grant(self) -> _TokenRequest:
        if self.grant == "refresh_token" and self.refresh_token is None:
            raise ValueError("grant 'refresh_token' needs `refresh_token` (the first one; rotated ones are persisted)")
        return self


class PrivateKeyJwtAuth(_TokenRequest):
    """``auth = "private_key_jwt"`` (the default, RFC 7523): a client assertion signed
    with ``key_file``."""

    auth: Literal["private_key_jwt"] = "private_key_jwt"
    key_file: str
    """The PEM private key the client assertion is signed with."""
    key_password_file: str | None = None
    key_id: str | None = None
    """``kid`` of the key, as registered with the bank."""
    algorithm: Literal["PS256", "RS256", "ES256"] | None = None
    """Defaults to PS256 for an RSA key, ES256 for an EC P-256 key."""
    audience: str | None = None
    """The assertion's ``aud``; the token URL unless set."""
    assertion_lifetime: Duration = 60.0


class TlsClientAuth(_TokenRequest):
    """``auth = "tls_client_auth"`` (RFC 8705): the site's mutual-TLS client certificate."""

    auth: Literal["tls_client_auth"] = "tls_client_auth"


class ClientSecretAuth(_TokenRequest):
    """``client_secret_post`` or ``client_secret_basic``: a shared secret."""

    client_secret: str
    """The secret, normally a template naming a site secret."""


class ClientSecretPostAuth(ClientSecretAuth):
    """``auth = "client_secret_post"``: the secret in the form."""

    auth: Literal["client_secret_post"] = "client_secret_post"


class ClientSecretBasicAuth(ClientSecretAuth):
    """``auth = "client_secret_basic"``: the secret in HTTP basic authentication."""

    auth: Literal["client_secret_basic"] = "client_secret_basic"


OAuthConfig = tagged_union(
    "auth", (PrivateKeyJwtAuth, TlsClientAuth, ClientSecretPostAuth, ClientSecretBasicAuth),
    "a client authentication method", default="private_key_jwt")
"""A token request: the model of its ``auth``."""

_ADAPTER: TypeAdapter[_TokenRequest] = TypeAdapter(OAuthConfig)


def oauth_config(**values: Any) -> _TokenRequest:
    """An ``oauth`` table validated from keyword values, the way the file's is (``auth``
    picks the model; raises pydantic's ``ValidationError``)."""
    return _ADAPTER.validate_python(values)
