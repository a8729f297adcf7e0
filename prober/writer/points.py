"""InfluxDB line protocol for journey results, incidents and the prober's self-report.

The measurements, tags and fields are the schema contract (README, "Schema"; docs/ARCHITECTURE.md, "Contracts"):

========== ======================================= =========================================
measurement tags                                    fields
========== ======================================= =========================================
check       site, check, kind, location, instance,  success (int), duration_ms, failed_step,
            outcome (+ the check's own tags)        error, steps (int)
step        site, check, kind, step, location,      success (int), duration_ms, dns_ms,
            instance, outcome (+ the check's own    connect_ms, tls_ms, ttfb_ms, transfer_ms,
            tags)                                   http_status (int), bytes (int), error;
                                                    browser steps also dcl_ms, load_ms,
                                                    fcp_ms, lcp_ms, cls, console_errors,
                                                    page_errors, failed_requests (int);
                                                    over TLS also cert_not_after,
                                                    cert_chain_not_after (int, Unix s),
                                                    cert_expiry_days (float), cert_issuer,
                                                    tls_version
incident    site, check, kind, location, instance,  reason, failed_step, duration_s
            state
prober      location, instance                      checks, running, schedule_lag_ms,
                                                    spooled_points, write_errors,
                                                    dropped_points, written_points, last_error
certificate site, certificate, purpose, location,    not_after (int, Unix s), expiry_days,
            instance                                subject, issuer
========== ======================================= =========================================

``instance`` names the prober process that made the point (``[prober] instance``, with
a suffix per shard or worker, see :mod:`prober.daemon.sharding`), so that two probers
never write into the same series; it is left out when empty (the writer of a bare
:class:`~prober.writer.ResultWriter` that was given none).

One ``check`` point per journey run and one ``step`` point per *executed* step (skipped
steps are visible in the journey's ``steps`` count and ``failed_step``, not as points).

Encoding rules:

* tags are written in key order (what InfluxDB stores anyway); a tag whose value is empty
  is left out, since the line protocol has no empty tag values;
* commas, spaces and ``=`` in tag values are backslash-escaped; newlines and other
  control characters (which the protocol cannot carry) become spaces, and a backslash
  becomes ``/`` (InfluxDB 1.x has no way to escape a backslash in a tag);
* string fields escape ``"`` and ``\\``; newlines become spaces; strings are always
  present, empty when there is nothing to say;
* integers carry the ``i`` suffix; floats are always written as floats (``5.0``) so a
  field never changes type; a non-finite float (NaN, inf) is left out;
* ``http_status`` is left out when no response arrived, the phase fields when the step
  recorded no phases (a zero would be a fake measurement);
* the timestamp is the journey's or step's ``started_at_ns``, scaled to ``precision``.

This is a small dedicated encoder rather than :class:`influxdb_client.Point`: it is on the
hot path (about 1–3 µs per point against ~15–25 µs for ``Point.to_line_protocol()``), and
it caches the escaped tag prefix of each check.
"""

from __future__ import annotations

import math

from prober.config.types import Precision
from prober.results import IncidentState, JourneyResult, PageMetrics, ServerCertificate, StepResult

__all__ = [
    "PRECISION_DIVISOR",
    "certificate_point",
    "escape_field_string",
    "escape_tag",
    "incident_point",
    "journey_lines",
    "prober_point",
    "rescale_lines",
]

PRECISION_DIVISOR: dict[str, int] = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
"""Nanoseconds per unit of each write precision."""

_CONTROL: dict[int | str, str] = {c: " " for c in range(32)}
_TAG_TABLE = str.maketrans({**_CONTROL, ",": "\\,", "=": "\\=", " ": "\\ ", "\\": "/"})
_FIELD_TABLE = str.maketrans({**_CONTROL, '"': '\\"', "\\": "\\\\"})
_TAG_SPECIALS = frozenset(",= \\" + "".join(map(chr, range(32))))
_FIELD_SPECIALS = frozenset('"\\' + "".join(map(chr, range(32))))

_tag_cache: dict[str, str] = {}
_TAG_CACHE_MAX = 50_000


def escape_tag(value: str) -> str:
    """Escape a tag key, tag value or field key (``,``, ``=``, space; control chars → space).

    A backslash becomes ``/``: InfluxDB 1.x keeps backslashes in tags literally, and one
    before an escaped character or at the end of a value breaks the line.
    """
    cached = _tag_cache.get(value)
    if cached is not None:
        return cached
    escaped = value.translate(_TAG_TABLE) if not _TAG_SPECIALS.isdisjoint(value) else value
    if len(_tag_cache) >= _TAG_CACHE_MAX:
        _tag_cache.clear()
    _tag_cache[value] = escaped
    return escaped


def escape_field_string(value: str) -> str:
    """Quote a string field value: escape ``"`` and ``\\``, newlines/control chars → space."""
    if _FIELD_SPECIALS.isdisjoint(value):
        return f'"{value}"'
    return f'"{value.translate(_FIELD_TABLE)}"'


