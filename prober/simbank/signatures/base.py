"""What every signature check of the simulated bank shares: the profile it enforces, the
refusal, and the ``Date`` and ``Digest`` checks of the draft-cavage family."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes


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


Verifier = Callable[[SignatureProfile, web.Request, bytes], None]
"""Raises :class:`Refused` unless the request (its received body given) is signed right."""


def check_date(value: str | None, max_skew_s: float) -> None:
    """The ``Date`` header is present, well-formed, and within ``max_skew_s`` of our clock."""
    if not value:
        raise Refused("missing Date header")
    try:
        sent = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        raise Refused("malformed Date header") from None
    if abs(time.time() - sent) > max_skew_s:
        raise Refused("Date too far from the bank's clock")


def check_digest(header: str | None, body: bytes) -> None:
    """``Digest: <algorithm>=<base64>`` (RFC 3230) matches the body received."""
    if not header:
        raise Refused("missing Digest header")
    algorithm, _, value = header.partition("=")
    hashers = {"SHA-256": hashlib.sha256, "SHA-512": hashlib.sha512}
    if algorithm.upper() not in hashers:
        raise Refused(f"unsupported Digest algorithm {algorithm[:20]!r}")
    if base64.b64encode(hashers[algorithm.upper()](body).digest()).decode() != value:
        raise Refused("Digest does not match the body")
