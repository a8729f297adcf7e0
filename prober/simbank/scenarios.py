"""Scenarios: compressed-time replays of real bank incidents.

A :class:`Scenario` is a timeline of :class:`FaultWindow` s in *simulated* seconds from
the scenario's start. A :class:`ScenarioRunner` plays it inside the server, applying
and clearing faults at the right moments; real time = simulated time × ``time_scale``
(the default, :data:`DEFAULT_TIME_SCALE`, plays one simulated hour in five real seconds).
Its windows and the transitions it actually made are the known truth a benchmark
compares detection times with.

:data:`SCENARIOS` is the table of incident replays; :func:`make_tour` builds from it the
tour ``prober demo`` plays by default (each capability failing and recovering in turn,
once), and :data:`PLAYABLE` holds both, by name.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .faults import CAPABILITIES, Fault, FaultRegistry

HOUR = 3600.0
DEFAULT_TIME_SCALE = 5.0 / HOUR
"""Real seconds per simulated second: one simulated hour lasts five real seconds."""

MAX_TRANSITIONS = 1000


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """``fault`` applies to ``capability`` from ``start_s`` to ``end_s`` (simulated seconds)."""

    start_s: float
    end_s: float
    capability: str
    fault: Fault
    label: str = ""

    def active_at(self, t: float) -> bool:
        return self.start_s <= t < self.end_s


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named timeline of fault windows over a cycle of ``cycle_s`` simulated seconds."""

    name: str
    description: str
    windows: tuple[FaultWindow, ...]
    cycle_s: float
    repeat: bool = True

    def __post_init__(self) -> None:
        for window in self.windows:
            if window.capability not in CAPABILITIES:
                raise ValueError(f"scenario {self.name}: unknown capability {window.capability!r}")
            if not 0 <= window.start_s < window.end_s <= self.cycle_s:
                raise ValueError(f"scenario {self.name}: window {window} outside 0..{self.cycle_s}")

    @property
    def capabilities(self) -> frozenset[str]:
        """The capabilities this scenario drives."""
        return frozenset(w.capability for w in self.windows)

    def faults_at(self, t: float) -> dict[str, FaultWindow]:
        """The window in effect for each capability at simulated time ``t`` in the cycle."""
        active: dict[str, FaultWindow] = {}
        for window in self.windows:
            if window.active_at(t):
                active[window.capability] = window  # a later window wins on overlap
        return active


def _down(status: int = 503) -> Fault:
    return Fault(mode="down", status=status)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "transfers-and-cards-down",
            "Transfers and card management unavailable for 36 h while login and accounts work.",
            (
                FaultWindow(1 * HOUR, 37 * HOUR, "transfer", _down(), "transfers and cards down"),
                FaultWindow(1 * HOUR, 37 * HOUR, "cards", _down(), "transfers and cards down"),
            ),
            cycle_s=40 * HOUR,
        ),
        Scenario(
            "zero-balances",
            "Balances shown as zero for 2 h: every answer is 200, the data is wrong.",
            (FaultWindow(1 * HOUR, 3 * HOUR, "accounts", Fault(mode="wrong_data"), "zero balances"),),
            cycle_s=4 * HOUR,
        ),
        Scenario(
            "card-authorisation-outage",
            "Card authorisation servers not answering for 2.5 h in the evening.",
            (FaultWindow(1 * HOUR, 3.5 * HOUR, "payments", _down(), "card authorisation down"),),
            cycle_s=5 * HOUR,
        ),
        Scenario(
            "intermittent-login",
            "30 % of logins fail for 4 h after a software release.",
            (
                FaultWindow(
                    1 * HOUR, 5 * HOUR, "login", Fault(mode="intermittent", rate=0.3),
                    "intermittent login failures",
                ),
            ),
            cycle_s=6 * HOUR,
        ),
        Scenario(
            "intermittent-auth",
            "40 % of logins answered 401 for 3 h after a release: a failure rate of auth, not dead credentials.",
            (
                FaultWindow(
                    1 * HOUR, 4 * HOUR, "login", Fault(mode="intermittent", rate=0.4, status=401),
                    "intermittent auth failures (401)",
                ),
            ),
            cycle_s=5 * HOUR,
        ),
        Scenario(
            "country-declines",
            "Card payments to German merchants silently declined for 3 h.",
            (
                FaultWindow(
                    1 * HOUR, 4 * HOUR, "payments", Fault(mode="reject", countries=("DE",)),
                    "payments to DE declined",
                ),
            ),
            cycle_s=5 * HOUR,
        ),
        Scenario(
            "healthy-noise",
            "A healthy bank with background noise: 2 % of requests fail on every capability.",
            tuple(
                FaultWindow(0.0, HOUR, cap, Fault(mode="intermittent", rate=0.02), "background noise")
                for cap in CAPABILITIES
            ),
            cycle_s=HOUR,
        ),
    )
}
"""The shipped scenarios, by name."""


