"""Incident detection on the simulated bank's scenarios, in compressed time, with noise,
from several probe locations deciding together.

    python benchmarks/detection.py [--window 4] [--interval 0.05] [--noise 0.02]
                                   [--noise-runs 10000] [--seed 1] [--locations 2] [--confirm 2]

For each of the five incident scenarios of :data:`prober.simbank.scenarios.SCENARIOS`
(played once, with a time scale that makes its longest fault window ``--window`` real
seconds, and ``--noise`` of every request failing on every capability outside the
fault windows), the real journeys of ``config/simbank.toml`` run in a loop against the
bank from ``--locations`` probe locations (``PROBER_LOCATION`` = ``loc1``, ``loc2``…; each
check: run, consume, sleep ``--interval``). Each location has its own
:class:`IncidentService` with the default thresholds, writing its ``check``, ``step`` and
``incident`` points and ``prober`` self-reports through its own :class:`ResultWriter`
into a real InfluxDB 1.x
(``influxd`` on a free port), and its own cross-location loop
(:class:`~prober.daemon.locations.CrossLocationIncidents`, ``confirm = --confirm``,
polling every 0.1 s) reading them back; notifications are counted per incident. Printed
per fault window, for the cross-location incidents:

* whether the right capability, and only it, was flagged;
* time from the fault's start to the incident opened (notified), and from its end to
  resolved (real seconds, and runs of that check at one location);
* the reported duration (first start to last end of its incidents) against the true
  one, and the error in runs of that check. The goal is one interval + 2 s; in
  compressed time the 2 s (a journey's own duration, during which a run may see the
  change after its start time) is the check's mean run duration, so the goal is
  ``1 + mean run duration / mean gap between runs`` runs (printed as "goal");
* notifications per incident (goal: one opened and one resolved, whatever the number of
  locations), next to the per-location incidents each location would have paged alone.

``healthy-noise`` (``--noise`` of requests failing everywhere, no fault) then runs until
the checks of every location have made ``--noise-runs`` runs together, and reports the
false incidents (cross-location, and per location).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prober.config.incidents import LocationsConfig
from prober.config.influxdb import influxdb_config
from prober.daemon.alerting import compose_incidents
from prober.daemon.locations import CrossLocationIncidents
from prober.daemon.locations_influx import LocationsReader
from prober.incidents.service import IncidentService, login_dependent_steps
from prober.journey.plan import JourneyPlan
from prober.journey.runner import run_journey
from prober.loading import load
from prober.notify.message import Message
from prober.report.influx import QueryClient
from prober.simbank import BankServer, Fault
from prober.simbank.scenarios import CAPABILITIES, SCENARIOS, FaultWindow, Scenario
from prober.writer import ResultWriter, prober_point
from tests.fixtures.servers import InfluxDBServer

SIMBANK = ROOT / "config" / "simbank.toml"
INCIDENT_SCENARIOS = ("transfers-and-cards-down", "zero-balances", "card-authorisation-outage",
                      "intermittent-login", "country-declines")
NOISE_LABEL = "background noise"
POLL_S = 0.1
"""The cross-location loop's poll in compressed time."""


@dataclass
class Window:
    capability: str
    start: float  # wall-clock seconds
    end: float


@dataclass
class Found:
    """One incident as the service reported it (wall-clock seconds)."""

    kind: str
    opened: float
    since: float
    resolved: float | None = None
    end: float | None = None
    duration_s: float | None = None
    id: str = ""


