"""UK Open Banking request signatures, as the simulated bank checks them.

Written from the profile's text with ``cryptography`` alone (not with the library the
prober signs with), so that a mistake in the prober's signer is not hidden by the same
mistake here.
"""

from __future__ import annotations

import base64
import binascii
import json
import time

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from prober.simbank.signatures.base import Refused, SignatureProfile

OB = "http://openbanking.org.uk/"
REQUIRED_CRIT = {"b64", OB + "iat", OB + "iss", OB + "tan"}
UNSIGNED_APIS = ("/aisp/", "/cbpii/")
"""Parts of the Read/Write API (under ``/open-banking/``) whose OpenAPI documents declare no
``x-jws-signature``: Account Information and Confirmation of Funds. The Payment Initiation
and VRP APIs (``/pisp/``) declare it on every request with a body."""


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _unsigned_api(path: str) -> bool:
    return path.startswith("/open-banking/") and any(part in path for part in UNSIGNED_APIS)


def verify_detached_jws(profile: SignatureProfile, request: web.Request, body: bytes) -> None:
    """Raise :class:`Refused` unless a request with a body carries a valid detached JWS
    (except in the :data:`UNSIGNED_APIS`, where the standard defines none)."""
    if not body or _unsigned_api(request.path):
        return
    value = request.headers.get("x-jws-signature")
    if not value:
        raise Refused("missing x-jws-signature header")
    protected, header, signature = _detached_parts(value)
    key = _header_key(profile, header)
    signing_input = protected.encode() + b"." + body
    try:
        key.verify(signature, signing_input, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    except InvalidSignature:
        raise Refused("JWS signature does not verify") from None


def _detached_parts(value: str) -> tuple[str, dict, bytes]:
    """The protected header as sent, decoded, and the signature of a detached JWS."""
    parts = value.split(".")
    if len(parts) != 3 or parts[1]:
        raise Refused("x-jws-signature is not a detached JWS")
    try:
        header = json.loads(_b64url(parts[0]))
        signature = _b64url(parts[2])
    except (ValueError, binascii.Error):
        raise Refused("x-jws-signature is not base64url") from None
    if not isinstance(header, dict):
        raise Refused("JWS header is not an object")
    return parts[0], header, signature


def _header_key(profile: SignatureProfile, header: dict) -> rsa.RSAPublicKey:
    """The registered key the JWS header names, once its claims are as Open Banking
    requires them."""
    if header.get("alg") != "PS256":
        raise Refused("JWS alg must be PS256")
    if header.get("b64") is not False or not REQUIRED_CRIT <= set(header.get("crit") or ()):
        raise Refused("JWS header must have b64 false and crit b64, iat, iss, tan")
    key = profile.keys.get(str(header.get("kid")))
    if not isinstance(key, rsa.RSAPublicKey):
        raise Refused("unknown kid")
    iat = header.get(OB + "iat")
    if not isinstance(iat, int) or iat > time.time() + 60 or iat < time.time() - profile.max_skew_s:
        raise Refused("JWS iat missing or out of range")
    if profile.issuer is not None and header.get(OB + "iss") != profile.issuer:
        raise Refused("JWS iss is not the registered issuer")
    if header.get(OB + "tan") != profile.trust_anchor:
        raise Refused("JWS tan is not the trust anchor")
    return key
