"""Incident detection on the simulated bank's scenarios, in compressed time.

    python benchmarks/detection.py [--window 4] [--interval 0.05] [--noise-seconds 60] [--seed 1]

For each scenario of :data:`prober.bank.scenarios.SCENARIOS` (played once, not
repeated, with a time scale that makes its longest fault window ``--window`` real
seconds), the real journeys of ``config/simbank.toml`` run in a loop against the bank
(each check: run, consume, sleep ``--interval``), and an :class:`IncidentService` with
the default thresholds watches the results. Printed per scenario: the capability the
fault windows hit, the time from fault start to incident opened and from fault end to
resolved (real seconds, and runs of that check), whether the right capability and only
it was flagged. ``healthy-noise`` (2 % of requests failing everywhere) runs for
``--noise-seconds`` and reports the false incidents and the runs they came from.

Detection delays are in runs: at a production interval of 30 s, multiply by 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prober.bank import BankServer  # noqa: E402
from prober.bank.scenarios import SCENARIOS  # noqa: E402
from prober.config.loader import load  # noqa: E402
from prober.incidents import IncidentService  # noqa: E402
from prober.journey.runner import run_journey  # noqa: E402

SIMBANK = ROOT / "config" / "simbank.toml"
INCIDENT_SCENARIOS = ("transfers-and-cards-down", "zero-balances", "card-authorisation-outage",
                      "intermittent-login", "country-declines")


class _Lines:
    precision = "ns"

    def __init__(self) -> None:
        self.lines: list[str] = []

    def submit_lines(self, lines: list[str]) -> None:
        self.lines.extend(lines)


@dataclass
class Window:
    capability: str
    start: float  # wall-clock seconds
    end: float


@dataclass
class Report:
    scenario: str
    windows: list[Window]
    events: list[tuple[str, str, float]] = field(default_factory=list)
    """(event, kind, wall seconds) of every opened/resolved."""
    runs: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)
    """kind → (wall seconds, counted failure) of every run."""
    lines: list[str] = field(default_factory=list)
    open_at_end: list[str] = field(default_factory=list)

    def opened(self, kind: str) -> list[float]:
        return [t for e, k, t in self.events if e == "opened" and k == kind]

    def resolved(self, kind: str) -> list[float]:
        return [t for e, k, t in self.events if e == "resolved" and k == kind]

    @property
    def expected_kinds(self) -> set[str]:
        return {w.capability for w in self.windows}

    @property
    def flagged_kinds(self) -> set[str]:
        return {k for e, k, _ in self.events if e == "opened"}

    def runs_between(self, kind: str, start: float, end: float) -> int:
        return sum(1 for t, _ in self.runs.get(kind, []) if start <= t <= end)


async def play(name: str, *, window_s: float = 4.0, interval: float = 0.05, seed: int | None = 1,
               duration_s: float | None = None, tail_s: float = 8.0) -> Report:
    """Play scenario ``name`` once against a fresh bank; watch it with an IncidentService.

    Fault scenarios stop when every window has ended and no incident is open (or
    ``tail_s`` after the last window); ``healthy-noise`` runs for ``duration_s``.
    """
    base = SCENARIOS[name]
    noise = name == "healthy-noise"
    longest = max(w.end_s - w.start_s for w in base.windows)
    scale = window_s / longest
    scenario = base if noise else dataclasses.replace(base, repeat=False)
    state = tempfile.mkdtemp(prefix="detection-")
    async with BankServer(seed=seed, scenario=scenario, time_scale=scale) as bank:
        assert bank.scenario is not None
        started = bank.scenario.status()["started_at"]
        windows = [] if noise else [
            Window(w["capability"], started + w["start_s"], started + w["end_s"]) for w in bank.scenario.windows()
        ]
        loaded = load(SIMBANK, environ={**os.environ, "SIMBANK_URL": bank.url})
        writer = _Lines()
        service = IncidentService(loaded.config, writer, state_dir=state)
        await service.start()
        report = Report(name, windows)
        last_end = max((w.end for w in windows), default=started)
        deadline = started + (duration_s if noise else (last_end - started) + tail_s)
        stop = asyncio.Event()
        seen = 0

        async def loop(plan) -> None:
            nonlocal seen
            while not stop.is_set():
                result = await run_journey(plan)
                service.consume(result)
                counted = not result.success and result.failed_step not in service._login_steps.get(
                    (result.site, result.check), ())
                report.runs.setdefault(plan.kind, []).append((result.started_at_ns / 1e9, counted))
                for event in service.changes_since(seen):
                    report.events.append((event.event, event.incident.kind, event.at_ns / 1e9))
                seen = service.changes
                await asyncio.sleep(interval)

        tasks = [asyncio.create_task(loop(p)) for p in loaded.plans]
        while time.time() < deadline:
            await asyncio.sleep(0.05)
            if not noise and time.time() > last_end + 0.2 and not service.tracker.open_incidents():
                break
        stop.set()
        await asyncio.gather(*tasks)
        report.open_at_end = [i.kind for i in service.tracker.open_incidents()]
        report.lines = writer.lines
        await service.close()
    return report


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=4.0, help="real seconds of the longest fault window")
    parser.add_argument("--interval", type=float, default=0.05, help="sleep between runs of a check (s)")
    parser.add_argument("--noise-seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"python benchmarks/detection.py --window {args.window:g} --interval {args.interval:g} "
          f"--noise-seconds {args.noise_seconds:g} --seed {args.seed}")
    print("default thresholds: 3 same-step consecutive failures or 8 of the last 20 runs; "
          "resolve after 2 successes (20 when flapping)\n")
    print(f"{'scenario':<28} {'capability':<10} {'fault→opened':>18} {'fault end→resolved':>20} {'#open/#res':>10}  right only")
    for name in INCIDENT_SCENARIOS:
        report = await play(name, window_s=args.window, interval=args.interval, seed=args.seed)
        right = report.flagged_kinds == report.expected_kinds
        for kind in sorted(report.expected_kinds):
            window = next(w for w in report.windows if w.capability == kind)
            opened, resolved = report.opened(kind), report.resolved(kind)
            detect = (f"{opened[0] - window.start:5.2f}s {report.runs_between(kind, window.start, opened[0]):3d} runs"
                      if opened else "never")
            back = (f"{resolved[-1] - window.end:5.2f}s {report.runs_between(kind, window.end, resolved[-1]):3d} runs"
                    if resolved else "never")
            extra = sorted(report.flagged_kinds - report.expected_kinds)
            print(f"{name:<28} {kind:<10} {detect:>18} {back:>20} {len(opened):>4}/{len(resolved):<5}  "
                  f"{'yes' if right else 'NO ' + ','.join(extra)}")
    report = await play("healthy-noise", interval=args.interval, seed=args.seed, duration_s=args.noise_seconds)
    total = sum(len(r) for r in report.runs.values())
    failed = sum(f for r in report.runs.values() for _, f in r)
    false = sum(1 for e, _, _ in report.events if e == "opened")
    print(f"\nhealthy-noise for {args.noise_seconds:g}s: {total} runs, {failed} counted failures "
          f"({100 * failed / max(total, 1):.1f}%), false incidents: {false}")
    per_kind = ", ".join(f"{k} {sum(f for _, f in r)}/{len(r)}" for k, r in sorted(report.runs.items()))
    print(f"  counted failures/runs per check kind: {per_kind}")


if __name__ == "__main__":
    asyncio.run(main())
