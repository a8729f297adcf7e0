"""HTTP signatures as Berlin Group NextGenPSD2 and STET PSD2 profile them.

Both standards build on draft-cavage-http-signatures-12: a ``Digest`` header with the
SHA-256 of the body, and a ``Signature`` header over a signing string made of the named
headers, one ``name: value`` line each, with the pseudo-header ``(request-target)``
standing for ``<method> <path?query>``. What the profiles add:

- Berlin Group: ``Digest`` on every signed request (an empty body too);
  ``TPP-Signature-Certificate`` carries the QSealC (base64 DER); ``keyId`` is
  ``SN=<certificate serial, hex>,CA=<issuer DN>``; the signature covers ``digest``,
  ``x-request-id``, ``date`` and, when present, ``psu-id``, ``psu-corporate-id``,
  ``tpp-redirect-uri``.
- STET: ``keyId`` is the URL where the bank fetches the QSealC; ``(request-target)``,
  ``date``, ``x-request-id`` and, with a body, ``digest`` are signed.

No maintained Python library implements this draft (the ones on PyPI are unmaintained
or implement RFC 9421 instead), so the signing string and header are built here; the
cryptography itself (RSA PKCS#1 v1.5 / ECDSA with SHA-256) is ``cryptography``'s. ECDSA
signatures are DER-encoded, as Java's ``SHA256withECDSA`` (what bank gateways verify
with) produces and expects.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from prober.journey.errors import ReportableError
from prober.journey.signing.base import Outgoing
from prober.journey.signing.keys import KeySource, SigningKey

REQUEST_TARGET = "(request-target)"
BG_CONDITIONAL = ("psu-id", "psu-corporate-id", "tpp-redirect-uri")


def http_date(epoch: float | None = None) -> str:
    """``Date`` header value (RFC 7231 IMF-fixdate)."""
    return email.utils.formatdate(epoch, usegmt=True)


def digest(body: bytes) -> str:
    """``Digest`` header value: ``SHA-256=<base64>``."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def signing_string(names: Iterable[str], method: str, target: str, headers: Mapping[str, str]) -> str:
    """The text signed: one ``name: value`` line per covered header, in order.

    ``target`` is the path and query exactly as sent. Raises ``KeyError`` naming a
    covered header the request does not carry.
    """
    lines = []
    for name in names:
        if name == REQUEST_TARGET:
            lines.append(f"{REQUEST_TARGET}: {method.lower()} {target}")
        else:
            lines.append(f"{name}: {headers[name].strip()}")
    return "\n".join(lines)


def algorithm_of(key: SigningKey | PublicKeyTypes) -> str:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "rsa-sha256"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ecdsa-sha256"
    raise ReportableError(f"signing: {type(key).__name__} keys are not allowed by this profile (use RSA or EC)")


def sign_bytes(key: SigningKey, data: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    raise ReportableError(f"signing: {type(key).__name__} keys are not allowed by this profile (use RSA or EC)")


def verify_bytes(public_key: PublicKeyTypes, signature: bytes, data: bytes) -> bool:
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


_PARAM = re.compile(r'\s*([a-zA-Z]+)="([^"]*)"\s*(?:,|$)')


def parse_signature(value: str) -> dict[str, str]:
    """The parameters of a ``Signature`` header; raises ``ValueError`` when malformed."""
    params: dict[str, str] = {}
    pos = 0
    while pos < len(value):
        match = _PARAM.match(value, pos)
        if match is None:
            raise ValueError("malformed Signature header")
        params[match.group(1)] = match.group(2)
        pos = match.end()
    return params


def berlin_group_key_id(certificate: x509.Certificate) -> str:
    """``SN=<serial, hex>,CA=<issuer DN>`` as NextGenPSD2 names a QSealC."""
    return f"SN={certificate.serial_number:X},CA={certificate.issuer.rfc4514_string()}"


def certificate_header(certificate: x509.Certificate) -> str:
    """``TPP-Signature-Certificate``: the certificate, base64 DER on one line."""
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


@dataclass(slots=True)
class CavageSigner:
    """Signs requests with ``Digest`` and ``Signature`` headers (Berlin Group or STET)."""

    profile: str
    keys: KeySource
    key_id: str | None
    covered: tuple[str, ...] | None

    def covered_for(self, request: Outgoing) -> tuple[str, ...]:
        if self.covered is not None:
            return self.covered
        if self.profile == "berlin-group":
            extra = tuple(h for h in BG_CONDITIONAL if h in request.headers)
            return (REQUEST_TARGET, "date", "digest", "x-request-id", *extra)
        with_body = ("digest",) if request.body else ()
        return (REQUEST_TARGET, "date", *with_body, "x-request-id")

    def sign(self, request: Outgoing) -> None:
        material = self.keys.get()
        headers = request.headers
        if "Date" not in headers:
            headers["Date"] = http_date()
        if self.profile == "berlin-group" or request.body:
            headers["Digest"] = digest(request.body)
        key_id = self.key_id
        if self.profile == "berlin-group":
            assert material.certificate is not None  # the config requires it
            headers["TPP-Signature-Certificate"] = certificate_header(material.certificate)
            key_id = key_id or berlin_group_key_id(material.certificate)
        names = self.covered_for(request)
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            text = signing_string(names, request.method, request.target, lowered)
        except KeyError as exc:
            raise ReportableError(
                f"signing: the request has no {exc.args[0]} header, which the signature covers"
            ) from None
        signature = base64.b64encode(sign_bytes(material.key, text.encode())).decode()
        headers["Signature"] = (
            f'keyId="{key_id}",algorithm="{algorithm_of(material.key)}",'
            f'headers="{" ".join(names)}",signature="{signature}"'
        )
