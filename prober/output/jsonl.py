"""One JSON object per journey result, for ``prober check --json``.

Only result fields are written: error strings are already redacted by the runner, and
no request, header or extracted value is part of a result.
"""

from __future__ import annotations

import json
from typing import Any

from prober.results import JourneyResult, ServerCertificate, StepResult


def _step(step: StepResult) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": step.name,
        "outcome": step.outcome.value,
        "success": step.success,
        "duration_ms": round(step.duration_ms, 3),
        "http_status": step.http_status,
        "bytes": step.bytes,
        "error": step.error,
        "always_run": step.always_run,
        "attempts": step.attempts,
    }
    if step.phases is not None:
        p = step.phases
        data["phases"] = {
            "dns_ms": round(p.dns_ms, 3),
            "connect_ms": round(p.connect_ms, 3),
            "tls_ms": round(p.tls_ms, 3),
            "ttfb_ms": round(p.ttfb_ms, 3),
            "transfer_ms": round(p.transfer_ms, 3),
        }
    if step.certificate is not None:
        data["tls"] = _tls(step.certificate, step.started_at_ns)
    if step.page is not None:
        page = step.page
        data["page"] = {
            **{name: (round(value, 4) if value is not None else None) for name, value in (
                ("dcl_ms", page.dcl_ms), ("load_ms", page.load_ms), ("fcp_ms", page.fcp_ms),
                ("lcp_ms", page.lcp_ms), ("cls", page.cls))},
            "console_errors": page.console_errors,
            "page_errors": page.page_errors,
            "failed_requests": page.failed_requests,
        }
    return data


def _tls(certificate: ServerCertificate, at_ns: int) -> dict[str, Any]:
    """The server certificate of a step over TLS, with the same names as its ``step`` point's fields."""
    return {
        "version": certificate.tls_version,
        "host": certificate.host,
        "cert_subject": certificate.subject,
        "cert_issuer": certificate.issuer,
        "cert_not_after": certificate.not_after,
        "cert_expiry_days": round(certificate.expiry_days(at_ns / 1e9), 3),
        "cert_chain_not_after": certificate.chain_not_after,
        "chain_earliest_subject": certificate.earliest_subject,
        "verified": certificate.verified,
    }


def result_to_dict(result: JourneyResult) -> dict[str, Any]:
    """The JSON shape of a result (the fields of the README's `prober check --json` contract)."""
    return {
        "site": result.site,
        "check": result.check,
        "kind": result.kind,
        "location": result.location,
        "success": result.success,
        "outcome": result.outcome.value,
        "duration_ms": round(result.duration_ms, 3),
        "failed_step": result.failed_step,
        "error": result.error,
        "run_id": result.run_id,
        "trace_id": result.trace_id,
        "steps": [_step(s) for s in result.steps],
        **({"evidence": list(result.evidence)} if result.evidence else {}),
    }


def to_json_line(result: JourneyResult) -> str:
    return json.dumps(result_to_dict(result), ensure_ascii=False, separators=(",", ":"))
