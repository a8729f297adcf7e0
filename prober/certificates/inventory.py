"""Which certificate files a configuration uses, what for, and which checks need them.

The prober's own certificates (PSD2's eIDAS certificates, mostly):

========= =============================================== ===============================
name      configured as                                   used by
========= =============================================== ===============================
client    ``[sites.tls] cert_file`` (QWAC: mutual TLS)    every enabled check of the site
                                                          (each https connection presents
                                                          it; ``tls_client_auth`` token
                                                          steps authenticate with it)
signing   ``[sites.signing] certificate_file`` (QSealC)   the checks with a step signed by
                                                          the site's signer
signing:  a step's own ``signing.certificate_file``,      the checks with such a step
<check>/  when it is not the site's file (a token step
<step>    signing its request, another profile)
========= =============================================== ===============================

The name is the ``certificate`` label and tag; each file appears once per site, under
the first name that uses it. Keys have no expiry and are not listed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

Purpose = Literal["client", "signing"]

PURPOSE_WORDS: dict[str, str] = {
    "client": "mutual TLS client certificate",
    "signing": "request signing certificate",
    "server": "server certificate",
}


@dataclass(frozen=True, slots=True)
class OwnCertificate:
    """One certificate file the prober presents or signs with, for one site."""

    site: str
    name: str
    purpose: Purpose
    field: str
    """Where it is configured, as errors name it: ``sites[bank].tls.cert_file``."""
    path: str
    location: str
    uses: tuple[tuple[str, str], ...]
    """``(check, kind)`` of each enabled check that uses it."""
    key_path: str = ""
    """The key presented with a client certificate (``[sites.tls] key_file``; "" when the
    certificate file holds it)."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.site, self.name)

    @property
    def checks(self) -> tuple[str, ...]:
        """The enabled checks that use it."""
        return tuple(check for check, _ in self.uses)

    @property
    def kinds(self) -> tuple[str, ...]:
        """Their capabilities (what an expired certificate takes down)."""
        return tuple(dict.fromkeys(kind for _, kind in self.uses))

    @property
    def words(self) -> str:
        """``mutual TLS client certificate``, ``request signing certificate``."""
        return PURPOSE_WORDS[self.purpose]


def own_certificates(config: Any) -> list[OwnCertificate]:
    """The certificate files of ``config`` (a :class:`~prober.config.model.Config`), site by site."""
    out: list[OwnCertificate] = []
    for site in config.sites:
        out.extend(_site_certificates(site, config.location_of(site)))
    return out


def _site_certificates(site: Any, location: str) -> list[OwnCertificate]:
    """The certificate files of one site, each once, under the first name that uses it."""
    enabled = [check for check in site.checks if check.enabled]
    found: dict[str, OwnCertificate] = {}

    def add(name: str, purpose: Purpose, field: str, path: str, checks: list[Any], key_path: str = "") -> None:
        if not checks:
            return
        uses = tuple((c.name, c.kind) for c in checks)
        earlier = found.get(path)
        if earlier is not None:  # the same file for another use: one entry, every check
            found[path] = replace(earlier, uses=tuple(dict.fromkeys((*earlier.uses, *uses))))
            return
        found[path] = OwnCertificate(site.name, name, purpose, field, path, location, uses, key_path)

    where = f"sites[{site.name}]"
    if site.tls.cert_file:
        add("client", "client", f"{where}.tls.cert_file", site.tls.cert_file, enabled, site.tls.key_file or "")
    site_signing = getattr(site.signing, "certificate_file", None)
    if site_signing:
        signed = [c for c in enabled if not c.is_browser and any(
            s.sign and s.signing is None and s.oauth is None for s in c.steps)]
        add("signing", "signing", f"{where}.signing.certificate_file", site_signing, signed)
    for check in enabled:
        if check.is_browser:
            continue
        for step in check.steps:
            path = getattr(step.signing, "certificate_file", None)
            if path:
                add(f"signing:{check.name}/{step.name}", "signing",
                    f"{where}.checks[{check.name}].steps[{step.name}].signing.certificate_file", path, [check])
    return list(found.values())
