"""Certificate expiry in the daemon: the banks' certificates and the prober's own.

:class:`CertificateWatch` is a result consumer with a loop of its own:

* **the banks' certificates**: every step over TLS carries the certificate of its
  connection (:class:`~prober.results.ServerCertificate`); the watch keeps the latest one
  per site and host (``server:<host>``, at most :data:`MAX_SERVER_HOSTS` hosts a site);
* **the prober's own** (:func:`~prober.certificates.own_certificates`: ``client``,
  ``signing``, a step's own signing certificate): read at start and at every reload, and
  again whenever the file changes on disk (looked at every ``[certificates]
  check_every``: a ``stat`` per file). A client certificate that changed is loaded, with
  its key, into the site's TLS context: new connections present the renewed one. A file
  that cannot be read (half-written, not PEM, gone) is logged once, shown on ``/status``
  (``error``), and the last certificate read stays the one judged and presented.

Each is judged by the warning ladder (:mod:`prober.certificates.ladder`, the host's
clock): the first step reached opens a ``certificate`` incident for the site and
certificate (kind ``certificate``, check ``certificate:<name>``; never a capability's
state), each further step is announced once (an ``escalated`` change), and a renewed
certificate (another one, beyond the first step) resolves it. Incidents go through the
incident service's external entry points, so they are written, silenced by maintenance
windows and notified like every other. The prober's own certificate, once expired or not
yet valid, also opens an outage of each capability whose checks use it (rule
``unusable certificate``, check ``certificate:<name>:<kind>``: the incident service keeps
one incident per check), whose failures it carries until the certificate is usable.

What the watch knows is on ``/status`` (``certificates``), in ``/metrics``
(``bank_prober_certificate_expiry_timestamp_seconds``) and in InfluxDB (a
``certificate`` point per certificate at each self-report). Never a key: only
certificates are read. Its incidents are saved in ``state_dir/certificates.json``, so a
restart neither opens them again nor repeats a step already announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from prober.atomic import write_atomic
from prober.certfacts import CertificateFacts
from prober.certificates import (
    Assessment,
    CertificateFileError,
    Ladder,
    OwnCertificate,
    assess,
    file_stamp,
    own_certificates,
    read_certificate_file,
)
from prober.certificates.inventory import PURPOSE_WORDS
from prober.incidents.capability import UNUSABLE_CERTIFICATE
from prober.results import JourneyResult, ServerCertificate
from prober.timefmt import utc_iso
from prober.writer.points import certificate_point

log = logging.getLogger("prober.daemon.certificates")

KIND = "certificate"
"""The kind of a certificate incident (not a capability: the service still works)."""
CHECK_PREFIX = "certificate:"
"""A certificate incident's ``check``: ``certificate:<name>`` (no configured check has a colon)."""
LADDER_RULE = "expiry warning"
STATE_FILE = "certificates.json"
MAX_SERVER_HOSTS = 16
"""Server certificates kept per site (hosts beyond, from templated URLs, are not tracked)."""
NOT_YET_VALID = -1
"""The step recorded for a certificate not valid yet."""


class CertificateIncidents(Protocol):
    """Where the watch opens, escalates and resolves its incidents (the incident service)."""

    def open_external(self, *, site: str, check: str, kind: str, location: str, outcome: str, reason: str,
                      rule: str, since_ns: int, exclusive: bool = True, absorbs_auth: bool = True,
                      absorbs: Iterable[str] = ()) -> str: ...

    def escalate_external(self, incident_id: str, *, reason: str) -> bool: ...

    def resolve_external(self, incident_id: str, *, resolved_ns: int, ended: str = "") -> bool: ...

    def adopt_external(self, incident_id: str, *, absorbs_auth: bool = True, absorbs: Iterable[str] = ()) -> bool: ...