TOUR = "tour"
"""The name of the tour of :data:`SCENARIOS` (what ``prober demo`` plays by default)."""

TOUR_LEAD_IN_S = 0.5 * HOUR
"""Healthy time before the first stop of the tour (every check reports ok first)."""

TOUR_STEADY_STOP = (4 * HOUR, 4 * HOUR)
"""Failing, then healthy, simulated seconds of a stop whose faults are steady."""

TOUR_RATE_STOP = (9 * HOUR, 11 * HOUR)
"""The same for a stop with a failure rate (mode ``intermittent``): an incident of a rate
opens after more runs, and resolves after 20 passing runs in a row."""
# Paced for `prober demo`'s defaults (a run of each check every 2 s, an hour in 5 s: 2.5
# runs an hour) and the default incident thresholds: a steady outage fails ~10 runs (3
# open it) and is healthy ~10 (6 resolve a short one); a 30 % rate per request fails a
# 3-request journey 66 % of its ~22 runs (8 of 20 open it) and is healthy ~27 (20 resolve it).


def tour_stops(scenarios: Mapping[str, Scenario]) -> list[Scenario]:
    """The stops of the tour: for each capability in turn (:data:`CAPABILITIES` order),
    the first scenario of ``scenarios`` that makes it fail, once each; scenarios that
    drive every capability at once (background noise) are left out."""
    stops: list[Scenario] = []
    for capability in CAPABILITIES:
        first = next((s for s in scenarios.values()
                      if capability in s.capabilities and s.capabilities != frozenset(CAPABILITIES)), None)
        if first is not None and first not in stops:
            stops.append(first)
    return stops


def make_tour(scenarios: Mapping[str, Scenario]) -> Scenario:
    """Each capability failing and recovering in turn, played once: the faults of each of
    :func:`tour_stops`, shortened to a stop of the tour, then a healthy bank until its
    incidents are resolved. Each window's label is its scenario's name and description."""
    windows: list[FaultWindow] = []
    t = TOUR_LEAD_IN_S
    stops = tour_stops(scenarios)
    for stop in stops:
        rate = any(window.fault.mode == "intermittent" for window in stop.windows)
        failing, healthy = TOUR_RATE_STOP if rate else TOUR_STEADY_STOP
        windows.extend(FaultWindow(t, t + failing, window.capability, window.fault, f"{stop.name}: {stop.description}")
                       for window in stop.windows)
        t += failing + healthy
    played = ", ".join(f"{' and '.join(c for c in CAPABILITIES if c in stop.capabilities)} ({stop.name})"
                       for stop in stops)
    return Scenario(TOUR, f"Each capability failing and recovering in turn, once ({t * DEFAULT_TIME_SCALE / 60:.1f} "
                          f"min at the default time scale): {played}.", tuple(windows), cycle_s=t, repeat=False)


PLAYABLE: dict[str, Scenario] = {TOUR: make_tour(SCENARIOS), **SCENARIOS}
"""Every scenario the bank plays by name: the tour, then :data:`SCENARIOS`."""

NO_SCENARIO = "none"
"""``--scenario none``: a quiet bank."""


def scenario_listing() -> list[tuple[str, str]]:
    """``(name, description)`` of every ``--scenario`` value, for ``--help``."""
    return [(NO_SCENARIO, "A quiet bank: every answer right, at once."),
            *((name, scenario.description) for name, scenario in PLAYABLE.items())]


def scenario_named(name: str | None) -> Scenario | None:
    """The scenario of a ``--scenario`` value (None for ``none`` or no value); raises
    ``ValueError`` listing the values for an unknown one."""
    if name in (None, NO_SCENARIO):
        return None
    if name not in PLAYABLE:
        raise ValueError(f"unknown scenario {name!r}; known scenarios: {', '.join([NO_SCENARIO, *PLAYABLE])}")
    return PLAYABLE[name]


def get_scenario(name: str) -> Scenario:
    """The scenario ``name`` (:data:`PLAYABLE`); ``ValueError`` listing the names otherwise."""
    try:
        return PLAYABLE[name]
    except KeyError:
        raise ValueError(
            f"unknown scenario {name!r}; known scenarios: {', '.join(PLAYABLE)}"
        ) from None


