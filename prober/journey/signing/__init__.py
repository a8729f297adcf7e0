"""Request signing for PSD2 APIs: one module per profile, applied just before send.

:func:`build_signer` turns a :class:`~prober.config.signing.SigningConfig` into a signer
(loading and checking its key files, so a bad file is a configuration error);
:func:`signing_middleware` makes it an aiohttp client middleware, which aiohttp calls
with the final request (templated, serialized, ``Host`` and ``Content-Type`` set) for
every hop: a redirect is signed again, and so is every poll attempt, each with its own
``Date`` (and its own ``X-Request-ID`` when that is a ``{{ uuid() }}`` template, renewed
before signing: see :mod:`prober.journey.hops`).

Profiles: :mod:`.cavage` (Berlin Group, STET), :mod:`.jws` (UK Open Banking),
:mod:`.rfc9421` (HTTP Message Signatures).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prober.config.signing import BerlinGroupSigning, SigningConfig, StetSigning, UkOpenBankingSigning
from prober.journey.errors import KeyFileError
from prober.journey.signing.base import Outgoing, Signer

if TYPE_CHECKING:
    from aiohttp import ClientHandlerType, ClientRequest, ClientResponse

    from prober.journey.redirects import Middleware

__all__ = ["KeyFileError", "Outgoing", "Signer", "build_signer", "signing_middleware"]


def build_signer(config: SigningConfig) -> Signer:
    """The signer of ``config``; raises :class:`KeyFileError` (with the field) when its
    files cannot be loaded or do not belong together."""
    from prober.journey.signing.keys import KeySource

    keys = KeySource(config.key_file, config.certificate_file, config.key_password_file)
    if isinstance(config, UkOpenBankingSigning):
        from prober.journey.signing.jws import DetachedJwsSigner

        return DetachedJwsSigner.build(keys, config)
    covered = tuple(h.lower() for h in config.headers) if config.headers else None
    if isinstance(config, BerlinGroupSigning | StetSigning):
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        from prober.journey.signing.cavage import CavageSigner

        if not isinstance(keys.get().key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise KeyFileError(
                "key_file", f"key file {config.key_file}: {config.profile} signs with RSA or ECDSA keys only"
            )
        return CavageSigner(config.profile, keys, config.key_id, covered)
    from prober.journey.signing.rfc9421 import MessageSigner

    return MessageSigner.build(keys, config, covered)


def signing_middleware(signer: Signer) -> Middleware:
    """An aiohttp client middleware that signs each request it sends."""

    async def sign(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        body = request.body
        raw = body if isinstance(body, bytes) else await body.as_bytes()
        url = request.url
        authority = url.raw_host or ""
        if not url.is_default_port() and url.explicit_port is not None:
            authority = f"{authority}:{url.explicit_port}"
        signer.sign(Outgoing(request.method, url.scheme, authority, url.raw_path_qs, request.headers, raw))
        return await handler(request)

    return sign
