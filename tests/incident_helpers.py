"""Stand-ins for the incident code's writer and reader, for the tests that drive it
without InfluxDB (no tests here)."""

from __future__ import annotations

from collections.abc import Mapping

from prober.config.types import Precision
from prober.daemon.locations_influx import LoginSteps, Snapshot
from prober.incidents.locations import Run, RunsWindow, SiteKind


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
