"""Stand-ins for the incident code's writer and reader, for the tests that drive it
without InfluxDB, and the shipped simbank configuration they judge (no tests here)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from prober.config.incidents import IncidentsConfig
from prober.config.types import Precision
from prober.daemon.locations_influx import LoginSteps, Snapshot
from prober.incidents.locations import Run, RunsWindow, SiteKind
from prober.loading import load
from tests.browser_helpers import without_browser_checks


class Lines:
    """A line writer that keeps the lines it is given."""

    precision: Precision = "ns"

    def __init__(self) -> None:
        self.lines: list[str] = []

    def submit_lines(self, lines: list[str]) -> None:
        self.lines.extend(lines)


class Unread:
    """A reader for a cross-location loop that the test hands its snapshots: a read is a
    bug in the test, and says so."""

    def read(self) -> Snapshot:
        raise AssertionError("this test's cross-location loop must not read InfluxDB")

    def read_runs(self, windows: Mapping[SiteKind, RunsWindow],
                  login_steps: LoginSteps | None = None) -> dict[SiteKind, list[Run]]:
        raise AssertionError("this test's cross-location loop must not read InfluxDB")


SIMBANK = Path(__file__).resolve().parent.parent / "config" / "simbank.toml"


def simbank(url: str, **incidents):
    """``config/simbank.toml`` against the bank at ``url``, without its browser checks, with
    ``[incidents]`` set to ``incidents`` when given; and its plans by check name."""
    loaded = load(SIMBANK, environ={**os.environ, "SIMBANK_URL": url})
    config = without_browser_checks(loaded.config)
    if incidents:
        config = config.model_copy(update={"incidents": IncidentsConfig.model_validate(incidents)})
    return config, {p.check: p for p in loaded.plans}
