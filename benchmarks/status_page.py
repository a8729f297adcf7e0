"""Size and render time of the status page, its JSON twin and its Atom feed.

    python benchmarks/status_page.py [--banks 50] [--days 90]

Builds the view of N banks × 6 capabilities with 90 days of history (two bad days in
each; ``--worst``: a different uptime level every day) and one open incident per bank
(a long hostile error text), then renders the page (internal and
public), the JSON and the feed, each many times, and prints bytes and milliseconds of
CPU per render. The page is rendered on the event loop; this says how long it holds it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prober.config.statuspage import StatusPageConfig
from prober.daemon.status import CheckStatus
from prober.incidents import CapabilityState, Incident, IncidentStatus
from prober.results import KINDS, JourneyResult, Outcome
from prober.statuspage.feed import render_feed
from prober.statuspage.history import DayUptime
from prober.statuspage.page import render_page
from prober.statuspage.view import StatusView, build_view


def inputs(banks: int, days: int, worst: bool) -> dict:
    capabilities: dict[tuple[str, str], CapabilityState] = {}
    open_, runs, history = [], [], {}
    today = date(2026, 3, 10)
    since = 1773140400 * 10**9  # 2026-03-10T11:00:00Z
    for n in range(banks):
        site = f"bank-{n:03d}"
        incident = Incident(id=f"{n:012x}", site=site, kind="transfer", check="sepa", location="paris",
                            since_ns=since, opened_ns=since, outcome="assertion", failed_step="create",
                            error="<script>alert(1)</script>" * 6, rule="3 consecutive failures",
                            last_failure_ns=since + 60 * 10**9)
        open_.append(incident)
        for kind in KINDS:
            failing = kind == "transfer"
            capabilities[(site, kind)] = CapabilityState(site, kind, "outage" if failing else "ok",
                                                         (incident,) if failing else (), since_ns=since)
            last = JourneyResult(site=site, check=kind, kind=kind, location="paris", outcome=Outcome.OK,
                                 started_at_ns=since, duration_ms=42.0)
            runs.append(CheckStatus(site, kind, kind, last=last))
            history[(site, kind)] = [
                DayUptime(today - timedelta(days=d), 2880, (d % 7) if worst else (100 if d in (10, 40) else 0))
                for d in range(days - 1, -1, -1)
            ]
    status = IncidentStatus(capabilities=capabilities, open=tuple(open_), recent=tuple(open_[:20]))
    return {"incidents": status, "runs": runs, "history": history}


def timed(fn, repeat: int) -> tuple[float, int]:
    start = time.process_time()
    for _ in range(repeat):
        out = fn()
    return (time.process_time() - start) * 1000 / repeat, len(out) if isinstance(out, bytes) else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--banks", type=int, default=50)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--worst", action="store_true", help="every day's uptime level differs from the day before")
    args = parser.parse_args()
    data = inputs(args.banks, args.days, args.worst)
    print(f"python benchmarks/status_page.py --banks {args.banks} --days {args.days} --repeat {args.repeat}"
          + (" --worst" if args.worst else ""))
    for public in (False, True):
        def view(public: bool = public):
            settings = StatusPageConfig.model_validate({"title": "Status", "public": public, "history_days": args.days})
            return build_view(settings, **data, maintenance=[], history_source="local", now=1773144000.0)

        label = "public" if public else "internal"
        ms, _ = timed(view, args.repeat)
        print(f"{label:8} view:  {ms:8.2f} ms CPU")
        print_renderings(label, view(), args.repeat)


def print_renderings(label: str, v: StatusView, repeat: int) -> None:
    """CPU and size of the page, the JSON and the feed of one view."""
    ms, size = timed(lambda: render_page(v).encode(), repeat)
    print(f"{label:8} page:  {ms:8.2f} ms CPU, {size / 1024:8.1f} KiB")
    ms, size = timed(lambda: json.dumps(v.to_json()).encode(), repeat)
    print(f"{label:8} json:  {ms:8.2f} ms CPU, {size / 1024:8.1f} KiB")
    ms, size = timed(lambda: render_feed(v, "https://status.example/"), repeat)
    print(f"{label:8} feed:  {ms:8.2f} ms CPU, {size / 1024:8.1f} KiB")


if __name__ == "__main__":
    main()
