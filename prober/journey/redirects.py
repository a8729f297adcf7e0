"""Redirects to another origin carry no secret.

aiohttp already drops ``Authorization``, ``Proxy-Authorization`` and ``Cookie`` when a
redirect leaves the request's origin (scheme, host, port), and its cookie jar sends a
cookie only to the host that set it. It keeps every other header, and a 307/308
redirect re-sends the body. For a step that follows redirects, the prober adds what is
missing, on every hop that leaves the step's origin (the guard of
:class:`~prober.journey.hops.Hops`, the middleware of each request):

* headers whose value holds a secret (an ``X-Api-Key``, a token in a custom header)
  are dropped;
* a request whose body holds a secret (a password grant) is not sent at all: the step
  fails with :class:`SecretRedirectRefused` (outcome ``error``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp

Middleware = Callable[[aiohttp.ClientRequest, Callable[[aiohttp.ClientRequest], Awaitable[aiohttp.ClientResponse]]],
                      Awaitable[aiohttp.ClientResponse]]


class SecretRedirectRefused(aiohttp.ClientError):
    """A redirect would have re-sent a body holding a secret to another origin."""
