"""What every signing profile works on: the request as it is about to be sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from multidict import CIMultiDict


@dataclass(slots=True)
class Outgoing:
    """A request's final form: the method, ``target`` (path and query exactly as sent),
    ``authority`` (host[:port]), the body bytes, and the headers, which a signer adds to."""

    method: str
    scheme: str
    authority: str
    target: str
    headers: CIMultiDict[str]
    body: bytes


class Signer(Protocol):
    """One signing profile, configured with its key."""

    def sign(self, request: Outgoing) -> None:
        """Add the profile's headers to ``request.headers``; raise
        :class:`~prober.journey.failures.ReportableError` when it cannot."""
