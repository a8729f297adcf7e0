"""Configuration of request signing (``[sites.signing]``, or ``signing`` on a step).

Keys and certificates are always read from files, never written inline: a key in the
TOML would end up in backups, diffs and error messages. Whether the files load and
belong together is checked when the configuration is compiled (``prober validate``),
see :mod:`prober.journey.signing`.

Profiles::

    berlin-group     HTTP signature (draft-cavage-12 as NextGenPSD2 profiles it): Digest,
                     Signature, TPP-Signature-Certificate; key RSA (rsa-sha256) or EC
                     (ecdsa-sha256); keyId derived from the certificate
    stet             HTTP signature as STET PSD2 profiles it: Digest (with a body),
                     Signature with keyId = the URL of the QSealC; RSA or EC key
    uk-open-banking  detached JWS (b64=false) in x-jws-signature, PS256, with the
                     Open Banking claims (iat, iss, tan) in the protected header
    rfc9421          HTTP Message Signatures (RFC 9421): Signature-Input and Signature,
                     Content-Digest of the body
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, field_validator

from prober.config.types import STRICT, Duration
from prober.config.unions import tagged_union

Rfc9421Algorithm = Literal["rsa-pss-sha512", "rsa-v1_5-sha256", "ecdsa-p256-sha256", "ecdsa-p384-sha384", "ed25519"]


class _Signing(BaseModel):
    """What every profile has: the key, its certificate and keyId."""

    model_config = STRICT

    profile: str
    key_file: str
    """PEM (or DER) private key: the QSealC key for Berlin Group and STET, the signing
    key registered in the Open Banking directory for UK Open Banking."""
    key_password_file: str | None = None
    """File holding the passphrase of an encrypted key."""
    certificate_file: str | None = None
    """PEM certificate of the key; checked against the key when set."""
    key_id: str | None = None
    """keyId / kid (each profile says whether it is required)."""


class _CoveredHeaders(_Signing):
    """A profile whose signature covers a list of headers (components)."""

    headers: list[str] | None = None
    """Covered headers, lower case, ``(request-target)`` (cavage) or ``@method``-style
    derived components (RFC 9421). Defaults to what the profile requires."""

    @field_validator("headers")
    @classmethod
    def _some_headers(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("`headers` must name at least one header (or be left out for the profile's default)")
        return value


class BerlinGroupSigning(_CoveredHeaders):
    """``profile = "berlin-group"``: the certificate is sent in TPP-Signature-Certificate,
    and keyId is derived from it (``SN=<serial>,CA=<issuer>``) unless ``key_id`` is set."""

    profile: Literal["berlin-group"] = "berlin-group"
    certificate_file: str


class StetSigning(_CoveredHeaders):
    """``profile = "stet"``: ``key_id`` is the URL where the bank fetches the QSealC."""

    profile: Literal["stet"] = "stet"
    key_id: str


class UkOpenBankingSigning(_Signing):
    """``profile = "uk-open-banking"``: ``key_id`` is the kid of the key in the directory."""

    profile: Literal["uk-open-banking"] = "uk-open-banking"
    key_id: str
    issuer: str
    """``http://openbanking.org.uk/iss``: the organisation / software statement id the
    directory knows the key by."""
    trust_anchor: str = "openbanking.org.uk"
    """``http://openbanking.org.uk/tan``."""


class Rfc9421Signing(_CoveredHeaders):
    """``profile = "rfc9421"``: ``key_id`` is the ``keyid`` parameter."""

    profile: Literal["rfc9421"] = "rfc9421"
    key_id: str
    algorithm: Rfc9421Algorithm | None = None
    """Derived from the key type when unset."""
    label: str = Field(default="sig1", pattern=r"^[a-z][a-z0-9_\-.*]{0,31}$")
    """The signature's label in Signature-Input and Signature."""
    expires_in: Duration | None = None
    """Adds an ``expires`` parameter this long after ``created``."""


SigningConfig = tagged_union(
    "profile", (BerlinGroupSigning, StetSigning, UkOpenBankingSigning, Rfc9421Signing), "a signing profile")
"""How requests of a site (or of one step) are signed: the model of its ``profile``."""

_ADAPTER: TypeAdapter[_Signing] = TypeAdapter(SigningConfig)


def signing_config(**values: Any) -> _Signing:
    """A ``signing`` table validated from keyword values, the way the file's is
    (``profile`` picks the model; raises pydantic's ``ValidationError``)."""
    return _ADAPTER.validate_python(values)
