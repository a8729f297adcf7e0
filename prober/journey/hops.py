"""What each hop of a request goes through: one aiohttp client middleware per request.

A step's request may take several hops when it follows redirects. aiohttp calls a
request's middlewares on every hop, the first included. :class:`Hops` does, in this
order, what the prober adds to each hop:

1. ``traceparent`` with a new span id (:mod:`prober.journey.tracecontext`);
2. on every hop after the first, the headers whose templates call ``uuid()`` rendered
   anew, so that an ``X-Request-ID`` is unique per request sent (the first hop carries
   those the request was rendered with);
3. on a hop that leaves the first hop's origin, the guard of
   :mod:`prober.journey.redirects`: headers holding a secret are dropped, and a body
   holding one is not re-sent (:class:`~prober.journey.redirects.SecretRedirectRefused`).

A request signer, when the step has one, is a middleware of its own placed after this
one, so that it signs the hop as it is sent (traceparent and renewed headers included).

The three jobs are one middleware rather than three because every middleware costs a
closure and a coroutine per hop in aiohttp, on every request; and which headers hold a
secret is worked out only when a hop does leave the origin (rarely), not per request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from prober.journey.redirects import SecretRedirectRefused
from prober.journey.templating import Renderer
from prober.journey.tracecontext import HEADER as TRACEPARENT
from prober.journey.tracecontext import new_span_id, traceparent

SecretsOf = Callable[[], tuple[tuple[str, ...], bool]]
"""Gives what of a request holds a secret: the names of its secret headers, and whether
its body holds one. Called at most once per request, on its first hop to another origin."""


class Hops:
    """The middleware of one request and its redirects (see the module docstring).

    ``trace_id``: the run's trace id, or ``""`` for no ``traceparent``. ``fresh`` and
    ``values``: the renderer of the ``uuid()`` headers and the run's values, or None.
    ``secrets_of``: what of the request holds a secret (:data:`SecretsOf`), or None when
    the guard is not wanted (the step does not follow redirects).
    """

    __slots__ = ("trace_id", "fresh", "values", "secrets_of", "first_url", "secret_headers", "secret_body")

    def __init__(
        self, trace_id: str, fresh: Renderer | None, values: Mapping[str, Any], secrets_of: SecretsOf | None
    ) -> None:
        self.trace_id = trace_id
        self.fresh = fresh
        self.values = values
        self.secrets_of = secrets_of
        self.first_url: Any = None
        """The first hop's URL (its origin is the step's own); None before the first hop."""
        self.secret_headers: tuple[str, ...] | None = None
        self.secret_body = False

    async def __call__(
        self, request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        if self.trace_id:
            request.headers[TRACEPARENT] = traceparent(self.trace_id, new_span_id())
        if self.first_url is None:
            self.first_url = request.url
        else:
            if self.fresh is not None:
                for name, value in self.fresh(self.values).items():
                    request.headers[name] = value
            if self.secrets_of is not None and request.url.origin() != self.first_url.origin():
                self._guard(request)
        return await handler(request)

    def _guard(self, request: aiohttp.ClientRequest) -> None:
        """A hop to another origin: no secret header, and no secret body, goes with it."""
        assert self.secrets_of is not None
        if self.secret_headers is None:
            self.secret_headers, self.secret_body = self.secrets_of()
        for name in self.secret_headers:
            request.headers.popall(name, None)
        if self.secret_body and request.body:
            raise SecretRedirectRefused(f"redirect to {request.url.host} would re-send a secret")
