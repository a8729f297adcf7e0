"""Signature checks of the simulated bank, one per PSD2 profile.

With a :class:`SignatureProfile` the bank refuses every business request whose
signature does not verify: 401 with ``{"error": "invalid_signature", "reason": ...}``
(the prober classifies 401 as ``auth``). The token endpoint, the admin routes and
``/healthz`` are not signed, as in the standards (the OAuth server is not the XS2A API).

The keys the bank trusts are given at construction: tests generate them at test time.
Each check is written from its standard's text and shares no code with the prober's
signers (:mod:`prober.journey.signing`): the digest is recomputed and the signed text
rebuilt from the request as received, so a bug on one side shows up as a refused
request instead of being agreed with.

=================  ===========================================================
berlin-group,      draft-cavage-12 ``Signature`` + ``Digest``
stet               (:mod:`~prober.simbank.signatures.cavage`)
uk-open-banking    detached JWS in ``x-jws-signature``
                   (:mod:`~prober.simbank.signatures.jws`)
rfc9421            HTTP Message Signatures (:mod:`~prober.simbank.signatures.rfc9421`)
=================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from prober.simbank.signatures.base import Refused, SignatureProfile, Verifier
from prober.simbank.signatures.cavage import verify_cavage
from prober.simbank.signatures.jws import verify_detached_jws
from prober.simbank.signatures.rfc9421 import verify_message_signature

__all__ = ["VERIFIERS", "Refused", "SignatureProfile", "signature_middleware"]

UNSIGNED_PATHS = ("/oauth/token", "/healthz", "/admin/")

VERIFIERS: dict[str, Verifier] = {
    "berlin-group": verify_cavage,
    "stet": verify_cavage,
    "uk-open-banking": verify_detached_jws,
    "rfc9421": verify_message_signature,
}
"""The check of each signing profile (the profiles of :mod:`prober.config.signing`)."""


def signature_middleware(profile: SignatureProfile) -> Callable[..., Awaitable[web.StreamResponse]]:
    """An aiohttp server middleware refusing business requests that are not signed right."""
    verify = VERIFIERS[profile.profile]

    @web.middleware
    async def check(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith(UNSIGNED_PATHS) or (profile.exempt and request.path.startswith(profile.exempt)):
            return await handler(request)
        body = await request.read()
        try:
            verify(profile, request, body)
        except Refused as exc:
            reason = str(exc)
            profile.refused[reason] = profile.refused.get(reason, 0) + 1
            return web.json_response({"error": "invalid_signature", "reason": reason}, status=401)
        profile.verified += 1
        return await handler(request)

    return check
