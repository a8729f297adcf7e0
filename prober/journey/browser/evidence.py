"""Evidence of failed browser runs: a screenshot and a Playwright trace, scrubbed, bounded.

On a failed run the runner takes a screenshot (password fields and every field filled
with a secret masked by Playwright before the picture is taken) and stops the run's
trace into a private temporary file. :func:`scrub_trace` then rewrites the trace with
every secret of the run masked as ``***`` in every entry (actions, network log, DOM
snapshots, response bodies), in each form it may take there: as is, percent-encoded,
base64, JSON- and HTML-escaped. The secrets are those of the configuration, the values
extracted as secret, every cookie of the run's context, the tokens the page put in its
URLs or its storage, and the values of ``Authorization``, ``Cookie`` and ``Set-Cookie``
headers found in the trace's own network log. Only then is it kept.

:class:`EvidenceStore` keeps, per check, at most ``runs`` failed runs' files and
``max_bytes`` bytes of them under ``<state_dir>/evidence/<site>/<check>/``; the oldest
go first. Files are written atomically (a temporary name, then a rename).
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from prober.redact import Redactor

log = logging.getLogger("prober.journey.browser")

_HEADER_SECRETS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
_IMAGE = (".jpeg", ".jpg", ".png", ".webp")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.\-]")
EVIDENCE_NAME = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}\.(?:png|trace\.zip)$")
"""The names the runner gives evidence files (``20261207T084522Z-9c5be9c8.png``)."""


def secret_forms(secret: str) -> set[str]:
    """Forms of ``secret`` a trace may hold besides those :class:`Redactor` knows (it masks
    the percent-encoded and base64 ones itself): JSON- and HTML-escaped."""
    forms = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], html.escape(secret)}
    forms.discard(secret)
    return forms


def learn_header_secrets(trace: zipfile.ZipFile, redact: Redactor) -> None:
    """Add to ``redact`` the values of credential headers in the trace's network log
    (a bearer token a script sent, a session cookie), and of cookies set."""
    for name in trace.namelist():
        if not name.endswith(".network"):
            continue
        for line in trace.read(name).decode("utf-8", "replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            snapshot = event.get("snapshot") if isinstance(event, dict) else None
            if not isinstance(snapshot, dict):
                continue
            for side in ("request", "response"):
                part = snapshot.get(side)
                for header in (part or {}).get("headers", []) if isinstance(part, dict) else []:
                    name = str(header.get("name", "")).lower() if isinstance(header, dict) else ""
                    if name in _HEADER_SECRETS:
                        _add_header_value(name, str(header.get("value", "")), redact)
                for cookie in (part or {}).get("cookies", []) if isinstance(part, dict) else []:
                    if isinstance(cookie, dict):
                        redact.add(str(cookie.get("value", "")))


def _add_header_value(name: str, value: str, redact: Redactor) -> None:
    """The secret parts of a credential header: a cookie's value (not its attributes),
    the credential after an authorization scheme, the whole value otherwise."""
    if name in ("cookie", "set-cookie"):
        pairs = value.split(";") if name == "cookie" else value.split(";")[:1]
        for pair in pairs:
            _cookie, eq, cookie_value = pair.strip().partition("=")
            if eq and cookie_value:
                redact.add(cookie_value)
        return
    redact.add(value)
    scheme, _, credential = value.partition(" ")
    if credential and scheme.lower() in ("bearer", "basic", "token", "digest"):
        redact.add(credential.strip())


def scrub_trace(source: Path, target: Path, redact: Redactor) -> None:
    """Write ``source`` (a trace zip) to ``target`` with every secret masked."""
    with zipfile.ZipFile(source) as trace:
        learn_header_secrets(trace, redact)
        scrub = _with_forms(redact)
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as out:
            for info in trace.infolist():
                data = trace.read(info)
                if not info.filename.lower().endswith(_IMAGE):
                    data = scrub(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
                out.writestr(info.filename, data)


def _with_forms(redact: Redactor) -> Redactor:
    """A redactor that also knows the escaped forms of ``redact``'s secrets."""
    scrub = Redactor()
    for secret in redact.secrets:
        scrub.add(secret)
        for form in secret_forms(secret):
            scrub.add(form)
    return scrub


@dataclass(frozen=True, slots=True)
class EvidenceStore:
    """Where failed runs' files go, and how many of them are kept."""

    root: Path
    runs: int = 10
    max_bytes: int = 50 << 20

    def directory(self, site: str, check: str) -> Path:
        return self.root / _SAFE_NAME.sub("_", site) / _SAFE_NAME.sub("_", check)

    def prune(self, site: str, check: str) -> None:
        """Remove the oldest runs' files beyond ``runs`` runs or ``max_bytes`` bytes."""
        folder = self.directory(site, check)
        try:
            files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
        except OSError:
            return
        by_run: dict[str, list[Path]] = {}
        for path in files:
            by_run.setdefault(path.name.split(".", 1)[0], []).append(path)
        ordered = sorted(by_run.items(), key=lambda item: item[0], reverse=True)  # names start with the time
        kept_bytes, kept_runs = 0, 0
        for _run, paths in ordered:
            size = sum(_size(p) for p in paths)
            if kept_runs < self.runs and kept_bytes + size <= self.max_bytes:
                kept_runs += 1
                kept_bytes += size
                continue
            for path in paths:
                try:
                    path.unlink()
                except OSError as exc:
                    log.warning("cannot remove old evidence %s: %s", path, exc.strerror)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def place(tmp: Path, final: Path) -> None:
    """Move a finished file into place atomically, readable by its owner only."""
    os.chmod(tmp, 0o600)
    os.replace(tmp, final)
