"""HTTP Message Signatures (RFC 9421), for banks that use the RFC rather than the
draft-cavage profiles of Berlin Group and STET.

``Signature-Input`` and ``Signature`` under one label (``sig1`` by default), covering
``@method``, ``@authority``, ``@target-uri`` (or the configured components) and, when
the request has a body, ``content-digest`` (RFC 9530, added by the library), with
``created``, ``keyid``, ``alg`` and optionally ``expires``.

Everything RFC-specific (structured fields, the signature base, the algorithms) is the
``http-message-signatures`` package's (maintained, follows the RFC's test vectors);
this module only adapts the prober's request and key files to it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPSignatureKeyResolver,
    algorithms,
)

from prober.config.signing import Rfc9421Signing
from prober.journey.errors import ReportableError
from prober.journey.signing.base import Outgoing
from prober.journey.signing.keys import KeyFileError, KeySource, SigningKey

ALGORITHMS: dict[str, type[algorithms.HTTPSignatureAlgorithm]] = {
    "rsa-pss-sha512": algorithms.RSA_PSS_SHA512,
    "rsa-v1_5-sha256": algorithms.RSA_V1_5_SHA256,
    "ecdsa-p256-sha256": algorithms.ECDSA_P256_SHA256,
    "ecdsa-p384-sha384": algorithms.ECDSA_P384_SHA384,
    "ed25519": algorithms.ED25519,
}
DEFAULT_COMPONENTS = ("@method", "@authority", "@target-uri")


def algorithm_for(key: SigningKey) -> str:
    """The RFC 9421 algorithm a key signs with by default."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "rsa-pss-sha512"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    return "ecdsa-p384-sha384" if key.curve.name == "secp384r1" else "ecdsa-p256-sha256"


def _fits(algorithm: str, key: SigningKey) -> bool:
    if algorithm.startswith("rsa"):
        return isinstance(key, rsa.RSAPrivateKey)
    if algorithm == "ed25519":
        return isinstance(key, ed25519.Ed25519PrivateKey)
    curve = "secp256r1" if algorithm == "ecdsa-p256-sha256" else "secp384r1"
    return isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == curve


class _FileKeys(HTTPSignatureKeyResolver):
    def __init__(self, keys: KeySource) -> None:
        self.keys = keys

    def resolve_private_key(self, key_id: str) -> Any:
        return self.keys.get().key


@dataclass(slots=True)
class _Message:
    """The request as the library reads it: method, absolute URL, headers."""

    method: str
    url: str
    headers: Any


@dataclass(slots=True)
class MessageSigner:
    """Adds ``Signature-Input``, ``Signature`` and (with a body) ``Content-Digest``."""

    signer: HTTPMessageSigner
    key_id: str
    label: str
    components: tuple[str, ...]
    expires_in: float | None

    @classmethod
    def build(cls, keys: KeySource, config: Rfc9421Signing, covered: tuple[str, ...] | None) -> MessageSigner:
        key = keys.get().key
        algorithm = config.algorithm or algorithm_for(key)
        if not _fits(algorithm, key):
            raise KeyFileError("key_file", f"key file {config.key_file}: not a key for {algorithm}")
        signer = HTTPMessageSigner(signature_algorithm=ALGORITHMS[algorithm], key_resolver=_FileKeys(keys))
        return cls(signer, config.key_id, config.label, covered or DEFAULT_COMPONENTS, config.expires_in)

    def sign(self, request: Outgoing) -> None:
        created = datetime.datetime.now(datetime.UTC)
        expires = created + datetime.timedelta(seconds=self.expires_in) if self.expires_in else None
        url = f"{request.scheme}://{request.authority}{request.target}"
        try:
            self.signer.sign(
                _Message(request.method, url, request.headers), key_id=self.key_id, label=self.label,
                created=created, expires=expires, covered_component_ids=self.components,
                body=request.body or None,
            )
        except HTTPMessageSignaturesException as exc:
            # The library's messages name components, never values or keys.
            raise ReportableError(f"signing: {exc}") from None
        except KeyError as exc:
            raise ReportableError(
                f"signing: the request has no {exc.args[0]} header, which the signature covers"
            ) from None
