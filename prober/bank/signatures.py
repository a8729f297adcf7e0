"""Signature checks of the simulated bank, one per PSD2 profile.

With a :class:`SignatureProfile` the bank refuses every business request whose
signature does not verify: 401 with ``{"error": "invalid_signature", "reason": ...}``
(the prober classifies 401 as ``auth``). The token endpoint, the admin routes and
``/healthz`` are not signed, as in the standards (the OAuth server is not the XS2A API).

The keys the bank trusts are given at construction: tests generate them at test time.
The checks are written from the standards' text, independently of the prober's signers
where it matters (the digest is recomputed, the signing string rebuilt from the received
request), so a bug on one side shows up as a refused request.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from prober.journey.signing import cavage

UNSIGNED_PATHS = ("/oauth/token", "/healthz", "/admin/")


@dataclass(slots=True)
class SignatureProfile:
    """What the bank requires: ``profile`` (as in :mod:`prober.config.signing`), the
    keys it trusts by keyId/kid, and (Berlin Group) the certificates it trusts."""

    profile: str
    keys: dict[str, PublicKeyTypes] = field(default_factory=dict)
    certificates: list[x509.Certificate] = field(default_factory=list)
    issuer: str | None = None
    trust_anchor: str = "openbanking.org.uk"
    algorithm: str | None = None
    """RFC 9421: the algorithm keys sign with (rsa-pss-sha512 unless set)."""
    max_skew_s: float = 300.0
    exempt: tuple[str, ...] = ()
    """Path prefixes served unsigned besides the token endpoint (e.g. a card issuer's
    own API sharing the simulated host)."""
    verified: int = 0
    refused: dict[str, int] = field(default_factory=dict)

    def trusts(self, certificate: x509.Certificate) -> bool:
        der = certificate.public_bytes(serialization.Encoding.DER)
        return any(c.public_bytes(serialization.Encoding.DER) == der for c in self.certificates)


class Refused(Exception):
    """A request whose signature the bank does not accept; the message is the reason."""


def _date_ok(value: str | None, max_skew_s: float) -> None:
    if not value:
        raise Refused("missing Date header")
    try:
        sent = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        raise Refused("malformed Date header") from None
    if abs(time.time() - sent) > max_skew_s:
        raise Refused("Date too far from the bank's clock")


def _digest_ok(header: str | None, body: bytes) -> None:
    if not header:
        raise Refused("missing Digest header")
    algorithm, _, value = header.partition("=")
    hashers = {"SHA-256": hashlib.sha256, "SHA-512": hashlib.sha512}
    if algorithm.upper() not in hashers:
        raise Refused(f"unsupported Digest algorithm {algorithm[:20]!r}")
    if base64.b64encode(hashers[algorithm.upper()](body).digest()).decode() != value:
        raise Refused("Digest does not match the body")


def verify_cavage(profile: SignatureProfile, request: web.Request, body: bytes) -> None:
    """Berlin Group / STET: raise :class:`Refused` unless Digest and Signature verify."""
    header = request.headers.get("Signature")
    if not header:
        raise Refused("missing Signature header")
    try:
        params = cavage.parse_signature(header)
    except ValueError as exc:
        raise Refused(str(exc)) from None
    for name in ("keyId", "algorithm", "headers", "signature"):
        if name not in params:
            raise Refused(f"Signature has no {name}")
    covered = params["headers"].lower().split()
    required = ["date", "x-request-id"]
    if profile.profile == "berlin-group":
        required += ["digest", *(h for h in cavage.BG_CONDITIONAL if h in request.headers)]
        public_key = _berlin_group_key(profile, request, params["keyId"])
    else:
        required += ["(request-target)"] + (["digest"] if body else [])
        public_key = profile.keys.get(params["keyId"])
        if public_key is None:
            raise Refused("unknown keyId")
    missing = [h for h in required if h not in covered]
    if missing:
        raise Refused(f"Signature does not cover {', '.join(missing)}")
    if "digest" in covered or body:
        _digest_ok(request.headers.get("Digest"), body)
    _date_ok(request.headers.get("Date"), profile.max_skew_s)
    if params["algorithm"] not in ("rsa-sha256", "ecdsa-sha256", "hs2019"):
        raise Refused("unsupported algorithm")
    lowered = {k.lower(): v for k, v in request.headers.items()}
    try:
        text = cavage.signing_string(covered, request.method, request.raw_path, lowered)
        signature = base64.b64decode(params["signature"], validate=True)
    except KeyError as exc:
        raise Refused(f"covered header {exc.args[0]} is missing") from None
    except ValueError:
        raise Refused("signature is not base64") from None
    if not cavage.verify_bytes(public_key, signature, text.encode()):
        raise Refused("signature does not verify")


def _berlin_group_key(profile: SignatureProfile, request: web.Request, key_id: str) -> PublicKeyTypes:
    encoded = request.headers.get("TPP-Signature-Certificate")
    if not encoded:
        raise Refused("missing TPP-Signature-Certificate header")
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(encoded, validate=True))
    except ValueError:
        raise Refused("TPP-Signature-Certificate is not a base64 DER certificate") from None
    if not profile.trusts(certificate):
        raise Refused("TPP-Signature-Certificate is not a registered QSealC")
    if key_id != cavage.berlin_group_key_id(certificate):
        raise Refused("keyId does not name TPP-Signature-Certificate")
    return certificate.public_key()


Verifier = Callable[[SignatureProfile, web.Request, bytes], None]


def _verifier(profile: str) -> Verifier:
    if profile in ("berlin-group", "stet"):
        return verify_cavage
    if profile == "uk-open-banking":
        from prober.bank.signatures_jws import verify_detached_jws

        return verify_detached_jws
    from prober.bank.signatures_rfc9421 import verify_message_signature

    return verify_message_signature


def signature_middleware(profile: SignatureProfile) -> Callable[..., Awaitable[web.StreamResponse]]:
    """An aiohttp server middleware refusing business requests that are not signed right."""
    verify = _verifier(profile.profile)

    @web.middleware
    async def check(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.path.startswith(UNSIGNED_PATHS) or (profile.exempt and request.path.startswith(profile.exempt)):
            return await handler(request)
        body = await request.read()
        try:
            verify(profile, request, body)
        except Refused as exc:
            reason = str(exc)
            profile.refused[reason] = profile.refused.get(reason, 0) + 1
            return web.json_response({"error": "invalid_signature", "reason": reason}, status=401)
        profile.verified += 1
        return await handler(request)

    return check
