"""RFC 9421 request signatures, as the simulated bank checks them (with the
``http-message-signatures`` verifier): the signature must cover the method, authority,
target URI and, with a body, a matching Content-Digest, and be at most ``max_skew_s`` old."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageVerifier,
    MappingKeyResolver,
    algorithms,
)

from prober.simbank.signatures.base import Refused, SignatureProfile

ALGORITHMS: dict[str, type[algorithms.HTTPSignatureAlgorithm]] = {
    "rsa-pss-sha512": algorithms.RSA_PSS_SHA512,
    "rsa-v1_5-sha256": algorithms.RSA_V1_5_SHA256,
    "ecdsa-p256-sha256": algorithms.ECDSA_P256_SHA256,
    "ecdsa-p384-sha384": algorithms.ECDSA_P384_SHA384,
    "ed25519": algorithms.ED25519,
}
"""The algorithms of RFC 9421 §3.3 (the HTTP Signature Algorithms registry) the bank accepts."""
REQUIRED_COMPONENTS = ("@method", "@authority", "@target-uri")
"""What the bank wants covered on every request (plus ``content-digest`` with a body):
the request cannot be replayed against another method, host or resource."""


@dataclass(slots=True)
class _Message:
    method: str
    url: str
    headers: Any


def verify_message_signature(profile: SignatureProfile, request: web.Request, body: bytes) -> None:
    """Raise :class:`Refused` unless the request carries a valid RFC 9421 signature."""
    if "Signature-Input" not in request.headers or "Signature" not in request.headers:
        raise Refused("missing Signature-Input or Signature header")
    algorithm = ALGORITHMS[profile.algorithm or "rsa-pss-sha512"]
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithm,
        # the keys of this profile are RSA, EC or Ed25519 (setup makes no other); typed as any public key
        key_resolver=MappingKeyResolver(public_keys=profile.keys, private_keys={}),  # type: ignore[arg-type]
    )
    required = REQUIRED_COMPONENTS + (("content-digest",) if body else ())
    try:
        verifier.verify(
            _Message(request.method, str(request.url), request.headers),
            max_age=datetime.timedelta(seconds=profile.max_skew_s),
            require_components=required,
            body=body or None,
        )
    except HTTPMessageSignaturesException as exc:
        raise Refused(f"RFC 9421: {str(exc)[:120]}") from None
