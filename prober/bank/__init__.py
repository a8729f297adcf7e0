"""The simulated bank: a real aiohttp server on loopback with per-capability fault injection.

It is the target of the test suite and of ``prober demo``::

    async with BankServer(seed=1) as bank:
        bank.faults.set("accounts", Fault(mode="slow", delay_ms=200))
        ...  # probe bank.url

``prober bank`` runs it alone (:func:`run_bank`), optionally playing one of the
:data:`SCENARIOS`, compressed-time replays of real incidents.
"""

from .faults import CAPABILITIES, MODES, Fault, FaultError, FaultRegistry
from .scenarios import DEFAULT_TIME_SCALE, SCENARIOS, FaultWindow, Scenario, ScenarioRunner
from .server import BankServer, run_bank
from .state import BankState

__all__ = [
    "CAPABILITIES",
    "DEFAULT_TIME_SCALE",
    "MODES",
    "SCENARIOS",
    "BankServer",
    "BankState",
    "Fault",
    "FaultError",
    "FaultRegistry",
    "FaultWindow",
    "Scenario",
    "ScenarioRunner",
    "run_bank",
]
