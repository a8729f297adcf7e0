"""Private keys and certificates for signing, read from files.

Keys are loaded once when the configuration is compiled (so ``prober validate`` names
a missing, unreadable or mismatched file) and read again at run time only when the file
changed on disk (a rotated key is picked up without a restart). A key that cannot be
read at run time raises :class:`~prober.journey.errors.KeyFileError`, which the
runner reports as an ``error`` outcome naming the file, never the key.

Imported only where a key file is configured (``build_signer``, a ``private_key_jwt``
token step): a configuration without one is loaded without the crypto library.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from prober.journey.errors import KeyFileError

__all__ = ["KeyFileError", "KeyMaterial", "KeySource", "SigningKey", "load_material"]

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(slots=True, frozen=True)
class KeyMaterial:
    """A private key and, when configured, its certificate."""

    key: SigningKey
    certificate: x509.Certificate | None


def _read(path: str, field: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(field, f"cannot read {what} {path}: {(exc.strerror or str(exc)).lower()}") from None


def load_private_key(path: str, password_file: str | None = None) -> SigningKey:
    """The private key in ``path`` (PEM or DER), decrypted with the passphrase in
    ``password_file`` when given."""
    data = _read(path, "key_file", "key file")
    password = None
    if password_file is not None:
        password = _read(password_file, "key_password_file", "passphrase file").rstrip(b"\r\n")
    key: PrivateKeyTypes
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=password)
        else:
            key = serialization.load_der_private_key(data, password=password)
    except TypeError:
        raise KeyFileError("key_password_file", f"key file {path} is encrypted: set `key_password_file`") from None
    except ValueError:
        # cryptography's message may quote parts of the input: give our own.
        why = "wrong passphrase or not a private key" if password else "not a PEM or DER private key"
        raise KeyFileError("key_file", f"cannot load key file {path}: {why}") from None
    if not isinstance(key, SigningKey):
        raise KeyFileError(
            "key_file", f"key file {path}: {type(key).__name__} keys cannot sign here (use RSA, EC or Ed25519)"
        )
    return key


def load_certificate(path: str) -> x509.Certificate:
    """The first certificate in ``path`` (PEM or DER)."""
    data = _read(path, "certificate_file", "certificate file")
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)[0]
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise KeyFileError(
            "certificate_file", f"cannot load certificate file {path}: not a PEM or DER certificate"
        ) from None


def same_public_key(key: SigningKey, certificate: x509.Certificate) -> bool:
    """True when ``certificate`` certifies the public half of ``key``."""
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    ours = key.public_key().public_bytes(serialization.Encoding.DER, fmt)
    theirs = certificate.public_key().public_bytes(serialization.Encoding.DER, fmt)
    return ours == theirs


def load_material(key_file: str, certificate_file: str | None, password_file: str | None = None) -> KeyMaterial:
    """Key and certificate, checked to belong together."""
    key = load_private_key(key_file, password_file)
    certificate = None
    if certificate_file is not None:
        certificate = load_certificate(certificate_file)
        if not same_public_key(key, certificate):
            raise KeyFileError(
                "certificate_file", f"certificate {certificate_file} does not match the private key in {key_file}"
            )
    return KeyMaterial(key, certificate)


class KeySource:
    """Key material that follows its files: re-read when a file's mtime or size changes."""

    __slots__ = ("key_file", "certificate_file", "password_file", "_stamp", "_material")

    def __init__(self, key_file: str, certificate_file: str | None = None, password_file: str | None = None) -> None:
        self.key_file = key_file
        self.certificate_file = certificate_file
        self.password_file = password_file
        self._stamp: tuple[tuple[int, int], ...] | None = None
        self._material: KeyMaterial | None = None
        self.get()  # fail now (at compile) rather than on the first run

    def _stamp_now(self) -> tuple[tuple[int, int], ...]:
        stamp = []
        for field, what, path in (("key_file", "key file", self.key_file),
                                  ("certificate_file", "certificate file", self.certificate_file),
                                  ("key_password_file", "passphrase file", self.password_file)):
            if path is None:
                continue
            try:
                status = os.stat(path)
            except OSError as exc:
                raise KeyFileError(field, f"cannot read {what} {path}: {(exc.strerror or str(exc)).lower()}") from None
            stamp.append((status.st_mtime_ns, status.st_size))
        return tuple(stamp)

    def get(self) -> KeyMaterial:
        """The current key material; raises :class:`KeyFileError` when it cannot be read."""
        stamp = self._stamp_now()
        if stamp != self._stamp or self._material is None:
            self._material = load_material(self.key_file, self.certificate_file, self.password_file)
            self._stamp = stamp
        return self._material
