"""The embedded default configuration: journeys against the simulated bank.

``prober demo`` runs it (with ``SIMBANK_URL`` pointing at the bank it starts), and it
documents by example what a configuration looks like. The file ships inside the package
(``prober/simbank.toml``, package data), so an installed ``prober demo`` needs no
checkout; ``config/simbank.toml`` in the source tree is a link to it.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_CONFIG: Path = Path(__file__).resolve().parent / "simbank.toml"
"""Path of the embedded ``simbank.toml`` inside the installed package."""


def default_config() -> Path:
    """:data:`DEFAULT_CONFIG`; raises ``FileNotFoundError`` naming it when it is missing
    (a package built without its data files)."""
    if not DEFAULT_CONFIG.is_file():
        raise FileNotFoundError(f"{DEFAULT_CONFIG}: embedded default configuration not found (pass -c PATH)")
    return DEFAULT_CONFIG
