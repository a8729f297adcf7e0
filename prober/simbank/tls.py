"""HTTPS for the simulated bank, with a certificate that expires when it is told to.

``prober bank --tls-cert-days N`` (and ``prober demo --tls-cert-days N``) serve the bank
over HTTPS with a certificate expiring in ``N`` days (a fraction is fine; negative: it
expired ``-N`` days ago), so the prober's certificate warnings can be seen without
waiting weeks. The certificate is issued by a test CA made on the spot (never a real one)
for ``127.0.0.1``, ``::1`` and ``localhost``; the CA's certificate is written to a file
the prober trusts with ``[sites.tls] ca_file``.

Made with ``cryptography``: the bank shares no code with the prober.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOSTS = ("127.0.0.1", "::1", "localhost")
VALIDITY_DAYS = 90
"""How long the expired certificate of a negative ``N`` was valid, before it expired."""


@dataclass(frozen=True, slots=True)
class BankCertificate:
    """A test CA and the bank's certificate, as PEM."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    not_after: dt.datetime
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None
    """The CA and its key, to renew the bank's certificate (:meth:`renewed`)."""

    def renewed(self, days: float) -> BankCertificate:
        """A new certificate for the bank, from the same CA, expiring in ``days`` days."""
        return bank_certificate(days, ca=self.ca)

    def server_context(self, directory: Path) -> ssl.SSLContext:
        """A server context serving the certificate (its files written into ``directory``)."""
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = directory / "bank-cert.pem", directory / "bank-key.pem"
        cert.write_bytes(self.cert_pem)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(self.key_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        return context

    def write_ca(self, directory: Path) -> Path:
        """The CA's certificate in ``directory``/``bank-ca.pem`` (for ``[sites.tls] ca_file``)."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "bank-ca.pem"
        path.write_bytes(self.ca_pem)
        return path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Simulated Bank (test)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _new_ca(now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Simulated Bank Test CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(days=3650))
          .not_valid_after(now + dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    return ca, ca_key


def bank_certificate(days: float, now: dt.datetime | None = None, *,
                     ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None) -> BankCertificate:
    """A bank certificate expiring ``days`` days from ``now``, from ``ca`` (a new test CA,
    valid for years, when not given)."""
    now = now or dt.datetime.now(dt.UTC)
    ca = ca or _new_ca(now)
    ca_cert, ca_key = ca
    ca_name = ca_cert.subject
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = now + dt.timedelta(days=days)
    names: list[x509.GeneralName] = []
    for host in HOSTS:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder().subject_name(_name("simbank.localhost")).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(min(now - dt.timedelta(days=1), not_after - dt.timedelta(days=VALIDITY_DAYS)))
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return BankCertificate(
        ca_pem=ca_cert.public_bytes(pem),
        cert_pem=cert.public_bytes(pem),
        key_pem=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        not_after=not_after,
        ca=ca,
    )