@dataclass(slots=True)
class Watched:
    """One certificate the prober knows, and the incidents it has open."""

    site: str
    name: str
    purpose: str
    """``client``, ``signing`` or ``server``."""
    location: str
    own: OwnCertificate | None = None
    leaf: CertificateFacts | None = None
    earliest: CertificateFacts | None = None
    """The certificate of the chain that expires first: the one the ladder judges."""
    stamp: tuple[Any, ...] | None = None
    """The files' stamps when last read (own certificates)."""
    failed_stamp: tuple[Any, ...] | None = None
    error: str = ""
    server: ServerCertificate | None = None
    seen_by: str = ""
    seen_ns: int = 0
    incident: str = ""
    step: int | None = None
    fingerprint: str = ""
    """Of the certificate the open incident is about."""
    outages: dict[str, str] = field(default_factory=dict)
    """Capability → the id of its outage opened because this certificate is unusable."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.site, self.name)

    @property
    def words(self) -> str:
        return PURPOSE_WORDS[self.purpose]

    def document(self, now: float, ladder: Ladder) -> dict[str, Any]:
        """What ``/status`` shows of it: names and dates, never a key."""
        doc: dict[str, Any] = {"site": self.site, "certificate": self.name, "purpose": self.purpose,
                               "what": self.words}
        if self.leaf is not None and self.earliest is not None:
            verdict = assess(self.earliest, now, ladder)
            doc.update({
                "subject": self.leaf.subject, "issuer": self.leaf.issuer,
                "not_before": utc_iso(self.leaf.not_before), "not_after": utc_iso(self.leaf.not_after),
                "expires": utc_iso(self.earliest.not_after), "expiring": self.earliest.subject,
                "days_left": round(verdict.days_left, 2), "state": verdict.state, "warning_step": verdict.step,
            })
        else:
            doc["state"] = "unknown"
        if self.own is not None:
            doc.update({"file": self.own.path, "field": self.own.field, "used_by": list(self.own.checks),
                        "capabilities": list(self.own.kinds), "error": self.error or None})
        if self.server is not None:
            doc.update({"host": self.server.host, "tls_version": self.server.tls_version,
                        "verified": self.server.verified, "seen_by": self.seen_by,
                        "seen_at": utc_iso(self.seen_ns / 1e9) if self.seen_ns else None})
        doc["incident"] = self.incident or None
        doc["outages"] = dict(self.outages)
        return doc


def _server_facts(cert: ServerCertificate) -> tuple[CertificateFacts, CertificateFacts]:
    """The leaf and the chain's earliest expiry of a server certificate, as facts."""
    leaf = CertificateFacts(cert.subject, cert.issuer, cert.not_before, cert.not_after, cert.fingerprint)
    if cert.chain_not_after >= cert.not_after:
        return leaf, leaf
    return leaf, CertificateFacts(cert.earliest_subject, "", cert.not_before, cert.chain_not_after, cert.fingerprint)


