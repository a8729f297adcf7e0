"""Keys and certificates made at test time, written as PEM files into a directory."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID


@dataclass
class KeyFiles:
    """A private key, its self-signed certificate, and the files holding them."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    certificate: x509.Certificate
    key_file: Path
    certificate_file: Path

    @property
    def pem_body(self) -> str:
        """A line from the middle of the key's PEM: must never appear in any output."""
        lines = self.key_file.read_text().splitlines()
        return lines[len(lines) // 2]


def make_key(directory: Path, name: str, kind: str = "rsa") -> KeyFiles:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
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
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test QTSP CA"), x509.NameAttribute(NameOID.COUNTRY_NAME, "DE")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, None if kind == "ed25519" else hashes.SHA256())
    )
    key_file = directory / f"{name}.key"
    certificate_file = directory / f"{name}.pem"
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key_file.chmod(0o600)
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return KeyFiles(key, certificate, key_file, certificate_file)


JOURNEY = """
  [sites.secrets]
  password = "s3cret-pw"
[[sites.checks]]
name = "funds"
kind = "payments"
  [[sites.checks.steps]]
  name = "token"
  method = "POST"
  path = "/oauth/token"
  sign = false
  form = { grant_type = "password", username = "alice", password = "{{ password }}" }
  extract = { token = { json = "access_token" } }
  [[sites.checks.steps]]
  name = "accounts"
  path = "/accounts"
  query = { withBalance = "false" }
  headers = { Authorization = "Bearer {{ token }}" }
  expect = [ { json = "accounts", min_length = 1 } ]
  [[sites.checks.steps]]
  name = "confirm"
  method = "POST"
  path = "/funds-confirmations"
  headers = { Authorization = "Bearer {{ token }}" }
  json = { account = { iban = "FR7630006000011234567890189" }, instructedAmount = { amount = "1.00", currency = "EUR" }, reference = "é ünïcode" }
  expect = [ { json = "fundsAvailable", equals = true } ]
"""


def signed_site(name: str, url: str, signing: dict[str, str | Path] | None) -> str:
    """A site of the simulated bank whose journey takes a token (unsigned), lists accounts
    (a GET with a query) and confirms funds (a POST with a non-ASCII JSON body), with a
    ``[sites.signing]`` section made of ``signing`` (none when None)."""
    lines = ["[[sites]]", f'name = "{name}"', f'base_url = "{url}"', 'headers = { "X-Request-ID" = "{{ uuid() }}" }']
    if signing is not None:
        lines += ["  [sites.signing]", *(f'  {key} = "{value}"' for key, value in signing.items())]
    return "\n".join(lines) + JOURNEY
