"""``prober bank --profile NAME --keys DIR``: the simulated bank as a PSD2 bank of one
standard, with everything the shipped example of that standard needs to run against it.

At start-up the TPP's keys are made in ``DIR`` (once; kept across restarts): the QSealC
key and certificate the bank trusts for request signatures, and the key of the OAuth2
client's private_key_jwt assertions. Once the bank listens, ``DIR/<profile>.env`` (mode
0600) holds the environment the example reads (URLs, key files, the first refresh
tokens, the card issuer's client secret), so that::

    prober bank --profile berlin-group --keys var/bank-keys &
    set -a; . var/bank-keys/berlin-group.env; set +a
    prober check -c config/berlin-group.toml

runs every check of the example against it. Refresh tokens and the secret are new at
each start of the bank (it keeps nothing); the prober starts a new chain when the
configured first refresh token changes.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .keys import write_key_files
from .oauth import OAuthClient, OAuthServer
from .psd2 import STET_BASE, UK_BASE
from .signatures import SignatureProfile

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

CLIENT_ID = "bank-prober"
ISSUER_PATHS = ("/cards",)  # the card issuer's own API shares the host, unsigned
STET_KEY_URL = "https://prober.simbank.example/certs/qseal.pem"
UK_KID, UK_ISS = "bank-prober-signing", "0015800001041RHAAY/bank-prober"


@dataclass(slots=True)
class ProfileSetup:
    """What :class:`~prober.simbank.server.BankServer` is given, and the example's environment."""

    profile: str
    directory: Path
    signatures: SignatureProfile
    oauth: OAuthServer
    env: dict[str, str]

    def environment(self, url: str) -> dict[str, str]:
        """The example's environment with the bank's URL filled in."""
        return {name: value.replace("{url}", url) for name, value in self.env.items()}

    def write_env(self, url: str) -> Path:
        """``<directory>/<profile>.env``: :meth:`environment` as ``NAME=value`` lines; mode 0600."""
        path = self.directory / f"{self.profile}.env"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            for name, value in self.environment(url).items():
                out.write(f"{name}={value}\n")
        path.chmod(0o600)
        return path


def _keys(directory: Path, name: str, kind: str) -> tuple[PrivateKeyTypes, x509.Certificate, Path, Path]:
    """The key and certificate of ``name`` in ``directory`` (made when missing), and their files."""
    key_file, certificate_file = directory / f"{name}.key", directory / f"{name}.pem"
    if not key_file.exists() or not certificate_file.exists():
        write_key_files(directory, name, kind)
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    return key, x509.load_pem_x509_certificate(certificate_file.read_bytes()), key_file, certificate_file


def setup(profile: str, directory: Path) -> ProfileSetup:
    """Keys in ``directory`` (made when missing), the bank's checks, the example's env."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    qseal, qseal_cert, qseal_key_file, qseal_cert_file = _keys(directory, "qseal", "rsa")
    client, _, client_key_file, _ = _keys(directory, "client", "rsa")
    issuer_secret = secrets.token_urlsafe(18)
    oauth = OAuthServer({CLIENT_ID: OAuthClient(CLIENT_ID, public_key=client.public_key(), secret=issuer_secret)})
    first = {name: oauth.new_refresh_token(CLIENT_ID) for name in ("a", "b", "c")}
    if profile == "berlin-group":
        signatures = SignatureProfile(profile, certificates=[qseal_cert], exempt=ISSUER_PATHS)
        env = {"BG_URL": "{url}", "BG_TOKEN_URL": "{url}/oauth/token", "BG_CARDS_URL": "{url}",
               "BG_QSEAL_KEY": str(qseal_key_file), "BG_QSEAL_CERT": str(qseal_cert_file),
               "BG_CLIENT_KEY": str(client_key_file), "BG_CLIENT_SECRET": issuer_secret,
               "BG_REFRESH_TOKEN": first["a"], "BG_DEBTOR_IBAN": "FR7630006000011234567890189",
               "BG_CREDITOR_IBAN": "FR5630006000019876543210921", "BG_TEST_CARD_ID": "card-002"}
    elif profile == "stet":
        signatures = SignatureProfile(profile, keys={STET_KEY_URL: qseal.public_key()}, exempt=ISSUER_PATHS)
        env = {"STET_URL": "{url}" + STET_BASE, "STET_TOKEN_URL": "{url}/oauth/token", "STET_CARDS_URL": "{url}",
               "STET_QSEAL_KEY": str(qseal_key_file), "STET_QSEAL_URL": STET_KEY_URL,
               "STET_CLIENT_KEY": str(client_key_file), "STET_CLIENT_SECRET": issuer_secret,
               "STET_AISP_REFRESH_TOKEN": first["a"], "STET_CBPII_REFRESH_TOKEN": first["b"],
               "STET_DEBTOR_IBAN": "FR7630006000011234567890189", "STET_CREDITOR_IBAN": "FR5630006000019876543210921",
               "STET_TEST_CARD_ID": "card-001"}
    elif profile == "uk-open-banking":
        signatures = SignatureProfile(profile, keys={UK_KID: qseal.public_key()}, issuer=UK_ISS, exempt=ISSUER_PATHS)
        env = {"UKOB_URL": "{url}" + UK_BASE, "UKOB_TOKEN_URL": "{url}/oauth/token", "UKOB_CARDS_URL": "{url}",
               "UKOB_SIGNING_KEY": str(qseal_key_file), "UKOB_SIGNING_KID": UK_KID, "UKOB_ISS": UK_ISS,
               "UKOB_CLIENT_KEY": str(client_key_file), "UKOB_CLIENT_SECRET": issuer_secret,
               "UKOB_AIS_REFRESH_TOKEN": first["a"], "UKOB_VRP_REFRESH_TOKEN": first["b"],
               "UKOB_COF_REFRESH_TOKEN": first["c"], "UKOB_TEST_CARD_ID": "card-001"}
    else:
        raise ValueError(f"unknown bank profile {profile!r}")
    return ProfileSetup(profile, directory, signatures, oauth, env)