class CertificateWatch:
    """Result consumer and file watcher: certificates → ladder → incidents, status, metrics, points.

    ``incidents`` receives the incidents (None: judge and report only); ``clock`` is the
    host's time in Unix seconds (the only clock the ladder trusts); ``check_every``
    overrides ``[certificates] check_every``.
    """

    def __init__(self, config: Any, *, state_dir: str | Path | None = None,
                 incidents: CertificateIncidents | None = None, clock: Any = time.time,
                 check_every: float | None = None) -> None:
        self.incidents = incidents
        self.clock = clock
        self.path = Path(state_dir if state_dir is not None else config.daemon.state_dir) / STATE_FILE
        self._check_every = check_every
        self.own: dict[tuple[str, str], Watched] = {}
        self.servers: dict[tuple[str, str], Watched] = {}
        self._seen: dict[tuple[str, str], tuple[ServerCertificate, str, str, int]] = {}
        self._restored: dict[tuple[str, str], dict[str, Any]] = {}
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._dirty = False
        self._configure(config)

    # -- configuration -----------------------------------------------------------------

    def _configure(self, config: Any) -> None:
        self.config = config
        self.ladder = Ladder(tuple(config.certificates.warn_days))
        self.check_every = self._check_every or config.certificates.check_every
        self.sites = {site.name: config.location_of(site) for site in config.sites}
        wanted = {own.key: own for own in own_certificates(config)}
        for key in [k for k in self.own if k not in wanted]:
            self._forget(self.own.pop(key), "the certificate is no longer configured")
        for key, own in wanted.items():
            watched = self.own.get(key)
            if watched is None:
                watched = self.own[key] = Watched(own.site, own.name, own.purpose, own.location)
                self._take_restored(watched)
            elif watched.own is not None and (watched.own.path, watched.own.key_path) != (own.path, own.key_path):
                watched.stamp = watched.failed_stamp = None  # another file: read it
            watched.own, watched.location = own, own.location
        for key in [k for k in self.servers if k[0] not in self.sites]:
            self._forget(self.servers.pop(key), "its site is no longer configured")

    def use_plans(self, plans: Iterable[Any]) -> None:
        """The TLS contexts of the running plans: a changed client certificate goes there."""
        self._contexts = {plan.site: plan.ssl_context for plan in plans if isinstance(plan.ssl_context, ssl.SSLContext)}

    def reload(self, config: Any) -> None:
        """Take a reloaded configuration: certificates added, gone or moved to other files."""
        self._configure(config)
        self.wake()

    # -- the consumer interface --------------------------------------------------------

    def consume(self, result: JourneyResult) -> None:
        """Keep the latest server certificate per site and host (cheap: no parsing here)."""
        for step in result.steps:
            cert = step.certificate
            if cert is None:
                continue
            key = (result.site, cert.host)
            known = self._seen.get(key)
            if known is None and len(self._seen) >= MAX_SERVER_HOSTS * max(len(self.sites), 1):
                continue
            if known is None or known[0].fingerprint != cert.fingerprint:
                self.wake()
            self._seen[key] = (cert, result.location, result.check, step.started_at_ns)

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._load()
        self.evaluate()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="certificate watch")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._save()

    def wake(self) -> None:
        """Evaluate soon (a new certificate was seen, the configuration changed)."""
        if self._wake is not None:
            self._wake.set()

    async def _loop(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.check_every)
            self._wake.clear()
            try:
                self.evaluate()
            except Exception:  # the watch must outlive one bad evaluation
                log.exception("certificate watch failed")

    # -- evaluation --------------------------------------------------------------------

    def evaluate(self) -> None:
        """Read changed files, take the servers' latest certificates, judge each one."""
        now = self.clock()
        for watched in self.own.values():
            self._read(watched)
        self._take_servers()
        for watched in (*self.own.values(), *self.servers.values()):
            self._judge(watched, now)
        if self._dirty:
            self._save()

    def _read(self, watched: Watched) -> None:
        own = watched.own
        assert own is not None
        try:
            stamp = tuple(file_stamp(path) for path in (own.path, own.key_path) if path)
        except CertificateFileError as exc:
            self._failed(watched, None, str(exc))
            return
        if stamp == watched.stamp or stamp == watched.failed_stamp:
            return
        try:
            found = read_certificate_file(own.path)
            if own.purpose == "client" and watched.stamp is not None:
                self._present(watched, own)
        except (CertificateFileError, OSError, ssl.SSLError, ValueError) as exc:
            self._failed(watched, stamp, exc if isinstance(exc, CertificateFileError) else
                         f"cannot load {own.path} with its key {own.key_path or own.path}: {_tls_reason(exc)}")
            return
        changed = watched.leaf is not None and watched.leaf.fingerprint != found.leaf.fingerprint
        watched.leaf, watched.earliest, watched.stamp = found.leaf, found.earliest, stamp
        watched.failed_stamp, watched.error = None, ""
        if changed:
            log.warning("site %s: %s %s read again from %s (%s, not after %s)", own.site, watched.words, own.name,
                        own.path, found.leaf.subject, utc_iso(found.leaf.not_after))

    def _present(self, watched: Watched, own: OwnCertificate) -> None:
        """Load a changed client certificate and its key into the site's TLS context
        (first into a scratch one: a pair that does not load leaves the live one alone)."""
        context = self._contexts.get(own.site)
        if context is None:
            return
        key = own.key_path or None
        ssl.create_default_context().load_cert_chain(own.path, key)
        context.load_cert_chain(own.path, key)

    def _failed(self, watched: Watched, stamp: tuple[Any, ...] | None, error: object) -> None:
        text = str(error)
        if text != watched.error:
            kept = (f"; still judging the last one read ({watched.leaf.subject}, not after "
                    f"{utc_iso(watched.leaf.not_after)})") if watched.leaf is not None else ""
            log.error("site %s: %s %s: %s%s", watched.site, watched.words, watched.name, text, kept)
        watched.error, watched.failed_stamp = text, stamp

    def _take_servers(self) -> None:
        per_site: dict[str, int] = {}
        for server in self.servers.values():
            per_site[server.site] = per_site.get(server.site, 0) + 1
        for (site, host), (cert, location, check, at_ns) in self._seen.items():
            if site not in self.sites:
                continue
            key = (site, f"server:{host}")
            watched = self.servers.get(key)
            if watched is None:
                if per_site.get(site, 0) >= MAX_SERVER_HOSTS:
                    continue
                per_site[site] = per_site.get(site, 0) + 1
                watched = self.servers[key] = Watched(site, key[1], "server", location)
                self._take_restored(watched)
            watched.server, watched.seen_by, watched.seen_ns, watched.location = cert, check, at_ns, location
            watched.leaf, watched.earliest = _server_facts(cert)
        self._seen.clear()

    def _judge(self, watched: Watched, now: float) -> None:
        facts = watched.earliest
        if facts is None:
            return
        verdict = assess(facts, now, self.ladder)
        step = NOT_YET_VALID if verdict.state == "not_yet_valid" else verdict.step
        now_ns = int(now * 1e9)
        if watched.incident and (step is None or watched.fingerprint != facts.fingerprint):
            self._resolve(watched.incident, now_ns)  # renewed (or the clock went back)
            watched.incident, watched.step, watched.fingerprint = "", None, ""
            self._dirty = True
        if step is not None and self.incidents is not None:
            reason = self._reason(watched, facts, verdict)
            if not watched.incident:
                watched.incident = self.incidents.open_external(
                    site=watched.site, check=CHECK_PREFIX + watched.name, kind=KIND, location=watched.location,
                    outcome="certificate", reason=reason, rule=LADDER_RULE, since_ns=now_ns, exclusive=False,
                    absorbs_auth=False)
                watched.step, watched.fingerprint = step, facts.fingerprint
                self._dirty = True
            elif step != watched.step:
                self.incidents.escalate_external(watched.incident, reason=reason)
                watched.step = step
                self._dirty = True
        if watched.own is not None:
            self._judge_outages(watched, verdict, now_ns)

    def _judge_outages(self, watched: Watched, verdict: Assessment, now_ns: int) -> None:
        """An own certificate expired or not yet valid: an outage of each capability using it."""
        own = watched.own
        assert own is not None and watched.earliest is not None
        if not verdict.unusable:
            for kind, incident in list(watched.outages.items()):
                self._resolve(incident, now_ns)
                del watched.outages[kind]
                self._dirty = True
            return
        if self.incidents is None:
            return
        for kind in own.kinds:
            if kind in watched.outages:
                continue
            consequence = ("the bank refuses the connections that present it" if own.purpose == "client"
                           else "the bank refuses the requests it signs")
            reason = (f"{watched.words} {own.name} ({watched.earliest.subject}) {verdict.words()} "
                      f"({utc_iso(watched.earliest.not_after)}): {consequence}; renew {own.field} = {own.path}")
            incident = self.incidents.open_external(
                site=own.site,
                check=f"{CHECK_PREFIX}{own.name}:{kind}",
                kind=kind,
                location=own.location,
                outcome="tls",
                reason=reason,
                rule=UNUSABLE_CERTIFICATE,
                since_ns=now_ns,
                exclusive=True,
                absorbs_auth=False,
                absorbs=[check for check, used in own.uses if used == kind],
            )
            if incident:
                watched.outages[kind] = incident
                self._dirty = True

    def _reason(self, watched: Watched, facts: CertificateFacts, verdict: Assessment) -> str:
        """What a certificate incident says: what, which, when, and where it is used."""
        leaf = watched.leaf
        when = (f"not before {utc_iso(facts.not_before)}" if verdict.state == "not_yet_valid"
                else f"on {utc_iso(facts.not_after)}")
        if watched.server is not None:
            cert = watched.server
            head = f"{watched.words} of {cert.host}"
            which = (f"({facts.subject})" if leaf is None or facts is leaf
                     else f"chain: {facts.subject} (issuer of {leaf.subject})")
            detail = f"issued by {cert.issuer}, served over {cert.tls_version} to check {watched.seen_by}"
            if not cert.verified:
                detail += " (not verified: verify = false)"
        else:
            own = watched.own
            assert own is not None
            head = f"{watched.words} {watched.name}"
            which = f"({facts.subject})" if leaf is None or facts is leaf else f"chain: {facts.subject}"
            detail = f"{own.field} = {own.path}, used by checks {', '.join(own.checks)}"
        return f"{head} {which} {verdict.words()}, {when}; {detail}"

    def _resolve(self, incident: str, now_ns: int, ended: str = "") -> None:
        if self.incidents is not None and incident:
            self.incidents.resolve_external(incident, resolved_ns=now_ns, ended=ended)

    def _forget(self, watched: Watched, why: str) -> None:
        """A certificate no longer configured (or its site gone): its incidents are
        closed, ``why`` saying so (:attr:`~prober.incidents.tracker.Incident.ended`)."""
        now_ns = int(self.clock() * 1e9)
        for incident in (watched.incident, *watched.outages.values()):
            if incident:
                log.info("site %s: certificate %s: %s: its incident %s is closed", watched.site, watched.name, why,
                         incident)
                self._resolve(incident, now_ns, ended=why)
        self._dirty = True

    # -- what the watch tells ------------------------------------------------------------

    def known(self) -> list[Watched]:
        """Every certificate with facts, own first, by site and name."""
        return sorted((w for w in (*self.own.values(), *self.servers.values()) if w.earliest is not None),
                      key=lambda w: (w.site, w.purpose == "server", w.name))

    def status(self) -> list[dict[str, Any]]:
        """``/status`` → ``certificates``: each one's site, purpose, subject, dates, days left."""
        now = self.clock()
        every = sorted((*self.own.values(), *self.servers.values()),
                       key=lambda w: (w.site, w.purpose == "server", w.name))
        return [w.document(now, self.ladder) for w in every]

    def expiries(self) -> list[tuple[str, str, float]]:
        """``(site, certificate, earliest not-after)`` for ``/metrics``."""
        return [(w.site, w.name, float(w.earliest.not_after)) for w in self.known() if w.earliest is not None]

    def points(self, *, instance: str, time_ns: int, precision: Any = "ns") -> list[str]:
        """One ``certificate`` point per certificate known (at each self-report)."""
        now = time_ns / 1e9
        return [certificate_point(
            site=w.site, certificate=w.name, purpose=w.purpose, location=w.location, instance=instance,
            not_after=w.earliest.not_after, expiry_days=w.earliest.days_left(now),
            subject=w.leaf.subject if w.leaf is not None else "", issuer=w.leaf.issuer if w.leaf is not None else "",
            time_ns=time_ns, precision=precision,
        ) for w in self.known() if w.earliest is not None]

    # -- persistence ---------------------------------------------------------------------

    def _take_restored(self, watched: Watched) -> None:
        saved = self._restored.pop(watched.key, None)
        if saved is not None:
            watched.incident, watched.fingerprint = saved["incident"], saved["fingerprint"]
            watched.step, watched.outages = saved["step"], saved["outages"]

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8")) if self.path.exists() else {}
            entries = dict(data.get("certificates", {}))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.error("cannot read the certificate state %s: %s; its incidents are not taken back", self.path, exc)
            return
        for text, item in entries.items():
            try:
                site, name = str(text).split("\x1f")
                saved = {"incident": str(item.get("incident", "")), "fingerprint": str(item.get("fingerprint", "")),
                         "step": None if item.get("step") is None else int(item["step"]),
                         "outages": {str(k): str(v) for k, v in dict(item.get("outages", {})).items()}}
            except (ValueError, TypeError, AttributeError):
                log.error("certificate state %s: a malformed entry ignored", self.path)
                continue
            self._adopt(site, name, saved)

    def _adopt(self, site: str, name: str, saved: dict[str, Any]) -> None:
        """Take back the incidents of a certificate from before a restart."""
        watched = self.own.get((site, name))
        uses = watched.own.uses if watched is not None and watched.own is not None else ()
        if self.incidents is not None:
            if saved["incident"] and not self.incidents.adopt_external(saved["incident"], absorbs_auth=False):
                saved["incident"], saved["step"] = "", None
            for kind, incident in list(saved["outages"].items()):
                absorbs = [check for check, used in uses if used == kind]
                if not self.incidents.adopt_external(incident, absorbs_auth=False, absorbs=absorbs):
                    del saved["outages"][kind]
        if site not in self.sites or (not name.startswith("server:") and watched is None):
            stale = Watched(site, name, "server", "", incident=saved["incident"], outages=saved["outages"])
            self._forget(stale, "the certificate is no longer configured")
            return
        if watched is not None:
            self._restored[(site, name)] = saved
            self._take_restored(watched)
        else:
            self._restored[(site, name)] = saved  # a server's: taken when its certificate is next seen

    def to_json(self) -> dict[str, Any]:
        entries = {}
        for watched in (*self.own.values(), *self.servers.values()):
            if watched.incident or watched.outages:
                entries[f"{watched.site}\x1f{watched.name}"] = {
                    "incident": watched.incident, "step": watched.step, "fingerprint": watched.fingerprint,
                    "outages": watched.outages}
        for (site, name), saved in self._restored.items():
            entries.setdefault(f"{site}\x1f{name}", saved)
        return {"certificates": entries}

    def _save(self) -> None:
        self._dirty = False
        try:
            write_atomic(self.path, json.dumps(self.to_json()).encode())
        except OSError as exc:
            log.error("cannot save the certificate state to %s: %s", self.path, exc)


def _tls_reason(exc: BaseException) -> str:
    """A short reason for a certificate and key that do not load together (never their content)."""
    if isinstance(exc, ssl.SSLError):
        return (exc.reason or "not a certificate and key that belong together").lower().replace("_", " ")
    if isinstance(exc, OSError):
        return (exc.strerror or str(exc)).lower()
    return "not a certificate and key that belong together"
