"""The ``[certificates]`` section: when certificate expiry is warned about.

Example (every key optional; these are the defaults)::

    [certificates]
    warn_days = [30, 14, 7, 1]   # the warning ladder: an incident at the first, a notification at each
    check_every = "60s"          # how often the prober's own certificate files are looked at

Every certificate the prober knows has one: the banks' (read from each https step's
handshake) and the prober's own (``[sites.tls] cert_file``, signing ``certificate_file``).
When one has fewer days left than the first step of the ladder, a ``certificate``
incident is opened for it and notified; each further step it reaches is notified once
more; a renewed certificate resolves it. ``prober validate`` warns about a configured
certificate within the first step, and refuses one that expired or is not valid yet.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from prober.config.types import STRICT, Duration


class CertificatesConfig(BaseModel):
    """Settings of certificate expiry warnings (see the module docstring)."""

    model_config = STRICT

    warn_days: list[int] = Field(default_factory=lambda: [30, 14, 7, 1], min_length=1, max_length=10)
    """Days before expiry at which a certificate is warned about, kept in decreasing order."""
    check_every: Duration = Field(default=60.0, ge=1.0, le=86_400.0)
    """Seconds between two looks at the prober's own certificate files (two ``stat`` calls
    each; a changed file is read again) and two evaluations of the ladder."""

    @field_validator("warn_days")
    @classmethod
    def _ladder(cls, value: list[int]) -> list[int]:
        for days in value:
            if not 1 <= days <= 3650:
                raise ValueError(f"{days} is not a number of days from 1 to 3650")
        if len(set(value)) != len(value):
            raise ValueError("each step of the ladder must be given once")
        return sorted(value, reverse=True)