@dataclass
class Report:
    scenario: str
    windows: list[Window]
    events: list[tuple[str, str, float]] = field(default_factory=list)
    """(event, kind, wall seconds) of every opened/resolved."""
    incidents: list[Found] = field(default_factory=list)
    runs: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)
    """kind → (wall seconds, counted failure) of every run."""
    durations: dict[str, list[float]] = field(default_factory=dict)
    """kind → seconds each run took."""
    open_at_end: list[str] = field(default_factory=list)
    notifications: dict[str, list[str]] = field(default_factory=dict)
    """incident id → the events notified for it (cross-location)."""
    per_location: dict[tuple[str, str], int] = field(default_factory=dict)
    """(location, kind) → incidents it opened alone (what it would have paged without the consensus)."""
    false_reasons: list[str] = field(default_factory=list)

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

    def run_gap(self, kind: str) -> float:
        """Mean seconds between two runs of ``kind``'s check."""
        times = [t for t, _ in self.runs.get(kind, [])]
        return (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else float("nan")

    def goal_runs(self, kind: str) -> float:
        """One interval + the run's own duration, in runs (see the module docstring)."""
        durations = self.durations.get(kind, [])
        return 1 + (sum(durations) / len(durations)) / self.run_gap(kind) if durations else 1.0

    def max_gap_near(self, kind: str, at: float) -> float:
        """The longest of the gap between two runs of ``kind`` that contains ``at`` and its
        two neighbours: how precisely the runs can date a change at ``at``."""
        times = [t for t, _ in self.runs.get(kind, [])]
        gaps = [b - a for a, b in pairwise(times)]
        index = next((i for i, (a, b) in enumerate(pairwise(times)) if a <= at < b), None)
        return 0.0 if index is None else max(gaps[max(index - 1, 0): index + 2])

    def silent_edges(self, kind: str, start: float, end: float) -> float:
        """Seconds of ``start``…``end`` before its first counted failure of ``kind`` and
        after its last: where a failure *rate* showed nothing, so no rule could date it."""
        failed = [t for t, bad in self.runs.get(kind, []) if bad and start <= t < end]
        return (failed[0] - start) + (end - failed[-1]) if failed else end - start

    def reported(self, kind: str) -> tuple[float, float] | None:
        """(start, end) reported for ``kind``: first start to last end of its incidents."""
        ended = [(i.since, i.end) for i in self.incidents if i.kind == kind and i.end is not None]
        return (min(since for since, _ in ended), max(end for _, end in ended)) if ended else None


def with_noise(base: Scenario, noise: float) -> Scenario:
    """``base`` played once, with ``noise`` of requests failing on every capability outside its windows."""
    if noise <= 0:
        return dataclasses.replace(base, repeat=False)
    background = tuple(FaultWindow(0.0, base.cycle_s, cap, Fault(mode="intermittent", rate=noise), NOISE_LABEL)
                       for cap in CAPABILITIES)
    return dataclasses.replace(base, windows=background + base.windows, repeat=False)  # later windows win


async def play(name: str, influxdb: InfluxDBServer, *, window_s: float = 4.0, interval: float = 0.05,
               seed: int | None = 1, duration_s: float | None = None, tail_s: float = 8.0, noise: float = 0.0,
               noise_runs: int | None = None, locations: int = 2, confirm: int | str = 2) -> Report:
    """Play scenario ``name`` once against a fresh bank from ``locations`` probe locations.

    Fault scenarios stop when every window has ended and no cross-location incident is
    open (or ``tail_s`` after the last window); ``healthy-noise`` runs for ``duration_s``
    or until ``noise_runs`` runs were made.
    """
    base = SCENARIOS[name]
    healthy = name == "healthy-noise"
    longest = max(w.end_s - w.start_s for w in base.windows)
    scale = window_s / longest
    scenario = base if healthy else with_noise(base, noise)
    state = Path(tempfile.mkdtemp(prefix="detection-"))
    database = f"detection_{name.replace('-', '_')}"
    influxdb.create_database(database)
    async with BankServer(seed=seed, scenario=scenario, time_scale=scale) as bank:
        assert bank.scenario is not None
        started = bank.scenario.status()["started_at"]
        windows = [] if healthy else [
            Window(w["capability"], started + w["start_s"], started + w["end_s"])
            for w in bank.scenario.windows() if w["label"] != NOISE_LABEL
        ]
        run = _Locations(Report(name, windows), healthy, [f"loc{i + 1}" for i in range(locations)], interval)
        settings = LocationsConfig(confirm=confirm, poll=f"{POLL_S * 1000:g}ms", stale_after="5s")
        for location in run.names:
            await run.start(location, bank.url, influxdb.url, database, state, settings)
        last_end = max((w.end for w in windows), default=started)
        deadline = started + (duration_s or 1e9 if healthy else (last_end - started) + tail_s)
        tasks = [asyncio.create_task(run.loop(location, p)) for location, p in run.plans]
        tasks += [asyncio.create_task(run.self_report()), asyncio.create_task(run.decide())]
        while time.time() < deadline:
            await asyncio.sleep(0.05)
            if noise_runs is not None and sum(len(r) for r in run.report.runs.values()) >= noise_runs:
                break
            if not healthy and time.time() > last_end + 0.2 and run.settled():
                break
        await asyncio.sleep(3 * POLL_S)  # the last resolutions are read back and notified
        run.stop.set()
        await asyncio.gather(*tasks)
        if not healthy:
            scenario_windows, transitions = bank.scenario.windows(), list(bank.scenario.transitions)
            run.report.windows = as_applied(run.report.windows, scenario_windows, transitions)
        run.report.open_at_end = sorted({k for c in run.crosses.values() if c.acting for _, k in c.consensus.open})
        await run.close()
    influxdb.drop_database(database)
    return run.report


def as_applied(planned: list[Window], scenario_windows: list[dict[str, Any]],
               transitions: list[dict[str, Any]]) -> list[Window]:
    """The fault windows as the bank applied them (its transitions' wall-clock times), not
    as planned: on a busy machine the bank's timer fires late, and a fault set 0.3 s late
    would read as detection 0.3 s late. A window keeps its planned time where the bank
    recorded no transition for it."""
    faults = [w["fault"] for w in scenario_windows if w["label"] != NOISE_LABEL]
    applied = []
    for window, fault in zip(planned, faults, strict=True):
        mine = [t for t in transitions if t["capability"] == window.capability]
        start = next((t["at"] for t in mine if t["action"] == "set" and t["fault"] == fault), None)
        if start is None:
            applied.append(window)
            continue
        # It ends when it is cleared or another fault (the background noise) replaces it.
        end = next((t["at"] for t in mine if t["at"] > start and (t["action"] == "clear" or t["fault"] != fault)),
                   window.end)
        applied.append(Window(window.capability, start, end))
    return applied


class _Locations:
    """The probe locations of one scenario run: their writers, incident services and
    cross-location loops, and the tasks that drive them until ``stop``."""

    def __init__(self, report: Report, healthy: bool, names: list[str], interval: float) -> None:
        self.report, self.healthy, self.names, self.interval = report, healthy, names, interval
        self.found: dict[str, Found] = {}
        self.writers: dict[str, ResultWriter] = {}
        self.services: dict[str, IncidentService] = {}
        self.crosses: dict[str, CrossLocationIncidents] = {}
        self.plans: list[tuple[str, JourneyPlan]] = []
        self.seen = dict.fromkeys(names, 0)
        self.stop = asyncio.Event()

    async def start(self, location: str, bank_url: str, influxdb_url: str, database: str, state: Path,
                    settings: LocationsConfig) -> None:
        loaded = load(SIMBANK, environ={**os.environ, "SIMBANK_URL": bank_url, "PROBER_LOCATION": location})
        writer = ResultWriter(influxdb_config(url=influxdb_url, api="v1", database=database,
                                             flush_interval="50ms"), spool_dir=state / location / "spool")
        await writer.start()
        self.writers[location] = writer
        self.services[location], _ = compose_incidents(loaded.config, writer, state_dir=state / location)
        await self.services[location].start()
        self.crosses[location] = CrossLocationIncidents(
            settings, reader=LocationsReader(QueryClient(url=influxdb_url, database=database), 5.0),
            writer=writer, notify=self.notified, location=location, instance=f"prober-{location}",
            open_after=loaded.config.incidents.open_after, login_steps=login_dependent_steps(loaded.config))
        self.plans += [(location, plan) for plan in loaded.plans]

    def notified(self, message: Message) -> None:
        report = self.report
        at = message.at_ns / 1e9
        report.notifications.setdefault(message.incident_id, []).append(message.event)
        if message.event == "opened":
            report.events.append(("opened", message.kind, at))
            self.found[message.incident_id] = Found(message.kind, at, message.since_ns / 1e9, id=message.incident_id)
            report.incidents.append(self.found[message.incident_id])
        elif message.event == "resolved":
            report.events.append(("resolved", message.kind, at))
            item = self.found.get(message.incident_id)
            if item is not None and message.resolved_ns is not None:
                item.resolved, item.end, item.duration_s = at, message.resolved_ns / 1e9, message.duration_s
            if self.healthy:
                report.false_reasons.append(f"{message.kind}: {message.error}")

    def settled(self) -> bool:
        """No incident open, neither across the locations nor at any one of them."""
        return (not any(c.consensus.open for c in self.crosses.values())
                and not any(s.tracker.open_incidents() for s in self.services.values()))

    def record(self, location: str) -> None:
        service = self.services[location]
        for event in service.changes_since(self.seen[location]):
            if event.event == "opened":
                key = (location, event.incident.kind)
                self.report.per_location[key] = self.report.per_location.get(key, 0) + 1
        self.seen[location] = service.changes

    async def loop(self, location: str, plan: JourneyPlan) -> None:
        service, report = self.services[location], self.report
        while not self.stop.is_set():
            result = await run_journey(plan)
            service.consume(result)
            # the check points the cross-location loop pools, as the daemon writes them
            self.writers[location].submit(result)
            counted = not result.success and result.failed_step not in service._login_steps.get(
                (result.site, result.check), ())
            if location == self.names[0]:  # run gaps and goals are per check, at one location
                report.runs.setdefault(plan.kind, []).append((result.started_at_ns / 1e9, counted))
                report.durations.setdefault(plan.kind, []).append(result.duration_ms / 1000.0)
            else:
                report.runs.setdefault(f"{location}:{plan.kind}", []).append((result.started_at_ns / 1e9, counted))
            self.record(location)
            await asyncio.sleep(self.interval)

    async def self_report(self) -> None:
        while not self.stop.is_set():
            now = time.time_ns()
            for location in self.names:
                self.writers[location].submit_lines([prober_point(location=location, instance=f"prober-{location}",
                                                                  time_ns=now)])
            await asyncio.sleep(0.5)

    async def decide(self) -> None:
        await asyncio.sleep(0.3)  # the first self-reports are written
        while not self.stop.is_set():
            for cross in self.crosses.values():
                await cross.poll()
            await asyncio.sleep(POLL_S)

    async def close(self) -> None:
        for location in self.names:
            await self.services[location].close()
            await self.writers[location].close()


def _print_scenario(report: Report) -> bool:
    """Print one line per fault window; True when the scenario met the goals."""
    right = report.flagged_kinds == report.expected_kinds and not report.open_at_end
    good = right
    for kind in sorted(report.expected_kinds):
        window = next(w for w in report.windows if w.capability == kind)
        gap = report.run_gap(kind)
        opened, resolved = report.opened(kind), report.resolved(kind)
        detect = f"{opened[0] - window.start:5.2f}s {report.runs_between(kind, window.start, opened[0]):3d}" \
            if opened else "never"
        back = f"{resolved[-1] - window.end:5.2f}s {report.runs_between(kind, window.end, resolved[-1]):3d}" \
            if resolved else "never"
        true = window.end - window.start
        span = report.reported(kind)
        if span is None:
            duration, error_runs = "-", float("inf")
        else:
            reported = span[1] - span[0]
            error_runs = (reported - true) / gap
            duration = f"{reported:5.2f}s vs {true:5.2f}s ({error_runs:+5.2f} runs, goal {report.goal_runs(kind):.2f})"
        good = good and abs(error_runs) <= report.goal_runs(kind)
        extra = sorted(report.flagged_kinds - report.expected_kinds)
        sent = [len(report.notifications.get(i.id, [])) for i in report.incidents if i.kind == kind]
        per_incident = "/".join(map(str, sent))
        alone = "+".join(str(n) for (_, k), n in sorted(report.per_location.items()) if k == kind)
        good = good and bool(sent) and all(n == 2 for n in sent)  # one opened + one resolved each
        print(f"{report.scenario:<26} {kind:<9} {'yes' if right else 'NO ' + ','.join(extra):<5} "
              f"{detect:>12} {back:>12} {len(opened):>3}/{len(resolved):<3} {duration:>47} "
              f"{per_incident or '-':>7} {alone or '-':>7}")
    return good


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=4.0, help="real seconds of the longest fault window")
    parser.add_argument("--interval", type=float, default=0.05, help="sleep between runs of a check (s)")
    parser.add_argument("--noise", type=float, default=0.02, help="share of requests failing outside the faults")
    parser.add_argument("--noise-runs", type=int, default=10_000, help="runs of the healthy-noise replay")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--locations", type=int, default=2, help="probe locations")
    parser.add_argument("--confirm", default="2", help='locations that must agree (k), or "all"')
    args = parser.parse_args()
    confirm = args.confirm if args.confirm == "all" else int(args.confirm)
    logging.getLogger("prober").setLevel(logging.ERROR)  # the incidents are printed as a table
    print(f"python benchmarks/detection.py --window {args.window:g} --interval {args.interval:g} "
          f"--noise {args.noise:g} --noise-runs {args.noise_runs} --seed {args.seed} "
          f"--locations {args.locations} --confirm {args.confirm}")
    print("default thresholds: open on 3 same-step consecutive failures or 8 of the last 20 runs; "
          "resolve as README 'Incidents and notifications' states;")
    print(f"{args.locations} locations, confirmed when {args.confirm} fail; times and durations are the "
          "cross-location incident's, notified once\n")
    print(f"{'scenario':<26} {'kind':<9} {'right':<5} {'→opened, runs':>12} {'→resolved':>12} {'o/r':>7} "
          f"{'reported vs true duration (error)':>47} {'notif.':>7} {'alone':>7}")
    with tempfile.TemporaryDirectory(prefix="detection-influxd-") as tmp, InfluxDBServer(Path(tmp)) as influxdb:
        met = 0
        for name in INCIDENT_SCENARIOS:
            report = await play(name, influxdb, window_s=args.window, interval=args.interval, seed=args.seed,
                                noise=args.noise, locations=args.locations, confirm=confirm)
            met += _print_scenario(report)
        print("  notif. = notifications per cross-location incident (opened + resolved, goal 2); "
              "alone = incidents each location opened on its own (what it would have paged without the consensus)")
        print(f"\nscenarios detected on the right capability only, every duration within its goal, "
              f"one notification per event: {met}/{len(INCIDENT_SCENARIOS)}")
        started = time.perf_counter()
        report = await play("healthy-noise", influxdb, interval=0.0, seed=args.seed, noise_runs=args.noise_runs,
                            locations=args.locations, confirm=confirm)
    total = sum(len(r) for r in report.runs.values())
    failed = sum(f for r in report.runs.values() for _, f in r)
    false = sum(1 for e, _, _ in report.events if e == "opened")
    print(f"healthy-noise: {total} runs ({args.locations} locations) in {time.perf_counter() - started:.0f}s, "
          f"{failed} counted failures ({100 * failed / max(total, 1):.1f}%), false incidents: {false} "
          f"(per location alone: {sum(report.per_location.values())})")
    per_kind = ", ".join(f"{k} {sum(f for _, f in r)}/{len(r)}" for k, r in sorted(report.runs.items()))
    print(f"  counted failures/runs per check kind: {per_kind}")
    for reason in report.false_reasons:
        print(f"  false incident: {reason[:160]}")


if __name__ == "__main__":
    asyncio.run(main())
