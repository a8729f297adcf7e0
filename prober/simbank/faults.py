"""Fault model of the simulated bank: one optional fault per capability.

A :class:`Fault` says how a capability misbehaves (``down``, ``slow``, ``hang``,
``intermittent``, ``wrong_data``, ``reject``, ``refuse``); a :class:`FaultRegistry`
holds the active fault of each capability and can be changed at run time, from the
Python API or the admin HTTP API. :func:`guard` wraps a route handler so that the
capability's fault is applied before the handler runs.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CAPABILITIES: tuple[str, ...] = ("login", "accounts", "transfer", "cards", "payments")
"""Every business route of the bank belongs to exactly one of these."""

MODES: tuple[str, ...] = ("down", "slow", "hang", "intermittent", "wrong_data", "reject", "refuse",
                          "blank", "script_error", "slow_render")
WEB_ONLY_MODES = frozenset({"blank", "script_error", "slow_render"})
"""Faults of the web front only (:mod:`prober.simbank.web`): the JSON API answers as usual."""

# Fields each mode accepts besides ``mode`` and ``paths``; anything else is an error,
# so a typo in an admin request never silently does nothing.
_MODE_FIELDS: dict[str, frozenset[str]] = {
    "down": frozenset({"status"}),
    "slow": frozenset({"delay_ms"}),
    "hang": frozenset(),
    "intermittent": frozenset({"rate", "status"}),
    "wrong_data": frozenset(),
    "reject": frozenset({"countries"}),
    "refuse": frozenset({"header", "values"}),
    "blank": frozenset(),
    "script_error": frozenset(),
    "slow_render": frozenset({"delay_ms"}),
}
_DEFAULT_STATUS = {"down": 503, "intermittent": 500}


class FaultError(ValueError):
    """An invalid fault or capability (the admin API answers it with 400)."""


@dataclass(frozen=True, slots=True)
class Fault:
    """How one capability misbehaves.

    ``status`` applies to ``down`` (default 503) and ``intermittent`` (default 500);
    ``delay_ms`` to ``slow``; ``rate`` (0..1) to ``intermittent``; ``countries`` to
    ``reject`` (``None`` = every country); ``header``/``values`` to ``refuse`` (empty
    ``values`` = refuse everyone). ``paths`` (path prefixes) limits any fault to some
    routes of the capability; empty = all of them.
    """

    mode: str
    status: int | None = None
    delay_ms: float = 0.0
    rate: float = 0.0
    countries: tuple[str, ...] | None = None
    header: str = "X-Probe-Location"
    values: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise FaultError(f"unknown fault mode {self.mode!r}; known modes: {', '.join(MODES)}")
        if self.mode == "slow_render" and not self.delay_ms:
            object.__setattr__(self, "delay_ms", 3000.0)
        if self.status is None and self.mode in _DEFAULT_STATUS:
            object.__setattr__(self, "status", _DEFAULT_STATUS[self.mode])
        if self.status is not None and not 100 <= self.status <= 599:
            raise FaultError(f"status must be an HTTP status 100..599, got {self.status}")
        if self.delay_ms < 0:
            raise FaultError(f"delay_ms must be >= 0, got {self.delay_ms}")
        if not 0.0 <= self.rate <= 1.0:
            raise FaultError(f"rate must be between 0 and 1, got {self.rate}")
        # Accept lists from callers, store tuples so the fault stays hashable/immutable.
        for name in ("countries", "values", "paths"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        """Build a fault from its JSON form, e.g. ``{"mode": "slow", "delay_ms": 200}``.

        Raises :class:`FaultError` naming the bad field on any invalid input.
        """
        if not isinstance(data, Mapping):
            raise FaultError('fault must be a JSON object such as {"mode": "down"}')
        mode = data.get("mode")
        if not isinstance(mode, str):
            raise FaultError(f"field 'mode' is required, one of: {', '.join(MODES)}")
        if mode not in MODES:
            raise FaultError(f"unknown fault mode {mode!r}; known modes: {', '.join(MODES)}")
        allowed = _MODE_FIELDS[mode] | {"mode", "paths"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise FaultError(
                f"unknown field(s) {', '.join(unknown)} for mode {mode!r}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        kwargs: dict[str, Any] = {"mode": mode}
        if "status" in data:
            kwargs["status"] = _typed(data, "status", int)
        if "delay_ms" in data:
            kwargs["delay_ms"] = float(_typed(data, "delay_ms", (int, float)))
        if "rate" in data:
            kwargs["rate"] = float(_typed(data, "rate", (int, float)))
        if "header" in data:
            kwargs["header"] = _typed(data, "header", str)
        for name in ("countries", "values", "paths"):
            if name in data and data[name] is not None:
                kwargs[name] = _str_list(data, name)
        return cls(**kwargs)

    def to_json(self) -> dict[str, Any]:
        """The JSON form: ``mode`` plus the fields that mean something for it."""
        out: dict[str, Any] = {"mode": self.mode}
        fields = _MODE_FIELDS[self.mode]
        if "status" in fields:
            out["status"] = self.status
        if "delay_ms" in fields:
            out["delay_ms"] = self.delay_ms
        if "rate" in fields:
            out["rate"] = self.rate
        if "countries" in fields:
            out["countries"] = list(self.countries) if self.countries is not None else None
        if "header" in fields:
            out["header"] = self.header
            out["values"] = list(self.values)
        if self.paths:
            out["paths"] = list(self.paths)
        return out

    def applies_to(self, path: str) -> bool:
        """Whether the fault covers this request path (``paths`` prefixes)."""
        return not self.paths or path.startswith(self.paths)

    def rejects_country(self, country: object) -> bool:
        """For ``reject``: whether a payment to ``country`` is declined."""
        return self.countries is None or country in self.countries


def _typed(data: Mapping[str, Any], name: str, types: type | tuple[type, ...]) -> Any:
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, types):
        raise FaultError(f"field {name!r} has the wrong type: {value!r}")
    return value


def _str_list(data: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = data[name]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FaultError(f"field {name!r} must be a list of strings")
    return tuple(value)


def check_capability(capability: str) -> str:
    """Return ``capability`` if known, else raise :class:`FaultError` listing them."""
    if capability not in CAPABILITIES:
        raise FaultError(
            f"unknown capability {capability!r}; known capabilities: {', '.join(CAPABILITIES)}"
        )
    return capability


@dataclass(slots=True)
class FaultRegistry:
    """The active fault of each capability, changeable at run time.

    ``intermittent`` failures are drawn from one random sequence per capability, seeded
    from ``seed`` when it is set: the draws of one capability do not depend on how the
    requests of the others interleave with them, so a seeded run is reproducible even
    with concurrent journeys.
    """

    seed: int | None = None
    _active: dict[str, Fault] = field(default_factory=dict)
    _draws: dict[str, random.Random] = field(default_factory=dict)

    def draw(self, capability: str) -> float:
        """The next number in [0, 1) of ``capability``'s sequence."""
        rng = self._draws.get(capability)
        if rng is None:
            rng = self._draws[capability] = random.Random(None if self.seed is None else f"{self.seed}:{capability}")
        return rng.random()

    def reseed(self) -> None:
        """Start every capability's sequence again (from ``seed``)."""
        self._draws.clear()

    def set(self, capability: str, fault: Fault) -> None:
        """Make ``fault`` the active fault of ``capability`` (replacing any other)."""
        self._active[check_capability(capability)] = fault

    def clear(self, capability: str | None = None) -> None:
        """Clear the fault of one capability, or of all when ``capability`` is None."""
        if capability is None:
            self._active.clear()
        else:
            self._active.pop(check_capability(capability), None)

    def get(self, capability: str) -> Fault | None:
        """The active fault of ``capability``, or None when it is healthy."""
        return self._active.get(capability)

    def all(self) -> dict[str, Fault]:
        """A copy of every active fault, by capability."""
        return dict(self._active)

    def to_json(self) -> dict[str, dict[str, Any]]:
        """Every active fault in JSON form, by capability."""
        return {cap: fault.to_json() for cap, fault in self._active.items()}
