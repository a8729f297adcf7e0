"""Berlin Group and STET request signatures (draft-cavage-http-signatures-12), as the
simulated bank checks them.

Written from the texts, not from the prober's signer, so that a mistake in one is not
hidden by the same mistake in the other: the ``Signature`` header is parsed, and the
signing string rebuilt from the request as received, here (draft-cavage-12 §2.1, §2.3);
the Berlin Group ``keyId`` is compared with the certificate by its parts (serial number
and issuer), not as one string built the way the prober builds it.

- Berlin Group NextGenPSD2 (Implementation Guidelines §12): ``Digest`` on every request,
  the QSealC in ``TPP-Signature-Certificate``, ``keyId="SN=<serial, hex>,CA=<issuer DN>"``;
  the signature covers ``digest``, ``x-request-id``, ``date`` and, when sent,
  ``psu-id``, ``psu-corporate-id`` and ``tpp-redirect-uri``.
- STET PSD2 (§3.5): ``keyId`` names a key the bank knows; the signature covers
  ``(request-target)``, ``date``, ``x-request-id`` and, with a body, ``digest``.
"""

from __future__ import annotations

import base64
import re

from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from prober.simbank.signatures.base import Refused, SignatureProfile, check_date, check_digest

BERLIN_GROUP_WHEN_SENT = ("psu-id", "psu-corporate-id", "tpp-redirect-uri")
"""Headers the Berlin Group signature must cover when the request carries them."""
ALGORITHMS = ("rsa-sha256", "ecdsa-sha256", "hs2019")
"""``hs2019``: the algorithm follows from the key (RSA PKCS#1 v1.5 or ECDSA, SHA-256)."""

_PARAMETER = re.compile(r'\s*([A-Za-z]+)\s*=\s*"([^"]*)"\s*(,|$)')


def parameters(header: str) -> dict[str, str]:
    """The ``name="value"`` pairs of a ``Signature`` header (draft-cavage-12 §2.1)."""
    found: dict[str, str] = {}
    position = 0
    while position < len(header):
        match = _PARAMETER.match(header, position)
        if match is None or match.group(1) in found:
            raise Refused("malformed Signature header")
        found[match.group(1)] = match.group(2)
        position = match.end()
        if not match.group(3) and position < len(header):
            raise Refused("malformed Signature header")
    return found


def signing_string(request: web.Request, covered: list[str]) -> bytes:
    """The string the client signed, rebuilt from the request as received (§2.3): one
    ``name: value`` line per covered header, in the order listed, the values of a
    repeated header joined by ``, ``; ``(request-target)`` is the lowercased method, a
    space, and the path with its query as sent."""
    lines = []
    for name in covered:
        if name == "(request-target)":
            lines.append(f"(request-target): {request.method.lower()} {request.raw_path}")
            continue
        values = request.headers.getall(name, None)
        if values is None:
            raise Refused(f"covered header {name} is missing")
        lines.append(f"{name}: {', '.join(value.strip() for value in values)}")
    return "\n".join(lines).encode()


def signature_valid(public_key: PublicKeyTypes, signature: bytes, data: bytes) -> bool:
    """RSA PKCS#1 v1.5 or ECDSA (DER), both with SHA-256."""
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _dn_parts(text: str) -> list[str]:
    """``CN=A,O=B, C=DE`` → ``["CN=A", "O=B", "C=DE"]`` (escaped commas kept)."""
    return [part.strip() for part in re.split(r"(?<!\\),", text) if part.strip()]


def names_certificate(key_id: str, certificate: x509.Certificate) -> bool:
    """Whether ``SN=<hex serial>,CA=<issuer DN>`` names ``certificate``: the serial as a
    number (any case, leading zeros allowed), the issuer attribute by attribute, in the
    order of RFC 4514 or the reverse (both are seen in the wild)."""
    match = re.fullmatch(r"SN=([0-9A-Fa-f]+),CA=(.+)", key_id.strip())
    if match is None or int(match.group(1), 16) != certificate.serial_number:
        return False
    issuer = [f"{attribute.rfc4514_attribute_name}={attribute.value!s}"
              for rdn in reversed(certificate.issuer.rdns) for attribute in rdn]
    named = [part.replace("\\,", ",") for part in _dn_parts(match.group(2))]
    return named in (issuer, issuer[::-1])


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
    if not names_certificate(key_id, certificate):
        raise Refused("keyId does not name TPP-Signature-Certificate")
    return certificate.public_key()


def verify_cavage(profile: SignatureProfile, request: web.Request, body: bytes) -> None:
    """Berlin Group / STET: raise :class:`Refused` unless Digest and Signature verify."""
    header = request.headers.get("Signature")
    if not header:
        raise Refused("missing Signature header")
    params = parameters(header)
    for name in ("keyId", "algorithm", "headers", "signature"):
        if name not in params:
            raise Refused(f"Signature has no {name}")
    covered = params["headers"].lower().split()
    required = ["date", "x-request-id"]
    if profile.profile == "berlin-group":
        required += ["digest", *(h for h in BERLIN_GROUP_WHEN_SENT if h in request.headers)]
        public_key = _berlin_group_key(profile, request, params["keyId"])
    else:
        required += ["(request-target)"] + (["digest"] if body else [])
        found = profile.keys.get(params["keyId"])
        if found is None:
            raise Refused("unknown keyId")
        public_key = found
    missing = [h for h in required if h not in covered]
    if missing:
        raise Refused(f"Signature does not cover {', '.join(missing)}")
    if "digest" in covered or body:
        check_digest(request.headers.get("Digest"), body)
    check_date(request.headers.get("Date"), profile.max_skew_s)
    if params["algorithm"] not in ALGORITHMS:
        raise Refused("unsupported algorithm")
    try:
        signature = base64.b64decode(params["signature"], validate=True)
    except ValueError:
        raise Refused("signature is not base64") from None
    if not signature_valid(public_key, signature, signing_string(request, covered)):
        raise Refused("signature does not verify")
