"""The simulated bank's OAuth2 server for PSD2 clients: private_key_jwt (RFC 7523),
tls_client_auth (RFC 8705) or a client secret; client_credentials and refresh_token
grants; refresh tokens rotated on use; access tokens bound to the client certificate
they were issued over (RFC 8705 §3).

Given to :class:`~prober.simbank.server.BankServer` as ``oauth``, it answers
``POST /oauth/token`` (behind the same fault guard as the built-in handler). A client
that fails to authenticate gets 401 ``invalid_client``; a refresh token that is unknown
or was already rotated away gets 400 ``invalid_grant`` (RFC 6749 §5.2), each with a
``reason``. Client assertions are checked with ``cryptography`` directly, independently
of the library the prober makes them with.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .faults import Fault
from .state import BankState

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass(slots=True)
class OAuthClient:
    """A registered client: a public key (private_key_jwt), a certificate
    (tls_client_auth) or a secret."""

    client_id: str
    public_key: PublicKeyTypes | None = None
    certificate: x509.Certificate | None = None
    secret: str | None = None


class Rejected(Exception):
    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.error = status, error


@dataclass(slots=True)
class OAuthServer:
    """Clients, live refresh tokens and what happened (for tests)."""

    clients: dict[str, OAuthClient]
    access_lifetime_s: float = 3600.0
    advertised_lifetime_s: float | None = None
    """``expires_in`` sent; the real lifetime unless set (a bank that revokes early)."""
    rotate_refresh_tokens: bool = True
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    used_jti: set[str] = field(default_factory=set)
    bound: dict[str, bytes] = field(default_factory=dict)
    """Access token → DER of the client certificate it was issued over."""
    issued: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def new_refresh_token(self, client_id: str) -> str:
        token = "rt-" + secrets.token_urlsafe(24)
        self.refresh_tokens[token] = client_id
        return token

    async def token(self, request: web.Request, state: BankState, fault: Fault | None) -> web.StreamResponse:
        """``POST /oauth/token``."""
        form = await request.post()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        try:
            client_id = self._authenticate(values, request)
            body = self._grant(values, client_id, state)
        except Rejected as exc:
            self.rejected[str(exc)] = self.rejected.get(str(exc), 0) + 1
            return web.json_response({"error": exc.error, "reason": str(exc)}, status=exc.status)
        if fault is not None and fault.mode == "wrong_data":
            body["access_token"] = ""
        if (certificate := peer_certificate(request)) is not None:
            self.bound[str(body["access_token"])] = certificate
        self.issued += 1
        return web.json_response(body)

    def _grant(self, form: dict[str, str], client_id: str, state: BankState) -> dict[str, object]:
        grant = form.get("grant_type")
        body: dict[str, object] = {}
        if grant == "refresh_token":
            presented = form.get("refresh_token", "")
            owner = self.refresh_tokens.get(presented)
            if owner != client_id:
                raise Rejected(400, "invalid_grant", "refresh token unknown, revoked or already rotated")
            if self.rotate_refresh_tokens:
                del self.refresh_tokens[presented]
                body["refresh_token"] = self.new_refresh_token(client_id)
        elif grant != "client_credentials":
            raise Rejected(400, "unsupported_grant_type", "grant not supported")
        token = state.issue_token(client_id, self.access_lifetime_s)
        expires_in = self.advertised_lifetime_s if self.advertised_lifetime_s is not None else self.access_lifetime_s
        body.update({"access_token": token, "token_type": "Bearer", "expires_in": int(expires_in)})
        return body

    def _authenticate(self, form: dict[str, str], request: web.Request) -> str:
        if "client_assertion" in form:
            return self._private_key_jwt(form, request)
        client = self.clients.get(form.get("client_id", ""))
        if client is None:
            raise Rejected(401, "invalid_client", "unknown client")
        if client.certificate is not None:
            if peer_certificate(request) != client.certificate.public_bytes(serialization.Encoding.DER):
                raise Rejected(401, "invalid_client", "no or another client certificate")
            return client.client_id
        if client.secret is not None and form.get("client_secret") == client.secret:
            return client.client_id
        raise Rejected(401, "invalid_client", "client authentication failed")

    def _private_key_jwt(self, form: dict[str, str], request: web.Request) -> str:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise Rejected(401, "invalid_client", "wrong client_assertion_type")
        parts = form["client_assertion"].split(".")
        try:
            header, claims = (json.loads(_b64url(p)) for p in parts[:2])
            signature = _b64url(parts[2])
        except (ValueError, IndexError, binascii.Error):
            raise Rejected(401, "invalid_client", "client_assertion is not a JWT") from None
        client = self.clients.get(str(claims.get("iss")))
        if client is None or client.public_key is None:
            raise Rejected(401, "invalid_client", "unknown client")
        if claims.get("sub") != client.client_id or form.get("client_id", client.client_id) != client.client_id:
            raise Rejected(401, "invalid_client", "sub or client_id is not the issuer")
        if claims.get("aud") != str(request.url):
            raise Rejected(401, "invalid_client", "aud is not the token endpoint")
        now = time.time()
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or exp < now or not isinstance(iat, int) or iat > now + 60:
            raise Rejected(401, "invalid_client", "assertion expired or not yet valid")
        if not _verify(client.public_key, str(header.get("alg")), signature, f"{parts[0]}.{parts[1]}".encode()):
            raise Rejected(401, "invalid_client", "client_assertion signature does not verify")
        jti = claims.get("jti")
        if not isinstance(jti, str) or jti in self.used_jti:
            raise Rejected(401, "invalid_client", "jti missing or replayed")
        self.used_jti.add(jti)
        return client.client_id


def peer_certificate(request: web.Request) -> bytes | None:
    """DER of the client certificate of the request's TLS connection, if any."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    return ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None


def binding_middleware(oauth: OAuthServer) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Refuse (401) a bound access token presented over another client certificate."""

    @web.middleware
    async def check(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Bearer ") and oauth.bound:
            expected = oauth.bound.get(authorization[7:].strip())
            if expected is not None and peer_certificate(request) != expected:
                reason = "access token is bound to another client certificate"
                oauth.rejected[reason] = oauth.rejected.get(reason, 0) + 1
                return web.json_response({"error": "invalid_token", "reason": reason}, status=401)
        return await handler(request)

    return check


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _verify(key: PublicKeyTypes, alg: str, signature: bytes, data: bytes) -> bool:
    try:
        if alg == "PS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        elif alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey) and len(signature) == 64:
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            key.verify(der, data, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True