def _tags(pairs: list[tuple[str, str]]) -> str:
    """``,k=v,k=v`` for non-empty values; ``pairs`` must already be in key order."""
    return "".join(f",{k}={escape_tag(v)}" for k, v in pairs if v)


def _float(value: float) -> str | None:
    value = float(value)
    return repr(value) if math.isfinite(value) else None


def _ts(ns: int, divisor: int) -> int:
    return ns if divisor == 1 else ns // divisor


# Per check, its escaped tags (the check's own tags included) in three runs, so that every
# line's tags stay in key order: those before "outcome", between "outcome" and "step",
# and after "step".
_prefix_cache: dict[tuple[str, str, str, str, str, tuple[tuple[str, str], ...]], tuple[str, str, str]] = {}


def _check_prefix(result: JourneyResult, instance: str) -> tuple[str, str, str]:
    key = (result.site, result.check, result.kind, result.location, instance, result.tags)
    cached = _prefix_cache.get(key)
    if cached is None:
        pairs = sorted([("check", result.check), ("instance", instance), ("kind", result.kind),
                        ("location", result.location), ("site", result.site), *result.tags])
        cached = (
            _tags([p for p in pairs if p[0] < "outcome"]),
            _tags([p for p in pairs if "outcome" < p[0] < "step"]),
            _tags([p for p in pairs if p[0] > "step"]),
        )
        if len(_prefix_cache) >= _TAG_CACHE_MAX:
            _prefix_cache.clear()
        _prefix_cache[key] = cached
    return cached


def journey_lines(result: JourneyResult, precision: Precision = "ns", instance: str = "") -> list[str]:
    """Line protocol for one journey run: one ``check`` line, one ``step`` line per executed step."""
    divisor = PRECISION_DIVISOR[precision]
    middle, site, tail = _check_prefix(result, instance)
    outcome = str(result.outcome.value)
    duration = _float(result.duration_ms)
    lines = [
        f"check{middle},outcome={escape_tag(outcome)}{site}{tail} "
        f"success={1 if result.success else 0}i"
        + (f",duration_ms={duration}" if duration is not None else "")
        + f",failed_step={escape_field_string(result.failed_step)}"
        f",error={escape_field_string(result.error)}"
        f",steps={len(result.steps)}i"
        + (f",trace_id={escape_field_string(result.trace_id)}" if result.trace_id else "")
        + f" {_ts(result.started_at_ns, divisor)}"
    ]
    for step in result.steps:
        if step.executed:
            lines.append(_step_line(step, middle, site, tail, result.started_at_ns, divisor))
    return lines


def _step_line(step: StepResult, middle: str, site: str, tail: str, journey_ns: int, divisor: int) -> str:
    outcome = step.outcome.value
    parts = [f"success={1 if step.success else 0}i"]
    duration = _float(step.duration_ms)
    if duration is not None:
        parts.append(f"duration_ms={duration}")
    phases = step.phases
    if phases is not None:
        for name, value in (
            ("dns_ms", phases.dns_ms),
            ("connect_ms", phases.connect_ms),
            ("tls_ms", phases.tls_ms),
            ("ttfb_ms", phases.ttfb_ms),
            ("transfer_ms", phases.transfer_ms),
        ):
            text = _float(value)
            if text is not None:
                parts.append(f"{name}={text}")
    if step.http_status is not None:
        parts.append(f"http_status={int(step.http_status)}i")
    parts.append(f"bytes={int(step.bytes)}i")
    if step.page is not None:
        parts.extend(_page_fields(step.page))
    ts = step.started_at_ns or journey_ns
    if step.certificate is not None:
        parts.extend(_certificate_fields(step.certificate, ts))
    parts.append(f"error={escape_field_string(step.error)}")
    step_tag = f",step={escape_tag(step.name)}" if step.name else ""
    return f"step{middle},outcome={escape_tag(outcome)}{site}{step_tag}{tail} {','.join(parts)} {_ts(ts, divisor)}"


MAX_ISSUER = 200
"""Characters of a certificate's issuer kept in a point (a bank's text: bounded)."""


def _certificate_fields(certificate: ServerCertificate, at_ns: int) -> list[str]:
    """The server certificate of a step over TLS: the leaf's not-after and days left at
    the step's start, the chain's earliest not-after, the leaf's issuer, the TLS version."""
    days = _float(certificate.expiry_days(at_ns / 1e9))
    return [
        f"cert_not_after={int(certificate.not_after)}i",
        f"cert_chain_not_after={int(certificate.chain_not_after)}i",
        *([f"cert_expiry_days={days}"] if days is not None else []),
        f"cert_issuer={escape_field_string(certificate.issuer[:MAX_ISSUER])}",
        f"tls_version={escape_field_string(certificate.tls_version)}",
    ]


