"""What a notification says: the bank, the capability, what fails, since when, for how long."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from prober.timefmt import utc_iso


def iso(ns: int | None) -> str | None:
    """UTC ISO 8601 time with a ``Z``, to the second."""
    if ns is None:
        return None
    return utc_iso(ns // 1_000_000_000)


def human_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours) + [f"{minutes}m"] * bool(minutes)
    if secs or not parts:
        parts.append(f"{secs}s")
    return " ".join(parts[:2])


CERTIFICATE_KIND = "certificate"
"""The kind of an incident about a certificate nearing its expiry (not a capability)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One incident notification (``opened``, ``reminder``, ``escalated`` or ``resolved``).

    ``escalated``: a certificate incident reached the next step of its warning ladder.
    A certificate incident (kind ``certificate``) is worded as such: what expires, when,
    and who uses it (its ``error``), the capabilities still working.
    """

    event: Literal["opened", "resolved", "reminder", "escalated"]
    incident_id: str
    site: str
    kind: str
    check: str
    location: str
    failed_step: str
    outcome: str
    error: str
    reason: str
    since_ns: int
    at_ns: int
    duration_s: float
    capability_state: str
    """State of the site's ``kind`` after this change: ok, degraded or outage."""
    site_summary: str
    """Every capability of the site, e.g. ``partial outage: transfer (outage); ok: login``."""
    resolved_ns: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    """The check's own tags, e.g. ``{"merchant_country": "US"}``."""
    evidence: tuple[str, ...] = ()
    """Files kept of the latest failed run of a browser check (screenshot, trace), as paths
    on the prober's machine."""
    ended: str = ""
    """After a resolution: why the incident ended without a recovery (its check is no
    longer probed); "" when it recovered."""

    @property
    def since(self) -> str:
        return iso(self.since_ns) or ""

    @property
    def resolved_at(self) -> str | None:
        return iso(self.resolved_ns)

    @property
    def recovered(self) -> bool:
        """A resolution by a recovery (not a check closed because it is no longer probed)."""
        return self.event == "resolved" and not self.ended

    @property
    def closed(self) -> bool:
        """A resolution without a recovery: what it was about is no longer probed."""
        return self.event == "resolved" and bool(self.ended)

    @property
    def end_label(self) -> str:
        """How the end of a resolved incident is labelled: ``Back at`` or ``Closed at``."""
        return "Back at" if self.recovered else "Closed at"

    @property
    def still_failing(self) -> bool:
        """After a resolution: other checks (or locations) of the capability still fail."""
        return self.event == "resolved" and self.capability_state in ("degraded", "outage")

    @property
    def title(self) -> str:
        """E.g. ``INCIDENT simbank: transfer outage`` / ``RESOLVED simbank: transfer is back after 2h 5m``.

        A resolution names the capability as back only when no other check of it still
        fails; otherwise it names the check and the capability's state:
        ``RESOLVED simbank: payments check `card-auth` is back after 5m; payments still degraded``.
        """
        if self.kind == CERTIFICATE_KIND:
            return self._certificate_title
        if self.closed:
            return f"CLOSED {self.site}: {self.kind} check `{self.check}` no longer probed"
        if self.event == "resolved":
            after = f"is back after {human_duration(self.duration_s)}"
            if self.still_failing:
                return (f"RESOLVED {self.site}: {self.kind} check `{self.check}` {after}; "
                        f"{self.kind} still {self.capability_state}")
            return f"RESOLVED {self.site}: {self.kind} {after}"
        prefix = "STILL FAILING" if self.event == "reminder" else "INCIDENT"
        state = self.capability_state if self.capability_state in ("degraded", "outage") else "failing"
        return f"{prefix} {self.site}: {self.kind} {state}"

    @property
    def _certificate_name(self) -> str:
        return self.check.removeprefix("certificate:")

    @property
    def _certificate_title(self) -> str:
        """``CERTIFICATE simbank: client expires in 13 days`` / ``RESOLVED simbank: certificate client renewed``."""
        if self.closed:
            return f"CLOSED {self.site}: certificate {self._certificate_name} no longer watched"
        if self.event == "resolved":
            return f"RESOLVED {self.site}: certificate {self._certificate_name} renewed"
        return f"CERTIFICATE {self.site}: {self.error.split(';', 1)[0]}"

    @property
    def what_fails(self) -> str:
        """E.g. ``check `transfer` fails at step `create`: http_status (HTTP 503)``; an error
        that already names its outcome (``timeout: no complete answer…``) is not wrapped
        in a second mention of it."""
        error = self.error or self.outcome
        if not error.startswith(f"{self.outcome}:") and self.error:
            error = f"{self.outcome} ({self.error})"
        tags = f" ({', '.join(f'{k}={v}' for k, v in sorted(self.tags.items()))})" if self.tags else ""
        if self.outcome == "slow" and not self.failed_step:
            return f"check `{self.check}`{tags} works, too slowly: {error}"
        step = f"step `{self.failed_step}`" if self.failed_step else "the journey"
        return f"check `{self.check}`{tags} fails at {step}: {error}"

    @property
    def text(self) -> str:
        """The plain-text body every notifier can use."""
        if self.kind == CERTIFICATE_KIND:
            if self.closed:
                body = (f"Closed at {self.resolved_at}, no renewal seen: {self.ended}; the warning had been open "
                        f"since {self.since} ({human_duration(self.duration_s)}).")
            elif self.event == "resolved":
                body = (f"A renewed certificate was seen at {self.resolved_at}; the warning had been open since "
                        f"{self.since} ({human_duration(self.duration_s)}).")
            else:
                body = f"{self.error}. Warned since {self.since}."
            return "\n".join([self.title, body, f"{self.site}: {self.site_summary}. Seen from {self.location}."])
        lines = [self.title]
        if self.closed:
            lines.append(
                f"check `{self.check}` of {self.kind} at {self.site} was failing since {self.since}; closed at "
                f"{self.resolved_at} ({human_duration(self.duration_s)}), without a recovery: {self.ended}; "
                f"last failure: {self.what_fails}."
            )
        elif self.event == "resolved":
            subject = f"check `{self.check}` of {self.kind}" if self.still_failing else self.kind
            lines.append(
                f"{subject} at {self.site} was failing from {self.since} to {self.resolved_at} "
                f"({human_duration(self.duration_s)}); last failure: {self.what_fails}."
            )
        else:
            lines.append(f"{self.what_fails}, since {self.since} (open for {human_duration(self.duration_s)}).")
        lines.append(f"{self.site}: {self.site_summary}. Probed from {self.location}.")
        if self.evidence and self.event != "resolved":
            lines.append(f"Evidence of the latest failed run: {', '.join(self.evidence)}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "event": self.event,
            "state": "resolved" if self.event == "resolved" else "open",
            "incident_id": self.incident_id,
            "site": self.site,
            "kind": self.kind,
            "check": self.check,
            "tags": dict(self.tags),
            "location": self.location,
            "failed_step": self.failed_step,
            "outcome": self.outcome,
            "error": self.error,
            "reason": self.reason,
            "since": self.since,
            "resolved_at": self.resolved_at,
            "ended": self.ended,
            "duration_s": round(self.duration_s, 3),
            "capability_state": self.capability_state,
            "site_summary": self.site_summary,
            "evidence": list(self.evidence),
            "title": self.title,
            "text": self.text,
        }
