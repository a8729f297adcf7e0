"""The security headers every answer of the prober's HTTP surface carries.

The status page is the strictest client of these (a page with one stylesheet, no script,
no frame, no form); JSON, the Atom feed, badges, ``/healthz`` and the refusals (401,
429) carry the same, since none of them needs more. A handler may add its own (a badge
sets ``Cross-Origin-Resource-Policy: cross-origin`` so that other sites may embed it).
"""

from __future__ import annotations

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
"""Nothing but the stylesheet served beside the page (``/status.css``) and its images."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
