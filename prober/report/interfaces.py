"""PSD2 interfaces, which checks feed them, and on which side (dedicated or customer).

A check counts for the interfaces of its ``kind`` unless its configuration lists them
(``psd2 = ["ais"]``, or ``psd2 = []`` for none): ``accounts`` → account information,
``transfer`` → payment initiation, ``payments`` → confirmation of funds, ``login`` → all
three; ``cards`` and ``custom`` → none.

``login`` is *authentication*, not a request of an interface (EBA/GL/2018/07 2.4 counts
"requests for access to information for the provision of" PIS, AIS or funds
confirmation): a **failed** login run is a failed request of every interface it feeds
(none of them can be reached without a token), a **successful** one is a request of none.

A check declares ``psd2_interface = "psu"`` when it probes the interface the bank's own
customers use (web, app) rather than the dedicated PSD2 interface; its runs feed the same
interfaces but are reported apart, so that the two can be compared day by day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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
AUTH_KINDS: frozenset[str] = frozenset({"login"})
"""Kinds whose runs are authentication: only their failures are requests (of every
interface they feed)."""

Api = Literal["dedicated", "psu"]
APIS: tuple[Api, ...] = ("dedicated", "psu")
API_LABELS: dict[str, str] = {"dedicated": "dedicated interface", "psu": "customer (PSU) interface"}

Overrides = Mapping[tuple[str, str], tuple[Interface, ...]]
"""(site, check) → interfaces, for the checks whose configuration says so."""


@dataclass(frozen=True)
class Catalog:
    """What the configuration says of the checks: their ``psd2`` lists and which are PSU checks.

    Checks found in the data but not in the configuration count by their kind, on the
    dedicated interface.
    """

    overrides: Overrides
    psu: frozenset[tuple[str, str]] = frozenset()
    kinds: Mapping[tuple[str, str], str] | None = None
    """(site, check) → kind, of the configured checks."""

    def interfaces_of(self, site: str, check: str, kind: str) -> tuple[Interface, ...]:
        """The interfaces one check's runs count for."""
        return interfaces_of(site, check, kind, self.overrides)

    def api_of(self, site: str, check: str) -> Api:
        """``psu`` for a check of the customer interface, else ``dedicated``."""
        return "psu" if (site, check) in self.psu else "dedicated"


def interfaces_of(site: str, check: str, kind: str, overrides: Overrides) -> tuple[Interface, ...]:
    """The interfaces one check's runs count for."""
    chosen = overrides.get((site, check))
    return chosen if chosen is not None else KIND_INTERFACES.get(kind, ())


def is_auth(kind: str) -> bool:
    """Whether runs of ``kind`` are authentication (see the module docstring)."""
    return kind in AUTH_KINDS


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


def catalog_from_config(config: object) -> Catalog:
    """The :class:`Catalog` of a loaded :class:`~prober.config.model.Config`."""
    psu = set()
    kinds = {}
    for site in getattr(config, "sites", []):
        for check in site.checks:
            kinds[(site.name, check.name)] = check.kind
            if getattr(check, "psd2_interface", "dedicated") == "psu":
                psu.add((site.name, check.name))
    return Catalog(overrides=overrides_from_config(config), psu=frozenset(psu), kinds=kinds)
