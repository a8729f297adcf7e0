"""``prober validate``'s look at the configured certificates: warn early, refuse what cannot work.

Each certificate file of the configuration (:func:`~prober.certificates.inventory.own_certificates`)
is judged at the host's time by the warning ladder of ``[certificates]``:

* expired, or not valid yet → a problem (``prober validate`` exits 2), naming the file
  the site is configured in, the field, the certificate's file and dates;
* within the ladder's first step → a warning (one line per certificate; exit 0);
* otherwise nothing.

``prober run`` does not refuse such a configuration: the other sites still need probing,
and an expired certificate is reported there as an outage of the capabilities that use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prober.certificates.files import CertificateFileError, read_certificate_file
from prober.certificates.inventory import own_certificates
from prober.certificates.ladder import Ladder, assess
from prober.timefmt import utc_iso


def check_configured(config: Any, origins: Mapping[str, str], now: float) -> tuple[list[str], list[str]]:
    """``(problems, warnings)``: one line each. ``origins`` maps a site's name to the file
    it is configured in (``<config>`` when unknown)."""
    ladder = Ladder(tuple(config.certificates.warn_days))
    problems: list[str] = []
    warnings: list[str] = []
    for own in own_certificates(config):
        where = f"{origins.get(own.site, '<config>')}: {own.field}"
        try:
            found = read_certificate_file(own.path)
        except CertificateFileError as exc:
            problems.append(f"{where}: {exc}")
            continue
        facts = found.earliest
        named = f"certificate {own.path} ({found.leaf.subject})"
        if facts is not found.leaf:
            named += f", its chain's {facts.subject},"
        verdict = assess(facts, now, ladder)
        if verdict.state == "expired":
            problems.append(f"{where}: {named} expired on {utc_iso(facts.not_after)}: the bank will refuse it")
        elif verdict.state == "not_yet_valid":
            problems.append(f"{where}: {named} is not valid before {utc_iso(facts.not_before)} "
                            f"(this host's clock says {utc_iso(now)})")
        elif verdict.state == "warning":
            warnings.append(f"{where}: {named} {verdict.words()} ({utc_iso(facts.not_after)}), within the "
                            f"{ladder.first}-day warning of [certificates] warn_days")
    return problems, warnings
