"""The OAuth2 token step: client_credentials / refresh_token with private_key_jwt,
tls_client_auth or a client secret, and tokens reused across runs.

The runner treats a token step like any other step (same timing, classification,
timeouts, assertions); this module supplies what differs: the request
(:meth:`OAuthPlan.request`), the cache look-up before it (:meth:`OAuthPlan.cached`)
and the handling of the answer (:meth:`OAuthPlan.accept`).

The client assertion is a JWT made by joserfc (RFC 7523 claims: ``iss`` = ``sub`` =
client id, ``aud`` = token URL, fresh ``jti``, ``iat``, short ``exp``).
"""

from __future__ import annotations

import base64
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prober.config.oauth import ClientSecretAuth, OAuthConfig, PrivateKeyJwtAuth
from prober.journey.checks import Response
from prober.journey.errors import KeyFileError, ReportableError
from prober.journey.templating import Renderer, compile_value, names_in
from prober.journey.tokens import ClientKey, TokenCache, fingerprint

if TYPE_CHECKING:
    from prober.journey.signing.keys import KeySource

# The crypto and JOSE libraries are imported in the functions that use a key: a
# configuration whose token steps use none (client secrets, mTLS) loads without them.

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def template_names(config: OAuthConfig) -> set[str]:
    """Value names the step's templates use (for the config's reference check)."""
    fields = (config.token_url, config.client_id, _client_secret(config), config.refresh_token, config.scope,
              config.audience if isinstance(config, PrivateKeyJwtAuth) else None, config.params)
    return set().union(*(names_in(f) for f in fields if f is not None))


def _client_secret(config: OAuthConfig) -> str | None:
    return config.client_secret if isinstance(config, ClientSecretAuth) else None


def _algorithm(config: PrivateKeyJwtAuth, keys: KeySource) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = keys.get().key
    if config.algorithm is not None:
        wanted = ec.EllipticCurvePrivateKey if config.algorithm == "ES256" else rsa.RSAPrivateKey
        if not isinstance(key, wanted):
            raise KeyFileError("key_file", f"key file {config.key_file}: {config.algorithm} needs an "
                               f"{'EC P-256' if wanted is ec.EllipticCurvePrivateKey else 'RSA'} key")
        return config.algorithm
    if isinstance(key, rsa.RSAPrivateKey):
        return "PS256"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return "ES256"
    raise KeyFileError("key_file", f"key file {config.key_file}: private_key_jwt needs an RSA or EC P-256 key")


TOKEN_FIELDS = ("access_token", "refresh_token", "id_token")
"""The credentials of a token answer (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3)."""


def tokens_in(response: Response) -> list[str]:
    """The credentials a token answer holds, for the redactor: the access, refresh and
    id tokens of a JSON object body; none when the body is not one."""
    try:
        data = response.json()
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    return [value for name in TOKEN_FIELDS if isinstance(value := data.get(name), str) and value]


@dataclass(slots=True, frozen=True)
class TokenRequest:
    url: str
    headers: dict[str, str]
    form: dict[str, str]
    client: ClientKey
    refresh_token: str | None
    """The refresh token sent (rotation is detected against it)."""
    configured_refresh_token: str | None
    secrets: tuple[str, ...] = ()
    """What the request carries that must never be shown: the client assertion or
    secret, the ``Basic`` credentials, the refresh token."""


