"""Evidence of a failed browser run: named in the notification, linked from the status
page's internal view (not from a public one), its files bounded per check; and the page
figures in the step points."""

from __future__ import annotations

from pathlib import Path

from prober.config.statuspage import StatusPageConfig
from prober.daemon.status import StatusStore
from prober.incidents import IncidentStatus
from prober.journey.browser.evidence import EvidenceStore
from prober.journey.browser.judge import parse_number
from prober.notify.message import Message
from prober.results import JourneyResult, Outcome, PageMetrics, StepResult
from prober.statuspage.view import build_view
from prober.writer.points import journey_lines

SHOT = "/var/lib/bank-prober/state/evidence/bank/web/20261207T084522Z-9c5be9c8.png"


def _result(outcome: Outcome, evidence: tuple[str, ...] = ()) -> JourneyResult:
    step = StepResult(name="balances", outcome=outcome, duration_ms=12.0, http_status=200,
                      page=PageMetrics(dcl_ms=80.0, load_ms=95.0, fcp_ms=108.0, lcp_ms=388.0, cls=0.0,
                                       console_errors=1, page_errors=0, failed_requests=2))
    return JourneyResult(site="bank", check="web", kind="accounts", location="par", outcome=outcome,
                         started_at_ns=1, duration_ms=20.0, steps=(step,), failed_step="" if outcome is Outcome.OK
                         else "balances", evidence=evidence)


def test_the_notification_names_the_evidence() -> None:
    message = Message(event="opened", incident_id="i", site="bank", kind="accounts", check="web", location="par",
                      failed_step="balances", outcome="assertion", error="assertion failed", reason="3 failures",
                      since_ns=0, at_ns=0, duration_s=0.0, capability_state="outage", site_summary="s",
                      evidence=(SHOT,))
    assert f"Evidence of the latest failed run: {SHOT}" in message.text
    assert message.to_json()["evidence"] == [SHOT]


def test_the_internal_view_links_the_latest_failed_runs_evidence_and_a_success_clears_it() -> None:
    store = StatusStore()
    store.consume(_result(Outcome.ASSERTION, (SHOT,)))
    assert store.evidence("bank", "web") == (SHOT,)

    def links(public: bool) -> tuple[str, ...]:
        settings = StatusPageConfig.model_validate({"title": "t", "public": public, "history_days": 1})
        view = build_view(settings, incidents=IncidentStatus({}, (), ()), runs=store.checks.values(), maintenance=[],
                          history={}, history_source="local")
        return tuple(link for row in view.rows for cell in row.cells for line in cell.checks for link in line.evidence)

    assert links(False) == ("/evidence/bank/web/20261207T084522Z-9c5be9c8.png",)
    assert links(True) == ()
    store.consume(_result(Outcome.OK))
    assert store.evidence("bank", "web") == () and links(False) == ()


def test_page_figures_are_step_fields() -> None:
    [_, step] = journey_lines(_result(Outcome.OK))
    for field in ("dcl_ms=80.0", "load_ms=95.0", "fcp_ms=108.0", "lcp_ms=388.0", "cls=0.0", "console_errors=1i",
                  "page_errors=0i", "failed_requests=2i"):
        assert field in step, step


def test_evidence_is_pruned_oldest_first_by_runs_and_bytes(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path, runs=3, max_bytes=250)
    folder = store.directory("bank", "web")
    folder.mkdir(parents=True)
    for n in range(5):
        (folder / f"2026120{n}T000000Z-0000000{n}.png").write_bytes(b"x" * 100)
    store.prune("bank", "web")
    assert sorted(p.name[:9] for p in folder.iterdir()) == ["20261203T", "20261204T"]  # 250 bytes: two of them


def test_numbers_are_read_as_customers_write_them() -> None:
    cases = {"1,523.47 EUR": 1523.47, "1 523,47 €": 1523.47, "0.00 EUR": 0.0, "−12.50": -12.5, "1,523": 1523.0,
             "1.523,47": 1523.47, "Total: 8,200.00": 8200.0, "Loading…": None, "12": 12.0}
    assert {text: parse_number(text) for text in cases} == cases
