"""Scenarios: compressed-time replays of real bank incidents.

A :class:`Scenario` is a timeline of :class:`FaultWindow` s in *simulated* seconds from
the scenario's start. A :class:`ScenarioRunner` plays it inside the server, applying
and clearing faults at the right moments; real time = simulated time × ``time_scale``
(the default, :data:`DEFAULT_TIME_SCALE`, plays one simulated hour in five real seconds).
Its windows and the transitions it actually made are the known truth a benchmark
compares detection times with.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
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


def get_scenario(name: str) -> Scenario:
    """The shipped scenario ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(
            f"unknown scenario {name!r}; known scenarios: {', '.join(SCENARIOS)}"
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
