"""Test keys for the simulated bank's PSD2 profiles: a private key and a self-signed
certificate, written as PEM files (the key with mode 0600)."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def write_key_files(directory: Path, name: str, kind: str = "rsa") -> tuple[PrivateKey, x509.Certificate, Path, Path]:
    """A new ``kind`` key (rsa: 2048 bits, ec: P-256, ed25519) and a 30-day self-signed
    certificate for it, in ``directory/name.key`` and ``directory/name.pem``."""
    key: PrivateKey
    if kind == "rsa":
        key = rsa.generate_private_key(65537, 2048)
    elif kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, f"bank-prober test {name}"),
        x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, "PSDDE-BAFIN-999999"),
    ])
    issuer = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "Test QTSP CA"), x509.NameAttribute(NameOID.COUNTRY_NAME, "DE")]
    )
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, None if kind == "ed25519" else hashes.SHA256())
    )
    key_file, certificate_file = directory / f"{name}.key", directory / f"{name}.pem"
    key_file.touch(mode=0o600)
    key_file.chmod(0o600)
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key, certificate, key_file, certificate_file
