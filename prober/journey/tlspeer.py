"""The server certificate of a TLS connection, read from the handshake already made.

:func:`describe_peer` turns the connection's :class:`ssl.SSLObject` into a
:class:`~prober.results.ServerCertificate`: the leaf (``getpeercert(binary_form=True)``),
the chain's earliest expiry, the negotiated TLS version. It costs a few microseconds per
new connection: each distinct certificate is parsed once (:func:`prober.certfacts.facts_of_der`).

The chain. Python 3.13 added ``SSLObject.get_verified_chain()`` and
``get_unverified_chain()``. CPython 3.10 to 3.12 have the same two OpenSSL calls on the
SSL object's private ``_sslobj`` (they were added there first, and made public in 3.13);
they are used when present, and ``tests/test_tls_certificates.py`` fails if this
interpreter loses them. With verification on, the *verified* chain is what OpenSSL built
from the leaf to a trusted anchor (whatever order the server sent its intermediates in);
with ``verify = false`` nothing was verified, so the chain is what the server sent. Where
neither call exists, the chain is the leaf alone, and its earliest expiry is the leaf's.
"""

from __future__ import annotations

import ssl
from typing import Any

from prober.certfacts import CertificateFacts, facts_of_der
from prober.results import ServerCertificate

_DER = getattr(ssl, "_ssl", None)
_ENCODING_DER = getattr(_DER, "ENCODING_DER", 2)  # _ssl.ENCODING_DER: Certificate.public_bytes' argument


def describe_peer(ssl_object: Any, host: str) -> ServerCertificate | None:
    """The server certificate of a finished handshake (None when the server sent none)."""
    leaf_der = ssl_object.getpeercert(binary_form=True)
    if not leaf_der:
        return None
    leaf = facts_of_der(leaf_der)
    verified = ssl_object.context.verify_mode != ssl.CERT_NONE
    earliest = leaf
    for facts in _chain(ssl_object, verified):
        if facts.not_after < earliest.not_after:
            earliest = facts
    return ServerCertificate(
        host=host, subject=leaf.subject, issuer=leaf.issuer, not_before=leaf.not_before, not_after=leaf.not_after,
        chain_not_after=earliest.not_after, earliest_subject=earliest.subject,
        tls_version=ssl_object.version() or "", verified=verified, fingerprint=leaf.fingerprint,
    )


def _chain(ssl_object: Any, verified: bool) -> list[CertificateFacts]:
    """The chain's certificates: verified when verification is on, as sent otherwise."""
    name = "get_verified_chain" if verified else "get_unverified_chain"
    chain = getattr(ssl_object, name, None)
    if chain is not None:  # Python 3.13+: DER bytes
        return [facts_of_der(bytes(der)) for der in (chain() or ())]
    inner = getattr(ssl_object, "_sslobj", None)
    chain = getattr(inner, name, None)
    if chain is None:
        return []
    return [facts_of_der(certificate.public_bytes(_ENCODING_DER)) for certificate in (chain() or ())]
