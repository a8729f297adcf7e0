"""The errors a step's own request preparation raises, apart from the transport's.

Kept in a module of their own, with no import of the HTTP client nor of the crypto
library: compiling a plan (loading a configuration, ``prober validate``) raises them
too, and need not import either to do so. :mod:`prober.journey.failures` classifies them
with the transport's exceptions.
"""

from __future__ import annotations


class ReportableError(Exception):
    """The prober could not prepare a request (e.g. sign it). The message names the
    problem and is safe to report: it never holds a key, a token or a body."""


class KeyFileError(ReportableError):
    """A key, passphrase or certificate file that cannot be used; ``field`` names the
    configuration field, the message names the file and the reason, never the content."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
