"""Who may see what on the prober's own HTTP surface (the health listener, the status
page's own listener, the supervisor's): public and internal routes, credentials, a rate
limit per client, TLS with certificates reloaded from disk, security headers.

The settings are ``[access]`` (:mod:`prober.config.access`); :class:`AccessGate` applies
them to every listener (:class:`prober.listener.Listener`) of a process.
"""

from prober.access.credentials import Authenticator, AuthResult
from prober.access.gate import AccessGate, UnsafeListener, internal_routes, is_public, serve_publicly
from prober.access.headers import CONTENT_SECURITY_POLICY, SECURITY_HEADERS
from prober.access.ratelimit import ClientRateLimiter
from prober.access.tls import ServerCertificate

__all__ = [
    "CONTENT_SECURITY_POLICY", "SECURITY_HEADERS", "AccessGate", "AuthResult", "Authenticator",
    "ClientRateLimiter", "ServerCertificate", "UnsafeListener", "internal_routes", "is_public", "serve_publicly",
]
