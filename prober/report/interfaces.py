"""PSD2 interfaces and which checks feed them.

A check counts for the interfaces of its ``kind`` unless its configuration lists them
(``psd2 = ["ais"]``, or ``psd2 = []`` for none): ``accounts`` → account information,
``transfer`` → payment initiation, ``payments`` → confirmation of funds; ``login`` (the
token and consent requests every interface needs) counts for all three; ``cards`` and
``custom`` for none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

Interface = Literal["ais", "pis", "cof"]
INTERFACES: tuple[Interface, ...] = ("ais", "pis", "cof")
LABELS: dict[str, str] = {
    "ais": "account information",
    "pis": "payment initiation",
    "cof": "confirmation of funds",
}
KIND_INTERFACES: dict[str, tuple[Interface, ...]] = {
    "login": INTERFACES,
    "accounts": ("ais",),
    "transfer": ("pis",),
    "payments": ("cof",),
}
"""Interfaces a check of each kind feeds by default (kinds not listed feed none)."""

Overrides = Mapping[tuple[str, str], tuple[Interface, ...]]
"""(site, check) → interfaces, for the checks whose configuration says so."""


def interfaces_of(site: str, check: str, kind: str, overrides: Overrides) -> tuple[Interface, ...]:
    """The interfaces one check's runs count for."""
    chosen = overrides.get((site, check))
    return chosen if chosen is not None else KIND_INTERFACES.get(kind, ())


def kinds_feeding(interface: str, kinds: Iterable[str]) -> bool:
    """Whether any of ``kinds`` feeds ``interface`` (an empty list means every kind)."""
    kinds = list(kinds)
    return not kinds or any(interface in KIND_INTERFACES.get(k, ()) for k in kinds)


def overrides_from_config(config: object) -> dict[tuple[str, str], tuple[Interface, ...]]:
    """The ``psd2`` lists of a loaded :class:`~prober.config.model.Config`."""
    found: dict[tuple[str, str], tuple[Interface, ...]] = {}
    for site in getattr(config, "sites", []):
        for check in site.checks:
            chosen = getattr(check, "psd2", None)
            if chosen is not None:
                found[(site.name, check.name)] = tuple(chosen)
    return found
