"""HTTPS for a listener, with a certificate read again when its files change.

Certificates are renewed on disk (cert-manager, certbot, a Kubernetes secret update)
while the prober runs. :meth:`ServerCertificate.watch` looks at the two files every
:data:`CHECK_EVERY` seconds (two ``stat`` calls); when either changed (modification time,
size or inode: an atomic rename counts), the pair is first loaded into a scratch context,
and only when that works into the listener's own context, where it applies to the
handshakes that follow (connections already open keep theirs). A pair that does not load
(the certificate written before its key, a key that does not match) is logged once and
the previous certificate keeps being served; the next change is tried again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl

from prober.config.access import ListenerTLS, describe_tls_error, load_server_certificate

log = logging.getLogger("prober.access")

CHECK_EVERY = 5.0
"""Seconds between two looks at the certificate's and the key's files."""

Stamp = tuple[tuple[int, int, int], ...]


def server_context() -> ssl.SSLContext:
    """A server context with Python's secure defaults and TLS 1.2 at least."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class ServerCertificate:
    """The :class:`ssl.SSLContext` of one listener, kept up to date with ``tls``'s files."""

    def __init__(self, tls: ListenerTLS, check_every: float = CHECK_EVERY) -> None:
        self.tls = tls
        self.check_every = check_every
        self.context = server_context()
        self._stamp = self._files_stamp()
        load_server_certificate(self.context, tls)
        self._failed: Stamp | None = None
        self.reloads = 0
        """Times a changed certificate was loaded."""

    def _files_stamp(self) -> Stamp | None:
        try:
            stats = [os.stat(path) for path in (self.tls.cert_file, self.tls.key_file)]
        except OSError:
            return None  # one of them is being replaced: look again later
        return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in stats)

    def reload_if_changed(self) -> bool:
        """Load the files again if they changed and form a usable pair; whether it did."""
        stamp = self._files_stamp()
        if stamp is None or stamp == self._stamp or stamp == self._failed:
            return False
        try:
            load_server_certificate(server_context(), self.tls)  # a pair that fails leaves the live context alone
            load_server_certificate(self.context, self.tls)
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._failed = stamp
            log.error("cannot reload the listener's certificate %s (key %s): %s; still serving the previous one",
                      self.tls.cert_file, self.tls.key_file, describe_tls_error(exc))
            return False
        self._stamp, self._failed = stamp, None
        self.reloads += 1
        log.warning("listener certificate reloaded from %s", self.tls.cert_file)
        return True

    async def watch(self) -> None:
        """Reload the certificate whenever its files change, until cancelled."""
        while True:
            await asyncio.sleep(self.check_every)
            self.reload_if_changed()