class ScenarioRunner:
    """Plays a :class:`Scenario` against a :class:`FaultRegistry` as a background task.

    Only the scenario's own capabilities are touched, and a fault is cleared only if it
    is still the one the runner set, so faults set by hand elsewhere survive.
    """

    def __init__(self, scenario: Scenario, faults: FaultRegistry, time_scale: float = DEFAULT_TIME_SCALE) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.scenario = scenario
        self.faults = faults
        self.time_scale = time_scale
        self.transitions: deque[dict[str, Any]] = deque(maxlen=MAX_TRANSITIONS)
        self._applied: dict[str, Fault] = {}
        self._task: asyncio.Task[None] | None = None
        self._started_loop = 0.0
        self._started_wall = 0.0
        self._cycle = 0
        self._phase = "not started"
        self._active: dict[str, FaultWindow] = {}

    def start(self) -> None:
        """Start (or restart from zero) the timeline."""
        self._cancel()
        self._clear_own()
        self.transitions.clear()
        loop = asyncio.get_running_loop()
        self._started_loop = loop.time()
        self._started_wall = time.time()
        self._cycle = 0
        self._task = loop.create_task(self._run(), name=f"scenario {self.scenario.name}")

    async def stop(self) -> None:
        """Stop the timeline and clear the faults it set."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._clear_own()
        self._phase = "stopped"

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        scenario = self.scenario
        loop = asyncio.get_running_loop()
        boundaries = sorted({0.0, *(w.start_s for w in scenario.windows), *(w.end_s for w in scenario.windows)})
        boundaries = [b for b in boundaries if b < scenario.cycle_s]
        while True:
            base = self._cycle * scenario.cycle_s
            for boundary in boundaries:
                delay = self._started_loop + (base + boundary) * self.time_scale - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                self._apply(boundary)
            if not scenario.repeat:
                end = self._started_loop + scenario.cycle_s * self.time_scale
                await asyncio.sleep(max(0.0, end - loop.time()))
                self._clear_own()
                self._active = {}
                self._phase = "finished"
                return
            self._cycle += 1

    def _apply(self, t: float) -> None:
        active = self.scenario.faults_at(t)
        for cap in self.scenario.capabilities:
            window = active.get(cap)
            if window is not None:
                if self._applied.get(cap) is not window.fault or self.faults.get(cap) is not window.fault:
                    self.faults.set(cap, window.fault)
                    self._applied[cap] = window.fault
                    self._record(cap, "set", window.fault)
            elif cap in self._applied:
                self._clear_cap(cap)
        self._active = active
        labels = sorted({w.label or f"{w.capability} {w.fault.mode}" for w in active.values()})
        self._phase = ", ".join(labels) if labels else "healthy"

    def _clear_cap(self, cap: str) -> None:
        fault = self._applied.pop(cap)
        if self.faults.get(cap) is fault:
            self.faults.clear(cap)
            self._record(cap, "clear", fault)

    def _clear_own(self) -> None:
        for cap in list(self._applied):
            self._clear_cap(cap)

    def _record(self, cap: str, action: str, fault: Fault) -> None:
        now = time.time()
        self.transitions.append({
            "at": now,
            "elapsed_s": round(now - self._started_wall, 6),
            "capability": cap,
            "action": action,
            "fault": fault.to_json(),
        })

    @property
    def phase(self) -> str:
        """Labels of the windows in effect, ``healthy``, or ``finished``/``stopped``."""
        return self._phase

    def windows(self) -> list[dict[str, Any]]:
        """Every window with real offsets (seconds from the start of a cycle)."""
        scale = self.time_scale
        return [
            {
                "label": w.label,
                "capability": w.capability,
                "fault": w.fault.to_json(),
                "start_s": w.start_s * scale,
                "end_s": w.end_s * scale,
                "sim_start_s": w.start_s,
                "sim_end_s": w.end_s,
            }
            for w in self.scenario.windows
        ]

    def status(self) -> dict[str, Any]:
        """The ``GET /admin/scenario`` document."""
        scenario = self.scenario
        elapsed = time.time() - self._started_wall if self._started_wall else 0.0
        return {
            "name": scenario.name,
            "description": scenario.description,
            "time_scale": self.time_scale,
            "repeat": scenario.repeat,
            "cycle_s": scenario.cycle_s * self.time_scale,
            "sim_cycle_s": scenario.cycle_s,
            "started_at": self._started_wall,
            "elapsed_s": elapsed,
            "cycle": int(elapsed // (scenario.cycle_s * self.time_scale)) if self._started_wall else 0,
            "phase": self._phase,
            "active": sorted(self._active),
            "windows": self.windows(),
            "transitions": list(self.transitions),
        }
