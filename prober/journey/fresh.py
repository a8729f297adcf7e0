"""Template values that are new for every request sent: ``{{ uuid() }}`` in headers.

A step renders its request once; a poll attempt and a redirect hop send it again. The
headers whose templates call ``uuid()`` (an ``X-Request-ID``, which Berlin Group, STET
and UK Open Banking want unique per request) are rendered again for each of those
requests, and only they: the runner updates them before each poll attempt after the
first, and :func:`renew_on_redirect` before each redirect hop. Signing runs after both,
so the signature covers the value actually sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prober.journey.redirects import Middleware
from prober.journey.templating import Renderer

if TYPE_CHECKING:
    import aiohttp


def renew_on_redirect(render: Renderer, values: Mapping[str, Any]) -> Middleware:
    """A client middleware for one request and its redirects: every hop after the first
    gets the headers of ``render`` rendered anew (the first carries those the request
    was rendered with). Put it before the signer, which must sign the final values."""
    first = True

    async def renew(request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
        nonlocal first
        if first:
            first = False
        else:
            for name, value in render(values).items():
                request.headers[name] = value
        return await handler(request)

    return renew
