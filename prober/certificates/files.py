"""A certificate file read for its facts: the certificate, and the earliest expiry in the file.

A client certificate file often holds its chain too (the leaf first, then the CAs that
issued it), and sometimes the private key as well (one PEM for ``load_cert_chain``). Only
the ``CERTIFICATE`` blocks are read; the key is never parsed, kept or quoted. An error
names the file and what is wrong with it, never a byte of its content.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from prober.certfacts import CertificateFacts, facts_of

Stamp = tuple[int, int, int]
"""A file's modification time (ns), size and inode: a changed stamp is a changed file
(an atomic rename included)."""


class CertificateFileError(Exception):
    """A certificate file that cannot be read or holds no certificate; the message names
    the file and the reason, never its content."""


@dataclass(frozen=True, slots=True)
class CertificateFile:
    """What a certificate file says: its first certificate (the one presented as the
    prober's own) and the one of the file that expires first (itself, usually)."""

    path: str
    leaf: CertificateFacts
    earliest: CertificateFacts
    stamp: Stamp


def file_stamp(path: str) -> Stamp:
    """The file's :data:`Stamp`; raises :class:`CertificateFileError` when it cannot be looked at."""
    try:
        status = os.stat(path)
    except OSError as exc:
        raise CertificateFileError(f"cannot read certificate file {path}: {_reason(exc)}") from None
    return (status.st_mtime_ns, status.st_size, status.st_ino)


def read_certificate_file(path: str) -> CertificateFile:
    """The facts of the certificates in ``path`` (PEM, possibly with its chain and key, or DER)."""
    from cryptography import x509  # only when there is a certificate to read: `prober validate` starts faster

    stamp = file_stamp(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CertificateFileError(f"cannot read certificate file {path}: {_reason(exc)}") from None
    try:
        if b"-----BEGIN" in data:
            certificates = x509.load_pem_x509_certificates(data)
        else:
            certificates = [x509.load_der_x509_certificate(data)]
    except ValueError:
        # cryptography's message may quote the input: ours names the file only.
        raise CertificateFileError(f"cannot load certificate file {path}: not a PEM or DER certificate") from None
    facts = [facts_of(certificate) for certificate in certificates]
    return CertificateFile(path=path, leaf=facts[0], earliest=min(facts, key=lambda f: f.not_after), stamp=stamp)


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()