def _page_fields(page: PageMetrics) -> list[str]:
    """A browser step's fields: the navigation's and the Web Vitals' times when it loaded a
    document (left out otherwise, like phases), and its three counts, always."""
    out = []
    for name, value in (("dcl_ms", page.dcl_ms), ("load_ms", page.load_ms), ("fcp_ms", page.fcp_ms),
                        ("lcp_ms", page.lcp_ms), ("cls", page.cls)):
        text = _float(value) if value is not None else None
        if text is not None:
            out.append(f"{name}={text}")
    out += [f"console_errors={int(page.console_errors)}i", f"page_errors={int(page.page_errors)}i",
            f"failed_requests={int(page.failed_requests)}i"]
    return out


def incident_point(
    *,
    site: str,
    check: str,
    kind: str,
    location: str,
    state: IncidentState,
    reason: str,
    failed_step: str,
    duration_s: float,
    time_ns: int,
    precision: Precision = "ns",
    instance: str = "",
) -> str:
    """One ``incident`` line: a check's incident opened or resolved.

    ``duration_s`` is how long the incident has lasted (0 when it opens).
    """
    if state not in ("open", "resolved"):
        raise ValueError(f"incident state must be 'open' or 'resolved', not {state!r}")
    tags = _tags([("check", check), ("instance", instance), ("kind", kind), ("location", location), ("site", site),
                  ("state", state)])
    duration = _float(duration_s)
    fields = [f"reason={escape_field_string(reason)}", f"failed_step={escape_field_string(failed_step)}"]
    if duration is not None:
        fields.append(f"duration_s={duration}")
    return f"incident{tags} {','.join(fields)} {_ts(time_ns, PRECISION_DIVISOR[precision])}"


def prober_point(
    *,
    location: str,
    instance: str,
    time_ns: int,
    checks: int = 0,
    running: int = 0,
    schedule_lag_ms: float = 0.0,
    written_points: int = 0,
    spooled_points: int = 0,
    dropped_points: int = 0,
    write_errors: int = 0,
    last_error: str = "",
    lockout: dict[str, int] | None = None,
    precision: Precision = "ns",
) -> str:
    """One ``prober`` self-report line.

    The writer counters match :class:`prober.writer.WriterStats`, so a daemon can pass
    ``**dataclasses.asdict(writer.stats)``. ``lockout`` adds the lockout protection's
    integer fields (``sites_backing_off``, ``sites_credentials_refused``, ``lockout_skips``).
    """
    tags = _tags([("instance", instance), ("location", location)])
    lag = _float(schedule_lag_ms)
    fields = [f"checks={int(checks)}i", f"running={int(running)}i"]
    if lag is not None:
        fields.append(f"schedule_lag_ms={lag}")
    fields += [
        f"written_points={int(written_points)}i",
        f"spooled_points={int(spooled_points)}i",
        f"dropped_points={int(dropped_points)}i",
        f"write_errors={int(write_errors)}i",
        f"last_error={escape_field_string(last_error)}",
    ]
    fields += [f"{name}={int(value)}i" for name, value in (lockout or {}).items()]
    return f"prober{tags} {','.join(fields)} {_ts(time_ns, PRECISION_DIVISOR[precision])}"


def certificate_point(
    *,
    site: str,
    certificate: str,
    purpose: str,
    location: str,
    instance: str,
    not_after: int,
    expiry_days: float,
    subject: str,
    issuer: str,
    time_ns: int,
    precision: Precision = "ns",
) -> str:
    """One ``certificate`` line: a certificate's expiry as the prober knows it now.

    ``certificate`` is its name (``client``, ``signing``, ``server:<host>``…), ``purpose``
    one of a closed set (``client``, ``signing``, ``server``); ``not_after`` the earliest
    expiry of the certificate and its chain (Unix seconds).
    """
    tags = _tags([("certificate", certificate), ("instance", instance), ("location", location),
                  ("purpose", purpose), ("site", site)])
    days = _float(expiry_days)
    fields = [f"not_after={int(not_after)}i", *([f"expiry_days={days}"] if days is not None else []),
              f"subject={escape_field_string(subject[:MAX_ISSUER])}",
              f"issuer={escape_field_string(issuer[:MAX_ISSUER])}"]
    return f"certificate{tags} {','.join(fields)} {_ts(time_ns, PRECISION_DIVISOR[precision])}"


def rescale_lines(text: str, source: Precision, target: Precision) -> str:
    """Convert the timestamps of newline-separated lines from one precision to another.

    Used when the spool holds lines written with another precision than the sink's.
    """
    if source == target:
        return text
    num, den = PRECISION_DIVISOR[source], PRECISION_DIVISOR[target]
    out = []
    for line in text.split("\n"):
        head, _, stamp = line.rpartition(" ")
        if head and stamp.lstrip("-").isdigit():
            line = f"{head} {int(stamp) * num // den}"
        out.append(line)
    return "\n".join(out)
