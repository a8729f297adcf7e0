"""UK Open Banking: a detached JWS of the body in ``x-jws-signature``.

The Read/Write API profile signs every request that has a body (payment consents,
payments, funds confirmations) with PS256 over the unencoded payload (RFC 7797,
``b64: false``) and sends the JWS with its payload part left empty:
``<protected header>..<signature>``. The protected header carries ``kid`` (the key's id
in the Open Banking directory) and the critical claims ``http://openbanking.org.uk/iat``
(signing time), ``/iss`` (who signs) and ``/tan`` (the trust anchor).

The JWS itself is joserfc's; only the header's content and the detaching are done here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from joserfc.registry import HeaderParameter

from prober.config.signing import UkOpenBankingSigning
from prober.journey.errors import ReportableError
from prober.journey.signing.base import Outgoing
from prober.journey.signing.keys import KeyFileError, KeySource

OB = "http://openbanking.org.uk/"
CLAIMS = (OB + "iat", OB + "iss", OB + "tan")
HEADER = "x-jws-signature"

REGISTRY = jws.JWSRegistry(
    header_registry={
        OB + "iat": HeaderParameter("Open Banking signing time", "int"),
        OB + "iss": HeaderParameter("Open Banking issuer", "str"),
        OB + "tan": HeaderParameter("Open Banking trust anchor", "str"),
    },
    algorithms=["PS256"],
)
REGISTRY.max_payload_length = 10 * 1024 * 1024  # a payment body is small; the default 128 kB is arbitrary


def protected_header(kid: str, issuer: str, trust_anchor: str, iat: int) -> dict[str, object]:
    """The protected header the profile prescribes."""
    return {
        "alg": "PS256",
        "kid": kid,
        "typ": "JOSE",
        "cty": "application/json",
        "b64": False,
        OB + "iat": iat,
        OB + "iss": issuer,
        OB + "tan": trust_anchor,
        "crit": ["b64", *CLAIMS],
    }


def detached(compact: str) -> str:
    """``header..signature``: the compact JWS without its payload part (joserfc leaves
    an unencoded payload in place when it happens to be URL-safe)."""
    header, _, rest = compact.partition(".")
    return header + ".." + rest.rpartition(".")[2]


@dataclass(slots=True)
class DetachedJwsSigner:
    """Adds ``x-jws-signature`` to each request that has a body."""

    keys: KeySource
    kid: str
    issuer: str
    trust_anchor: str

    @classmethod
    def build(cls, keys: KeySource, config: UkOpenBankingSigning) -> DetachedJwsSigner:
        if not isinstance(keys.get().key, rsa.RSAPrivateKey):
            raise KeyFileError("key_file", f"key file {config.key_file}: PS256 needs an RSA key")
        return cls(keys, config.key_id, config.issuer, config.trust_anchor)

    def sign(self, request: Outgoing) -> None:
        if not request.body:
            return
        key = self.keys.get().key
        header = protected_header(self.kid, self.issuer, self.trust_anchor, int(time.time()))
        try:
            if not isinstance(key, rsa.RSAPrivateKey):  # the key file replaced by another kind since the start
                raise TypeError("not an RSA key")  # what RSAKey.import_key raises for it
            compact = jws.serialize_compact(header, request.body, RSAKey.import_key(key), registry=REGISTRY)
        except (JoseError, ValueError, TypeError) as exc:
            raise ReportableError(f"signing: cannot make the JWS ({type(exc).__name__})") from None
        request.headers[HEADER] = detached(compact)
