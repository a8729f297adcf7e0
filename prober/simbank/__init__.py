"""The simulated bank: a real aiohttp server on loopback with per-capability fault injection.

It is the target of the test suite and of ``prober demo``::

    async with BankServer(seed=1) as bank:
        bank.faults.set("accounts", Fault(mode="slow", delay_ms=200))
        ...  # probe bank.url

``prober bank`` runs it alone (:func:`run_bank`), optionally playing one of the
:data:`SCENARIOS`, compressed-time replays of real incidents, or the tour of them
(:data:`TOUR`, what ``prober demo`` plays).
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .server import BankServer, run_bank
    from .state import BankState

_SERVER = {"BankServer": ".server", "run_bank": ".server", "BankState": ".state"}


def __getattr__(name: str) -> Any:
    """The server (aiohttp and the bank's routes) is imported when first asked for: the
    table of scenarios and faults above serves ``prober demo --help`` without it."""
    if name in _SERVER:
        import importlib

        value = getattr(importlib.import_module(_SERVER[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

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
