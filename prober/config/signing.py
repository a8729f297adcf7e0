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

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from prober.config.types import STRICT, Duration

Profile = Literal["berlin-group", "stet", "uk-open-banking", "rfc9421"]

RFC9421_ALGORITHMS = ("rsa-pss-sha512", "rsa-v1_5-sha256", "ecdsa-p256-sha256", "ecdsa-p384-sha384", "ed25519")


class SigningConfig(BaseModel):
    """How requests of a site (or of one step) are signed."""

    model_config = STRICT

    profile: Profile
    key_file: str
    """PEM (or DER) private key: the QSealC key for Berlin Group and STET, the signing
    key registered in the Open Banking directory for UK Open Banking."""
    key_password_file: str | None = None
    """File holding the passphrase of an encrypted key."""
    certificate_file: str | None = None
    """PEM certificate of the key. Required for Berlin Group (sent in
    TPP-Signature-Certificate, keyId derived from it); checked against the key when set."""
    key_id: str | None = None
    """keyId / kid. STET: the URL where the bank fetches the QSealC (required). UK Open
    Banking: the kid of the key in the directory (required). Berlin Group: derived from
    the certificate (``SN=<serial>,CA=<issuer>``) unless set. RFC 9421: the ``keyid``
    parameter (required)."""
    headers: list[str] | None = None
    """Covered headers, lower case, ``(request-target)`` (cavage) or ``@method``-style
    derived components (RFC 9421). Defaults to what the profile requires."""
    issuer: str | None = None
    """UK Open Banking ``http://openbanking.org.uk/iss``: the organisation / software
    statement id the directory knows the key by (required for that profile)."""
    trust_anchor: str = "openbanking.org.uk"
    """UK Open Banking ``http://openbanking.org.uk/tan``."""
    algorithm: Literal[RFC9421_ALGORITHMS] | None = None  # type: ignore[valid-type]
    """RFC 9421 only: the algorithm; derived from the key type when unset."""
    label: str = Field(default="sig1", pattern=r"^[a-z][a-z0-9_\-.*]{0,31}$")
    """RFC 9421 only: the signature's label in Signature-Input and Signature."""
    expires_in: Duration | None = None
    """RFC 9421 only: adds an ``expires`` parameter this long after ``created``."""

    @model_validator(mode="after")
    def _profile_needs(self) -> SigningConfig:
        needs = {
            "berlin-group": ("certificate_file",),
            "stet": ("key_id",),
            "uk-open-banking": ("key_id", "issuer"),
            "rfc9421": ("key_id",),
        }[self.profile]
        missing = [name for name in needs if getattr(self, name) is None]
        if missing:
            raise ValueError(f"profile {self.profile!r} needs {', '.join(f'`{m}`' for m in missing)}")
        if self.headers is not None and not self.headers:
            raise ValueError("`headers` must name at least one header (or be left out for the profile's default)")
        if self.algorithm is not None and self.profile != "rfc9421":
            raise ValueError("`algorithm` applies to profile 'rfc9421' only (the other profiles fix it)")
        return self
