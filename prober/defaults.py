"""The embedded default configuration: journeys against the simulated bank.

``prober demo`` runs it (with ``SIMBANK_URL`` pointing at the bank it starts), and it
documents by example what a configuration looks like. It is ``config/simbank.toml`` of
the checkout (or of the source tree the package was installed from in editable mode).
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_CONFIG: Path = Path(__file__).resolve().parent.parent / "config" / "simbank.toml"
"""Path of ``config/simbank.toml`` next to the ``prober`` package."""


def default_config() -> Path:
    """:data:`DEFAULT_CONFIG`; raises ``FileNotFoundError`` naming it when it is missing
    (a non-editable install does not carry ``config/``: pass ``-c`` then)."""
    if not DEFAULT_CONFIG.is_file():
        raise FileNotFoundError(f"{DEFAULT_CONFIG}: embedded default configuration not found (pass -c PATH)")
    return DEFAULT_CONFIG
