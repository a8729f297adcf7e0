"""Keys and certificates made at test time, written as PEM files into a directory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from prober.simbank.keys import PrivateKey, write_key_files


@dataclass
class KeyFiles:
    """A private key, its self-signed certificate, and the files holding them."""

    key: PrivateKey
    certificate: x509.Certificate
    key_file: Path
    certificate_file: Path

    @property
    def pem_body(self) -> str:
        """A line from the middle of the key's PEM: must never appear in any output."""
        lines = self.key_file.read_text().splitlines()
        return lines[len(lines) // 2]


def make_key(directory: Path, name: str, kind: str = "rsa") -> KeyFiles:
    """A new key (rsa, ec or ed25519) and its self-signed certificate, as files."""
    return KeyFiles(*write_key_files(directory, name, kind))


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
"""  # noqa: E501 - a TOML inline table is one line


def signed_site(name: str, url: str, signing: Mapping[str, str | Path] | None) -> str:
    """A site of the simulated bank whose journey takes a token (unsigned), lists accounts
    (a GET with a query) and confirms funds (a POST with a non-ASCII JSON body), with a
    ``[sites.signing]`` section made of ``signing`` (none when None)."""
    lines = ["[[sites]]", f'name = "{name}"', f'base_url = "{url}"', 'headers = { "X-Request-ID" = "{{ uuid() }}" }']
    if signing is not None:
        lines += ["  [sites.signing]", *(f'  {key} = "{value}"' for key, value in signing.items())]
    return "\n".join(lines) + JOURNEY
