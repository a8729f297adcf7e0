"""RFC 9421 request signatures, as the simulated bank checks them (with the
``http-message-signatures`` verifier): the signature must cover the method, authority,
target URI and, with a body, a matching Content-Digest, and be at most ``max_skew_s`` old."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from http_message_signatures import HTTPMessageSignaturesException, HTTPMessageVerifier, MappingKeyResolver

from prober.journey.signing.rfc9421 import ALGORITHMS, DEFAULT_COMPONENTS

from .signatures import Refused, SignatureProfile


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
        key_resolver=MappingKeyResolver(public_keys=profile.keys, private_keys={}),  # type: ignore[arg-type]
    )
    required = DEFAULT_COMPONENTS + (("content-digest",) if body else ())
    try:
        verifier.verify(
            _Message(request.method, str(request.url), request.headers),
            max_age=datetime.timedelta(seconds=profile.max_skew_s),
            require_components=required,
            body=body or None,
        )
    except HTTPMessageSignaturesException as exc:
        raise Refused(f"RFC 9421: {str(exc)[:120]}") from None
