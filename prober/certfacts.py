"""What the prober needs to know of an X.509 certificate: names and validity, nothing more.

Shared vocabulary: the journey reads the certificates a bank's server presents on a
handshake, the certificate watch reads the prober's own from files, and both describe
them the same way (:class:`CertificateFacts`). Parsing is `cryptography`'s; this module
only picks the few facts the prober reports and keeps a bounded cache by DER bytes, so a
certificate seen on every journey run (each run opens its own connection) is parsed once.

Nothing here holds or returns key material: a certificate is public, and a PEM file that
also holds a private key has only its ``CERTIFICATE`` blocks read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # parsing imports cryptography when it happens: `prober validate` without certificates never does
    from cryptography import x509

SECONDS_PER_DAY = 86_400.0

_CACHE_MAX = 1024
_cache: dict[bytes, CertificateFacts] = {}


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    """One certificate: who it names, who issued it, when it is valid (Unix seconds)."""

    subject: str
    """The subject as RFC 4514 text (``CN=api.bank.example,O=Bank``)."""
    issuer: str
    not_before: int
    not_after: int
    fingerprint: str
    """SHA-256 of the DER encoding, hex: tells a renewed certificate from the old one."""

    def days_left(self, now: float) -> float:
        """Days from ``now`` (Unix seconds) to the end of its validity (negative: expired)."""
        return (self.not_after - now) / SECONDS_PER_DAY


def facts_of(certificate: x509.Certificate) -> CertificateFacts:
    """The facts of a parsed certificate."""
    from cryptography.hazmat.primitives import hashes

    return CertificateFacts(
        subject=_name(certificate.subject),
        issuer=_name(certificate.issuer),
        not_before=int(certificate.not_valid_before_utc.timestamp()),
        not_after=int(certificate.not_valid_after_utc.timestamp()),
        fingerprint=certificate.fingerprint(hashes.SHA256()).hex(),
    )


def facts_of_der(der: bytes) -> CertificateFacts:
    """The facts of a DER-encoded certificate, parsed once per distinct certificate
    (raises ``ValueError`` when ``der`` is not a certificate)."""
    found = _cache.get(der)
    if found is None:
        from cryptography import x509

        found = facts_of(x509.load_der_x509_certificate(der))
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[der] = found
    return found


def _name(name: x509.Name) -> str:
    try:
        return name.rfc4514_string()
    except ValueError:  # an attribute cryptography cannot render: still say something
        return ", ".join(str(attribute.value) for attribute in name)
