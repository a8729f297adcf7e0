"""Certificates with chosen dates for the tests of certificate expiry (made with `cryptography`).

``trustme`` issues leaves with chosen dates but not intermediates; these tests need an
intermediate that expires before its leaf, chains sent in the wrong order, certificates
not valid yet, and client certificates renewed on disk. Every key is a P-256 EC key
(fast to make).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = dt.datetime.now(dt.UTC)


def days(n: float) -> dt.datetime:
    """``n`` days from the start of the test session (negative: in the past)."""
    return NOW + dt.timedelta(days=n)


@dataclass
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    @property
    def not_after(self) -> int:
        return int(self.cert.not_valid_after_utc.timestamp())

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()

    def issue(self, common_name: str, *, not_before: dt.datetime | None = None, not_after: dt.datetime | None = None,
              ca: bool = False, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
              client: bool = False) -> Issued:
        """A certificate signed by this one: a CA (``ca``), a server (for ``hosts``) or a client."""
        return _make(common_name, self, not_before or days(-1), not_after or days(365), ca=ca, hosts=hosts,
                     client=client)


def root(common_name: str = "Test Root CA", *, not_after: dt.datetime | None = None) -> Issued:
    """A self-signed CA."""
    return _make(common_name, None, days(-400), not_after or days(3650), ca=True, hosts=())


def self_signed(common_name: str = "self-signed.bank.test", *, not_after: dt.datetime | None = None) -> Issued:
    """A self-signed server certificate (no CA), for ``verify = false`` sites."""
    return _make(common_name, None, days(-1), not_after or days(45), ca=False, hosts=("127.0.0.1", "localhost"))


def _make(common_name: str, issuer: Issued | None, not_before: dt.datetime, not_after: dt.datetime, *, ca: bool,
          hosts: tuple[str, ...], client: bool = False) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bank-prober tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.cert.subject if issuer else name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False), critical=True)
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if not ca:
        usage = x509.ExtendedKeyUsageOID.CLIENT_AUTH if client else x509.ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    signer = issuer.key if issuer else key
    return Issued(builder.sign(signer, hashes.SHA256()), key)


def server_context(tmp: Path, leaf: Issued, *chain: Issued, name: str = "server") -> ssl.SSLContext:
    """A server context presenting ``leaf`` then ``chain``, in the order given."""
    cert_file, key_file = tmp / f"{name}-chain.pem", tmp / f"{name}-key.pem"
    cert_file.write_bytes(leaf.cert_pem + b"".join(c.cert_pem for c in chain))
    key_file.write_bytes(leaf.key_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def write(path: Path, *pems: bytes) -> Path:
    path.write_bytes(b"".join(pems))
    return path