@dataclass(slots=True, frozen=True)
class OAuthPlan:
    """A compiled token step."""

    site: str
    grant: str
    auth: str
    token_url: Renderer
    client_id: Renderer
    client_secret: Renderer | None
    refresh_token: Renderer | None
    scope: Renderer | None
    audience: Renderer | None
    params: Renderer
    keys: KeySource | None
    key_id: str | None
    algorithm: str | None
    assertion_lifetime: float
    into: str
    reuse: bool
    reuse_margin: float
    cache: TokenCache

    @classmethod
    def build(cls, site: str, config: OAuthConfig, cache: TokenCache) -> OAuthPlan:
        """Raises :class:`KeyFileError` when the assertion key cannot be used."""
        keys = algorithm = None
        jwt = config if isinstance(config, PrivateKeyJwtAuth) else None
        if jwt is not None:
            from prober.journey.signing.keys import KeySource

            keys = KeySource(jwt.key_file, None, jwt.key_password_file)
            algorithm = _algorithm(jwt, keys)

        def optional(value: str | None) -> Renderer | None:
            return compile_value(value) if value is not None else None

        return cls(
            site=site, grant=config.grant, auth=config.auth, token_url=compile_value(config.token_url),
            client_id=compile_value(config.client_id), client_secret=optional(_client_secret(config)),
            refresh_token=optional(config.refresh_token), scope=optional(config.scope),
            audience=optional(jwt.audience if jwt else None), params=compile_value(config.params), keys=keys,
            key_id=jwt.key_id if jwt else None, algorithm=algorithm,
            assertion_lifetime=jwt.assertion_lifetime if jwt else 0.0,
            into=config.into, reuse=config.reuse, reuse_margin=config.reuse_margin, cache=cache,
        )

    def client(self, values: dict[str, Any]) -> ClientKey:
        scope = self.scope(values) if self.scope is not None else ""
        chain = fingerprint(str(self.refresh_token(values)))[:16] if self.refresh_token is not None else ""
        return ClientKey(self.site, self.token_url(values), self.client_id(values), self.grant, scope, chain)

    def cached(self, client: ClientKey) -> str | None:
        """A reusable access token of ``client``, or None."""
        if not self.reuse:
            return None
        entry = self.cache.access_token(client, self.reuse_margin)
        return entry[0] if entry is not None else None

    def request(self, client: ClientKey, values: dict[str, Any]) -> TokenRequest:
        """The token request's URL, headers and form."""
        form = {"grant_type": self.grant}
        headers = {"Accept": "application/json"}
        sent_refresh = configured = None
        secrets: list[str] = []
        if self.grant == "refresh_token":
            assert self.refresh_token is not None
            configured = str(self.refresh_token(values))
            sent_refresh = self.cache.refresh_token(client, configured)
            form["refresh_token"] = sent_refresh
            secrets.append(sent_refresh)
        if client.scope:
            form["scope"] = client.scope
        form.update(self.params(values))
        if self.auth == "private_key_jwt":
            form["client_id"] = client.client_id
            form["client_assertion_type"] = ASSERTION_TYPE
            audience = self.audience(values) if self.audience is not None else client.token_url
            form["client_assertion"] = self._assertion(client.client_id, str(audience))
            secrets.append(form["client_assertion"])
        elif self.auth == "client_secret_basic":
            assert self.client_secret is not None
            client_secret = str(self.client_secret(values))
            pair = f"{_form_quote(client.client_id)}:{_form_quote(client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
            secrets += (client_secret, headers["Authorization"])
        else:
            form["client_id"] = client.client_id
            if self.auth == "client_secret_post":
                assert self.client_secret is not None
                form["client_secret"] = str(self.client_secret(values))
                secrets.append(form["client_secret"])
        return TokenRequest(client.token_url, headers, form, client, sent_refresh, configured, tuple(secrets))

    def _assertion(self, client_id: str, audience: str) -> str:
        assert self.keys is not None and self.algorithm is not None
        key = self.keys.get().key
        now = int(time.time())
        claims = {"iss": client_id, "sub": client_id, "aud": audience, "jti": uuid.uuid4().hex,
                  "iat": now, "exp": now + int(self.assertion_lifetime)}
        header: dict[str, Any] = {"alg": self.algorithm}
        if self.key_id:
            header["kid"] = self.key_id
        from cryptography.hazmat.primitives.asymmetric import rsa
        from joserfc import jwt
        from joserfc.errors import JoseError
        from joserfc.jwk import ECKey, RSAKey

        # RSA or EC P-256: _algorithm refused any other key when the check was loaded
        jwk = RSAKey.import_key(key) if isinstance(key, rsa.RSAPrivateKey) else ECKey.import_key(key)  # type: ignore[arg-type]
        try:
            return jwt.encode(header, claims, jwk, algorithms=[self.algorithm])
        except (JoseError, ValueError, TypeError) as exc:
            raise ReportableError(f"oauth: cannot make the client assertion ({type(exc).__name__})") from None

    def accept(self, request: TokenRequest, response: Response) -> str:
        """The access token of a successful answer, kept for reuse. Raises
        ``LookupError`` (an assertion failure) when the answer has no token."""
        try:
            data = response.json()
        except ValueError:
            raise LookupError("token response is not JSON") from None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise LookupError("token response has no access_token")
        expires_in = data.get("expires_in")
        if self.reuse and isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
            self.cache.remember(request.client, token, float(expires_in))
        return token

    def keep_rotated(self, request: TokenRequest, response: Response) -> None:
        """Persist the refresh token a 2xx answer rotated, whatever the step's own
        verdict: the bank has retired the one sent, so losing the new one would end the
        chain. Raises :class:`ReportableError` when it cannot be persisted."""
        if request.configured_refresh_token is None or not 200 <= response.status < 300:
            return
        try:
            data = response.json()
        except ValueError:
            return
        rotated = data.get("refresh_token") if isinstance(data, dict) else None
        if isinstance(rotated, str) and rotated and rotated != request.refresh_token:
            self.cache.rotate(request.client, request.configured_refresh_token, rotated)


REFUSALS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})


def refusal(response: Response) -> str | None:
    """The RFC 6749 error code of a token answer that refuses the client or its grant
    (a closed set of codes, safe to report), else None."""
    if response.status not in (400, 401):
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    code = data.get("error") if isinstance(data, dict) else None
    return code if code in REFUSALS else None


def _form_quote(value: str) -> str:
    """RFC 6749 §2.3.1: client id and secret are form-encoded before Basic."""
    return urllib.parse.quote_plus(value)
