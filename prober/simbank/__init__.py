"""The simulated bank: a real aiohttp server on loopback with per-capability fault injection.

It is the target of the test suite and of ``prober demo``::

    async with BankServer(seed=1) as bank:
        bank.faults.set("accounts", Fault(mode="slow", delay_ms=200))
        ...  # probe bank.url

``prober bank`` runs it alone (:func:`run_bank`), optionally playing one of the
:data:`SCENARIOS`, compressed-time replays of real incidents, or the tour of them
(:data:`TOUR`, what ``prober demo`` plays).
"""

from .faults import CAPABILITIES, MODES, Fault, FaultError, FaultRegistry
from .scenarios import (
    DEFAULT_TIME_SCALE,
    HOUR,
    NO_SCENARIO,
    PLAYABLE,
    SCENARIOS,
    TOUR,
    FaultWindow,
    Scenario,
    ScenarioRunner,
    scenario_listing,
    scenario_named,
)
from .server import BankServer, run_bank
from .state import BankState

__all__ = [
    "CAPABILITIES",
    "DEFAULT_TIME_SCALE",
    "HOUR",
    "MODES",
    "NO_SCENARIO",
    "PLAYABLE",
    "SCENARIOS",
    "TOUR",
    "BankServer",
    "BankState",
    "Fault",
    "FaultError",
    "FaultRegistry",
    "FaultWindow",
    "Scenario",
    "ScenarioRunner",
    "run_bank",
    "scenario_listing",
    "scenario_named",
]
